package labs

import (
	"context"
	"io"
	"os"

	"github.com/forgelab/forgelab/hypervisor"
	"github.com/forgelab/forgelab/images"
	"github.com/forgelab/forgelab/labs/store"
	"github.com/forgelab/forgelab/netfabric"
)

// Open wires a Manager to the real backends: libvirt at uri, netlink, and
// the image store in stateDir. This is the one place backends are chosen.
func Open(stateDir, uri string, progress io.Writer) (*Manager, *hypervisor.Conn, error) {
	conn, err := hypervisor.Connect(uri)
	if err != nil {
		return nil, nil, err
	}
	s := &Store{Dir: stateDir}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	m := &Manager{
		Store:    s,
		VMs:      conn,
		Netdevs:  hostNetdevs{},
		Fabric:   hostFabric{exe: exe},
		Images:   imageStore{images.NewStore(s.ImagesDir())},
		Waiter:   SSHWaiter{Store: s},
		Progress: progress,
		Registry: store.DefaultRegistry(),
	}
	return m, conn, nil
}

type hostNetdevs struct{}

func (hostNetdevs) NewBridge(name string) error          { return netfabric.NewBridge(name) }
func (hostNetdevs) DeleteLink(name string) error         { return netfabric.DeleteLink(name) }
func (hostNetdevs) Links() ([]netfabric.LinkInfo, error) { return netfabric.ListLinks() }

// imageStore adapts the images package to the Images interface.
type imageStore struct{ *images.Store }

func (imageStore) Recipes() []string { return images.Recipes() }

func (s imageStore) DirectBoot(name string) *DirectBoot {
	img, err := s.Get(name)
	if err != nil || img.Boot == nil {
		return nil
	}
	return &DirectBoot{Kernel: img.Boot.Kernel, Initrd: img.Boot.Initrd, Cmdline: img.Boot.Cmdline}
}

// Digest is the image's sha256 as the store recorded it.
func (s imageStore) Digest(name string) (string, error) {
	img, err := s.Get(name)
	if err != nil {
		return "", err
	}
	return "sha256:" + img.SHA256, nil
}

func (imageStore) CreateOverlay(ctx context.Context, base, dst string, size int64) error {
	return images.CreateOverlay(ctx, base, dst, size)
}

func (imageStore) WriteSeed(path string, in SeedInput) error {
	s := images.Seed{
		InstanceID: in.InstanceID, Hostname: in.Hostname, User: in.User,
		AuthorizedKeys: in.AuthorizedKeys, HostKeyPrivate: in.HostKeyPrivate, HostKeyPublic: in.HostKeyPublic,
		EtcHosts: in.EtcHosts,
	}
	for _, n := range in.NICs {
		s.NICs = append(s.NICs, images.SeedNIC{Name: n.Name, MAC: n.MAC, DHCP4: n.DHCP4, Addresses: n.Addresses,
			Gateway4: n.Gateway4, Nameservers: n.Nameservers, Primary: n.Primary})
	}
	if in.Password != "" {
		h, err := images.HashPassword(in.Password)
		if err != nil {
			return err
		}
		s.PasswordHash = h
	}
	return images.WriteSeedISO(path, s)
}
