package shim

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagecheck"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
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
	return opts, nil
}

// checkpoint dumps a bundle container through libcontainer. Like runc, a
// dump that ends the container removes it, so the manager can restore
// under the same id.
func (bundleKind) checkpoint(rt *Runtime, c *container, o CheckpointOptions) error {
	if err := refuse(bundle.KindBundle, flag{"-- CRIU-ARGS", len(o.CRIU.Extra) > 0}, flag{"--track-mem", o.TrackMem}); err != nil {
		return err
	}
	// libcontainer asks CRIU for memory tracking on a pre-dump and on a
	// dump with a parent, as runc does; we ask the kernel first.
	if err := refuseWithoutSoftDirty(o); err != nil {
		return err
	}
	image, err := filepath.Abs(o.ImagePath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(image, 0o700); err != nil {
		return fmt.Errorf("image path %s: %w", o.ImagePath, unwrapPathError(err))
	}
	work, err := absOrEmpty(o.WorkPath)
	if err != nil {
		return err
	}
	opts, err := criuOpts(image, work, o.LeaveRunning, o.PreDump, o.CRIU, o.OCI)
	if err != nil {
		return err
	}
	if err := rt.criuOnPath(); err != nil {
		return err
	}
	stop := watchCRIU(o.Timeout, true)
	err = c.ct.Checkpoint(opts)
	if stop() {
		return fmt.Errorf("checkpoint %s timed out after %v: criu was stopped (%v); the container runs on", o.ID, o.Timeout, err)
	}
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.ID, err)
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	if err := c.ct.Destroy(); err != nil {
		return err
	}
	return rt.Root.Remove(c.id)
}

// restore creates a container from the bundle and restores its processes
// from the images, as `runc restore` does.
func (bundleKind) restore(rt *Runtime, o RestoreOptions) (*Restored, error) {
	if err := refuse(bundle.KindBundle,
		flag{"--tcp-close", o.CRIU.TCPClose}, flag{"-- CRIU-ARGS", len(o.CRIU.Extra) > 0},
	); err != nil {
		return nil, err
	}
	image, err := imageDir(o.ImagePath)
	if err != nil {
		return nil, err
	}
	if err := imagecheck.Check(image); err != nil {
		return nil, err
	}
	work, err := absOrEmpty(o.WorkPath)
	if err != nil {
		return nil, err
	}
	opts, err := criuOpts(image, work, false, false, o.CRIU, o.OCI)
	if err != nil {
		return nil, err
	}
	opts.LazyPages = o.LazyPages
	if err := rt.criuOnPath(); err != nil {
		return nil, err
	}
	if !o.Detach && !o.NoSubreaper {
		if err := becomeSubreaper(); err != nil {
			return nil, err
		}
	}
	proc, err := rt.restoreBundle(o, opts)
	if err != nil {
		return nil, err
	}
	return &Restored{ID: o.ID, process: proc, rt: rt}, nil
}

// watchCRIU bounds the CRIU run libcontainer starts (`criu swrk`, a child
// of this process): after d (zero: never) CRIU is stopped, gently if
// gentle (SIGALRM: a dump aborts through CRIU's own timeout path and lets
// the tree go) and with SIGKILL after cancelGrace. stop ends the watch
// and says whether it fired.
func watchCRIU(d time.Duration, gentle bool) (stop func() bool) {
	if d <= 0 {
		return func() bool { return false }
	}
	done := make(chan struct{})
	fired := make(chan bool, 1)
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-done:
			fired <- false
			return
		case <-t.C:
		}
		sig := unix.SIGKILL
		if gentle {
			sig = unix.SIGALRM
		}
		signalCRIUChildren(sig)
		if gentle {
			select {
			case <-done:
			case <-time.After(cancelGrace):
				signalCRIUChildren(unix.SIGKILL)
			}
		}
		fired <- true
	}()
	return func() bool {
		close(done)
		return <-fired
	}
}

// signalCRIUChildren signals this process's children that run CRIU:
// libcontainer starts it as `criu swrk FD`.
func signalCRIUChildren(sig unix.Signal) {
	for _, kid := range children(os.Getpid()) {
		ref, err := pidfd.Of(kid)
		if err != nil {
			continue
		}
		p, err := ref.Open()
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", kid)) // read once the pidfd pins it
		if slices.Contains(strings.Split(string(b), "\x00"), "swrk") {
			p.Signal(sig)
		}
		p.Close()
	}
}

// absOrEmpty makes a path the caller gave absolute; empty stays empty.
func absOrEmpty(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	return filepath.Abs(path)
}

// criuOnPath makes libcontainer, which runs plain "criu", find ours.
func (rt *Runtime) criuOnPath() error {
	path, err := rt.CRIU()
	if err != nil {
		return err
	}
	return os.Setenv("PATH", filepath.Dir(path)+string(os.PathListSeparator)+os.Getenv("PATH"))
}
