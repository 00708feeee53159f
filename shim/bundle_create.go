package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// bundleKind is a container made from a manager's OCI bundle by create,
// run or restore --bundle. libcontainer creates, checkpoints and restores
// it from the bundle's config.json, exactly as runc does.
type bundleKind struct{}

// BundleOptions say how a bundle container is made.
type BundleOptions struct {
	Dir           string // the bundle; default: the current directory
	IO            IO
	NoPivot       bool
	NoNewKeyring  bool
	SystemdCgroup bool
	// pidNamespace replaces the pid namespace the bundle joins (a restore
	// nested in its pod's namespace, bundle_pidnest.go).
	pidNamespace string
}

// CreateOptions describe create and run.
type CreateOptions struct {
	ID      string
	PidFile string // gets the container init's pid
	Bundle  BundleOptions
	// NoSubreaper: a foreground run does not make itself the subreaper
	// of the container's orphans.
	NoSubreaper bool
}

// loadBundleSpec reads the bundle's config.json and checks its version.
func loadBundleSpec(dir string) (*specs.Spec, error) {
	spec, err := bundle.ReadSpec(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, unwrapPathError(err))
	}
	if err := checkSpecVersion(spec.Version); err != nil {
		return nil, err
	}
	return spec, nil
}

// checkSpecVersion accepts runtime-spec 1.0.0 through 1.3.x.
func checkSpecVersion(v string) error {
	var major, minor, patch int
	if n, _ := fmt.Sscanf(v, "%d.%d.%d", &major, &minor, &patch); n != 3 || major != 1 || minor > 3 {
		return fmt.Errorf("unsupported ociVersion %q in config.json (want 1.0.0 to 1.3.x)", v)
	}
	return nil
}

// newBundleContainer claims id and creates the libcontainer container for
// the bundle. The caller holds the returned lock and, on failure, abandons.
func (rt *Runtime) newBundleContainer(id string, o BundleOptions) (*bundle.Lock, *libcontainer.Container, *specs.Spec, error) {
	if o.Dir == "" {
		o.Dir = "."
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, nil, nil, err
	}
	spec, err := loadBundleSpec(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	if spec.Process == nil {
		return nil, nil, nil, fmt.Errorf("bundle %s: config.json has no process", dir)
	}
	lock, err := rt.Root.Create(id)
	if err != nil {
		return nil, nil, nil, err
	}
	// libcontainer resolves the spec's relative paths against the cwd and
	// records the cwd as the bundle, as runc (which runs in the bundle) does.
	if err := os.Chdir(dir); err != nil {
		rt.abandon(lock.Dir, nil)
		lock.Unlock()
		return nil, nil, nil, err
	}
	if spec.Linux != nil {
		allowStatx(spec.Linux.Seccomp)
	}
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: id, UseSystemdCgroup: o.SystemdCgroup, NoPivotRoot: o.NoPivot,
		NoNewKeyring: o.NoNewKeyring, Spec: spec,
	})
	if err == nil {
		relaxConfig(cfg)
		setPidNamespace(cfg, o.pidNamespace)
		err = bundle.WriteMeta(lock.Dir, &bundle.Meta{ID: id, Kind: bundle.KindBundle, Bundle: dir, Created: time.Now().UTC()})
	}
	var ct *libcontainer.Container
	if err == nil {
		ct, err = libcontainer.Create(bundle.LibcontainerRoot(lock.Dir), id, cfg)
	}
	if err != nil {
		rt.abandon(lock.Dir, nil)
		lock.Unlock()
		return nil, nil, nil, err
	}
	return lock, ct, spec, nil
}

// Create creates a container from a bundle; its process waits for Start.
func (rt *Runtime) Create(o CreateOptions) error {
	return rt.startBundle(o.ID, o.PidFile, o.Bundle, func(ct *libcontainer.Container, p *libcontainer.Process) error {
		return ct.Start(p)
	})
}

