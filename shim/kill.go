package shim

import (
	"errors"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// Kill sends sig to the container's init (a tree container's init
// forwards it to the restored tree), through a pidfd checked against the
// init's start time. With all, it signals every process of the
// container's cgroup, frozen meanwhile so none escapes by forking, and
// succeeds on a stopped container too, as in runc 1.1.
func (rt *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	return rt.withContainer(id, func(c *container) error {
		status, err := c.status()
		if err != nil {
			return err
		}
		if status == libcontainer.Stopped && !all {
			return ErrNotRunning
		}
		if all {
			// A stopped container is no error: as runc 1.1 does, signal what
			// is left in its cgroup (in a pod's shared pid namespace the
			// init's children outlive it), and succeed when nothing is.
			cg, err := rt.cgroupOf(c)
			if err != nil {
				if status == libcontainer.Stopped {
					return nil // its cgroup is gone with it
				}
				return err
			}
			return signalCgroup(cg, sig)
		}
		init, err := c.init()
		if err != nil {
			return ErrNotRunning
		}
		defer init.Close()
		if err := init.Signal(sig); err != nil {
			if errors.Is(err, pidfd.ErrGone) {
				return ErrNotRunning
			}
			return err
		}
		if sig == unix.SIGKILL && status == libcontainer.Paused {
			c.ct.Resume() // a frozen cgroup v1 task takes SIGKILL only once thawed
		}
		return nil
	})
}
