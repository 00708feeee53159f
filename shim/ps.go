package shim

import "github.com/opencontainers/runc/libcontainer"

// Processes lists the host pids of every process in the container.
func (rt *Runtime) Processes(id string) (pids []int, err error) {
	err = rt.withContainer(id, func(ct *libcontainer.Container) error {
		pids, err = ct.Processes()
		return err
	})
	return pids, err
}
