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
		if status, err := c.ct.Status(); err != nil {
			return err
		} else if status == libcontainer.Stopped {
			return ErrNotRunning
		}
		if !all {
			return c.ct.Signal(sig)
		}
		pids, err := c.ct.Processes()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			unix.Kill(pid, sig)
		}
		return nil
	})
}
