package shim

import (
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Kill sends sig to the container's init (a tree container's init
// forwards it to the restored tree); with all, to every process in the
// container.
func (rt *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	return rt.withLibcontainer(id, func(c *container) error {
		status, err := c.ct.Status()
		if err != nil {
			return err
		}
		if status == libcontainer.Stopped && !all {
			return ErrNotRunning
		}
		if !all {
			return c.ct.Signal(sig)
		}
		// With --all, a stopped container is no error: as runc 1.1 does,
		// signal what is left in its cgroup (a shared pid namespace
		// outlives the init), and succeed when nothing is (as runc 1.2+).
		pids, err := c.ct.Processes()
		if err != nil {
			if status == libcontainer.Stopped {
				return nil // its cgroup is gone with it
			}
			return err
		}
		for _, pid := range pids {
			unix.Kill(pid, sig)
		}
		return nil
	})
}
