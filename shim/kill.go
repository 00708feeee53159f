package shim

import (
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Kill sends sig to the container's init, which forwards it to the
// restored tree; with all, to every process in the container.
func (rt *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	return rt.withContainer(id, func(ct *libcontainer.Container) error {
		status, err := ct.Status()
		if err != nil {
			return err
		}
		if status == libcontainer.Stopped {
			return ErrNotRunning
		}
		if !all {
			return ct.Signal(sig)
		}
		pids, err := ct.Processes()
		if err != nil {
			return err
		}
		for _, pid := range pids {
			unix.Kill(pid, sig)
		}
		return nil
	})
}
