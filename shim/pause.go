package shim

// Pause freezes every process of the container.
func (rt *Runtime) Pause(id string) error {
	return rt.withLibcontainer(id, func(c *container) error { return c.ct.Pause() })
}

// Resume thaws a paused container.
func (rt *Runtime) Resume(id string) error {
	return rt.withLibcontainer(id, func(c *container) error { return c.ct.Resume() })
}
