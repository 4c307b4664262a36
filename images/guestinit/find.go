package guestinit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kdomanski/iso9660"
)

// SeedFiles are the documents of a NoCloud seed.
type SeedFiles struct {
	MetaData, UserData, NetworkConfig []byte
	// From says where they were read (a device or a directory).
	From string
}

// FindSeed looks for the NoCloud seed: an ISO 9660 file system labelled
// cidata on one of the block devices listed in sysBlock (/sys/class/block),
// read directly from devDir (/dev), so neither udev nor the isofs module is
// needed. Partitions are skipped.
func FindSeed(sysBlock, devDir string) (SeedFiles, error) {
	ents, err := os.ReadDir(sysBlock)
	if err != nil {
		return SeedFiles{}, fmt.Errorf("list block devices: %w", err)
	}
	var tried []string
	for _, e := range ents {
		name := e.Name()
		if _, err := os.Stat(filepath.Join(sysBlock, name, "partition")); err == nil {
			continue
		}
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		dev := filepath.Join(devDir, name)
		files, err := readSeedISO(dev)
		if err == nil {
			return files, nil
		}
		tried = append(tried, fmt.Sprintf("%s (%v)", dev, err))
	}
	return SeedFiles{}, fmt.Errorf("no NoCloud seed (ISO 9660 labelled cidata) on any block device: tried %s", strings.Join(tried, "; "))
}

var errNotSeed = errors.New("not labelled cidata")

func readSeedISO(path string) (SeedFiles, error) {
	f, err := os.Open(path)
	if err != nil {
		return SeedFiles{}, err
	}
	defer f.Close()
	img, err := iso9660.OpenImage(f)
	if err != nil {
		return SeedFiles{}, errNotSeed
	}
	label, err := img.Label()
	if err != nil || !strings.EqualFold(strings.TrimSpace(label), "cidata") {
		return SeedFiles{}, errNotSeed
	}
	root, err := img.RootDir()
	if err != nil {
		return SeedFiles{}, err
	}
	kids, err := root.GetChildren()
	if err != nil {
		return SeedFiles{}, err
	}
	out := SeedFiles{From: path}
	for _, k := range kids {
		var dst *[]byte
		switch strings.ToLower(k.Name()) {
		case "meta-data":
			dst = &out.MetaData
		case "user-data":
			dst = &out.UserData
		case "network-config":
			dst = &out.NetworkConfig
		default:
			continue
		}
		b, err := io.ReadAll(k.Reader())
		if err != nil {
			return SeedFiles{}, fmt.Errorf("%s: read %s: %w", path, k.Name(), err)
		}
		*dst = b
	}
	if out.MetaData == nil {
		return SeedFiles{}, fmt.Errorf("%s: labelled cidata but has no meta-data", path)
	}
	return out, nil
}

// ReadSeedDir reads the documents from a directory (NoCloud's seed
// directory form, /var/lib/cloud/seed/nocloud).
func ReadSeedDir(dir string) (SeedFiles, error) {
	out := SeedFiles{From: dir}
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{"meta-data", &out.MetaData}, {"user-data", &out.UserData}, {"network-config", &out.NetworkConfig}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, fs.ErrNotExist) && f.name != "meta-data" {
			continue
		}
		if err != nil {
			return SeedFiles{}, err
		}
		*f.dst = b
	}
	return out, nil
}