// Run creates and starts a container. Detached, it returns once the
// process runs; otherwise it waits, passing on sigs, removes the container
// and returns the process's exit code.
func (rt *Runtime) Run(o CreateOptions, detach bool, sigs <-chan os.Signal) (int, error) {
	if !detach && !o.NoSubreaper {
		if err := becomeSubreaper(); err != nil {
			return 1, err
		}
	}
	var proc *libcontainer.Process
	err := rt.startBundle(o.ID, o.PidFile, o.Bundle, func(ct *libcontainer.Container, p *libcontainer.Process) error {
		proc = p
		return ct.Run(p)
	})
	if err != nil || detach {
		return 0, err
	}
	return rt.waitAndDelete(o.ID, proc, sigs)
}

func (rt *Runtime) startBundle(id, pidFile string, o BundleOptions, start func(*libcontainer.Container, *libcontainer.Process) error) (retErr error) {
	// Paths the caller gave are relative to its cwd, which we leave.
	for _, p := range []*string{&pidFile, &o.IO.ConsoleSocket, &o.IO.PidfdSocket} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return err
			}
			*p = abs
		}
	}
	lock, ct, spec, err := rt.newBundleContainer(id, o)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	defer func() {
		if retErr != nil {
			rt.abandon(lock.Dir, ct)
		}
	}()
	p, err := newProcess(spec.Process)
	if err != nil {
		return err
	}
	p.Init = true
	closeIO, err := setupIO(p, spec.Process.Terminal, o.IO)
	if err != nil {
		return err
	}
	defer closeIO.Close()
	if err := start(ct, p); err != nil {
		return err
	}
	return writeProcessPid(pidFile, p)
}

// abandon removes everything a failed create made; the caller holds the
// lock.
func (rt *Runtime) abandon(dir string, ct *libcontainer.Container) {
	if ct != nil {
		ct.Signal(unix.SIGKILL)
		ct.Destroy()
	}
	rt.Root.Remove(filepath.Base(dir))
}

// becomeSubreaper makes orphans of a foreground container's processes
// ours, as runc does unless --no-subreaper.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become subreaper: %w", err)
	}
	return nil
}

// Start runs the process of a created container.
func (rt *Runtime) Start(id string) error {
	return rt.withContainer(id, func(c *container) error {
		status, err := c.status()
		if err != nil {
			return err
		}
		switch status {
		case libcontainer.Created:
			return c.ct.Exec()
		case libcontainer.Stopped:
			return errors.New("cannot start a container that has stopped")
		}
		return fmt.Errorf("cannot start an already %s container", status)
	})
}

// waitAndDelete is the end of a foreground command, as in `runc run`: it
// waits for the container's process (passing on sigs), removes the
// container and returns the process's exit code.
func (rt *Runtime) waitAndDelete(id string, p *libcontainer.Process, sigs <-chan os.Signal) (int, error) {
	code := waitProcess(p, sigs)
	return code, rt.Delete(id, true)
}

// waitProcess forwards sigs to p until it exits and returns its exit code.
func waitProcess(p *libcontainer.Process, sigs <-chan os.Signal) int {
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := p.Wait()
		done <- st
	}()
	for {
		select {
		case sig := <-sigs:
			p.Signal(sig)
		case st := <-done:
			return exitCodeOf(st)
		}
	}
}

func writeProcessPid(path string, p *libcontainer.Process) error {
	if path == "" {
		return nil
	}
	pid, err := p.Pid()
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return writePidFile(abs, pid)
}

// describe reports the manager's bundle, rootfs and annotations.
func (bundleKind) describe(s *State, c *container) {
	s.Bundle = c.meta.Bundle
	if c.lc != nil {
		s.Rootfs = c.lc.Config.Rootfs
		_, s.Annotations = utils.Annotations(c.lc.Config.Labels)
	}
}

// execDefaults are the bundle's own process settings.
func (bundleKind) execDefaults(c *container) *specs.Process {
	if spec, err := loadBundleSpec(c.meta.Bundle); err == nil && spec.Process != nil {
		return spec.Process
	}
	return defaultExecProcess()
}
