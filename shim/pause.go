package shim

import "github.com/opencontainers/runc/libcontainer"

// Pause freezes every process of the container.
func (rt *Runtime) Pause(id string) error {
	return rt.withContainer(id, (*libcontainer.Container).Pause)
}

// Resume thaws a paused container.
func (rt *Runtime) Resume(id string) error {
	return rt.withContainer(id, (*libcontainer.Container).Resume)
}
