package shim

// Processes lists the host pids of every process in the container.
func (rt *Runtime) Processes(id string) (pids []int, err error) {
	err = rt.withLibcontainer(id, func(c *container) error {
		pids, err = c.ct.Processes()
		return err
	})
	return pids, err
}
