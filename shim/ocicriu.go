package shim

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Containers created from a manager's bundle are checkpointed and restored
// by libcontainer itself (CRIU's RPC mode, external stdio pipes through
// descriptors.json and --inherit-fd), exactly as runc does.

// OCICRIUOptions are the runc checkpoint/restore flags beyond CRIUOptions.
type OCICRIUOptions struct {
	ParentPath        string
	EmptyNs           []string // namespace types CRIU leaves empty, e.g. "network"
	ManageCgroupsMode string
	LsmProfile        string
	LsmMountContext   string
}

func (o OCICRIUOptions) set() bool {
	return o.ParentPath != "" || len(o.EmptyNs) > 0 || o.ManageCgroupsMode != "" ||
		o.LsmProfile != "" || o.LsmMountContext != ""
}

func criuOpts(image, work string, leave, preDump bool, c CRIUOptions, o OCICRIUOptions) (*libcontainer.CriuOpts, error) {
	opts := &libcontainer.CriuOpts{
		ImagesDirectory: image, WorkDirectory: work, ParentImage: o.ParentPath,
		LeaveRunning: leave, TcpEstablished: c.TCPEstablished, ExternalUnixConnections: c.ExtUnixSk,
		ShellJob: c.ShellJob, FileLocks: c.FileLocks, PreDump: preDump,
		ManageCgroupsMode: o.ManageCgroupsMode, LsmProfile: o.LsmProfile, LsmMountContext: o.LsmMountContext,
	}
	flags := map[string]uint32{
		"network": unix.CLONE_NEWNET, "mount": unix.CLONE_NEWNS, "ipc": unix.CLONE_NEWIPC,
		"uts": unix.CLONE_NEWUTS, "pid": unix.CLONE_NEWPID, "user": unix.CLONE_NEWUSER, "cgroup": unix.CLONE_NEWCGROUP,
	}
	for _, ns := range o.EmptyNs {
		f, ok := flags[ns]
		if !ok {
			return nil, fmt.Errorf("--empty-ns: unknown namespace %q", ns)
		}
		opts.EmptyNs |= f
	}
	if len(c.Extra) > 0 {
		return nil, fmt.Errorf("extra CRIU arguments are not supported for containers created from a bundle")
	}
	return opts, nil
}

// checkpointBundle dumps a bundle container through libcontainer. Like
// runc, a dump that ends the container removes it, so the manager can
// restore under the same id.
func (rt *Runtime) checkpointBundle(dir string, ct *libcontainer.Container, o CheckpointOptions) error {
	image, err := filepath.Abs(o.ImagePath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(image, 0o700); err != nil {
		return fmt.Errorf("image path %s: %w", o.ImagePath, unwrapPathError(err))
	}
	work := o.WorkPath
	if work != "" {
		if work, err = filepath.Abs(work); err != nil {
			return err
		}
	}
	opts, err := criuOpts(image, work, o.LeaveRunning, o.PreDump, o.CRIU, o.OCI)
	if err != nil {
		return err
	}
	if err := rt.criuOnPath(); err != nil {
		return err
	}
	if err := ct.Checkpoint(opts); err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	if err := ct.Destroy(); err != nil {
		return err
	}
	unstageRootfs(filepath.Join(dir, "rootfs"))
	return os.RemoveAll(dir)
}

// RestoreBundleOptions describe `restore --bundle`.
type RestoreBundleOptions struct {
	CreateOptions
	ImagePath string
	WorkPath  string
	Detach    bool
	CRIU      CRIUOptions
	OCI       OCICRIUOptions
}

// RestoreBundle creates a container from the bundle and restores its
// processes from the images, as `runc restore` does.
func (rt *Runtime) RestoreBundle(o RestoreBundleOptions, sigs <-chan os.Signal) (int, error) {
	image, err := filepath.Abs(o.ImagePath)
	if err != nil {
		return 1, err
	}
	if _, err := os.Stat(filepath.Join(image, "inventory.img")); err != nil {
		return 1, fmt.Errorf("image path %s holds no CRIU images (no inventory.img)", o.ImagePath)
	}
	work := o.WorkPath
	if work != "" {
		if work, err = filepath.Abs(work); err != nil {
			return 1, err
		}
	}
	opts, err := criuOpts(image, work, false, false, o.CRIU, o.OCI)
	if err != nil {
		return 1, err
	}
	if err := rt.criuOnPath(); err != nil {
		return 1, err
	}
	var proc *libcontainer.Process
	err = rt.startBundle(o.CreateOptions, func(ct *libcontainer.Container, p *libcontainer.Process) error {
		proc = p
		return ct.Restore(p, opts)
	})
	if err != nil || o.Detach {
		return 1, err
	}
	return rt.waitAndDelete(o.ID, proc, sigs)
}

// criuOnPath makes libcontainer, which runs plain "criu", find ours.
func (rt *Runtime) criuOnPath() error {
	path, err := rt.CRIU()
	if err != nil {
		return err
	}
	return os.Setenv("PATH", filepath.Dir(path)+string(os.PathListSeparator)+os.Getenv("PATH"))
}
