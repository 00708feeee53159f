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

// withContainer runs f on container id while holding its lock.
func (rt *Runtime) withContainer(id string, f func(*libcontainer.Container) error) error {
	lock, err := rt.Root.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	ct, err := load(lock.Dir, id)
	if err != nil {
		return ErrNotRunning
	}
	return f(ct)
}
