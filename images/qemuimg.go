package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

type imgInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"` // qcow2 with an external data file
		} `json:"data"`
	} `json:"format-specific"`
}

// qemuImgInfo runs `qemu-img info` on one file (never following a backing
// chain, so a hostile image cannot make us open other files).
func qemuImgInfo(ctx context.Context, path string) (imgInfo, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return imgInfo{}, fmt.Errorf("qemu-img info %s: %s", path, strings.TrimSpace(string(ee.Stderr)))
		}
		return imgInfo{}, fmt.Errorf("qemu-img info %s: %w (install qemu-utils)", path, err)
	}
	var info imgInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return imgInfo{}, fmt.Errorf("qemu-img info %s: %w", path, err)
	}
	if info.Format == "" || info.VirtualSize <= 0 {
		return imgInfo{}, fmt.Errorf("qemu-img info %s: no format or size in %s", path, out)
	}
	return info, nil
}

// runOut runs a short command and returns its combined output.
func runOut(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// CreateOverlay creates dst, a qcow2 overlay whose backing file is base
// (recorded by absolute path, with its format). sizeBytes is the virtual size
// of the new disk: 0 keeps the base's size, and anything smaller than the
// base is refused. An existing dst is an error that wraps fs.ErrExist. The
// file appears atomically.
func CreateOverlay(ctx context.Context, base, dst string, sizeBytes int64) error {
	if sizeBytes < 0 {
		return fmt.Errorf("overlay %s: negative size %d", dst, sizeBytes)
	}
	absBase, err := filepath.Abs(base)
	if err != nil {
		return fmt.Errorf("overlay %s: %w", dst, err)
	}
	if _, err := os.Stat(absBase); err != nil {
		return fmt.Errorf("overlay %s: base image: %w", dst, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("overlay %s: %w", dst, fs.ErrExist)
	}
	info, err := qemuImgInfo(ctx, absBase)
	if err != nil {
		return fmt.Errorf("overlay %s: %w", dst, err)
	}
	if sizeBytes != 0 && sizeBytes < info.VirtualSize {
		return fmt.Errorf("overlay %s: size %d bytes is smaller than base image %s (%d bytes); disks can only grow",
			dst, sizeBytes, absBase, info.VirtualSize)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("overlay %s: %w", dst, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"create", "-q", "-f", "qcow2", "-F", info.Format, "-b", absBase, tmp.Name()}
	if sizeBytes != 0 {
		args = append(args, fmt.Sprint(sizeBytes))
	}
	if out, err := runOut(ctx, "qemu-img", args...); err != nil {
		return fmt.Errorf("overlay %s: qemu-img create: %w: %s", dst, err, strings.TrimSpace(out))
	}
	// 0600: the disk holds the guest's secrets (host keys); libvirt's DAC
	// relabelling hands it to QEMU while the VM runs.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return fmt.Errorf("overlay %s: %w", dst, err)
	}
	// Link, not rename: refuses to replace a dst created meanwhile.
	if err := os.Link(tmp.Name(), dst); err != nil {
		return fmt.Errorf("overlay %s: %w", dst, err)
	}
	return nil
}
