package shim

import (
	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// container is one existing container as a command sees it.
type container struct {
	id   string
	dir  string
	lock *bundle.Lock // held by the command
	meta *bundle.Meta
	ops  kindOps
	// ct is libcontainer's view; nil once libcontainer's state is gone
	// (the container never started, or its dump removed it).
	ct *libcontainer.Container
}

// open reads container id in dir: what we recorded, and libcontainer's
// state. lock is the caller's lock on it, if it holds one.
func (rt *Runtime) open(dir, id string, lock *bundle.Lock) (*container, error) {
	meta, err := bundle.ReadMeta(dir)
	if err != nil {
		return nil, err
	}
	ops, err := opsOf(meta.Kind)
	if err != nil {
		return nil, err
	}
	c := &container{id: id, dir: dir, lock: lock, meta: meta, ops: ops}
	if ct, err := load(dir, id); err == nil {
		c.ct = ct
	}
	return c, nil
}

// status is libcontainer's status of c; Stopped when libcontainer's
// state is gone.
func (c *container) status() (libcontainer.Status, error) {
	if c.ct == nil {
		return libcontainer.Stopped, nil
	}
	return c.ct.Status()
}

// load returns libcontainer's view of the container in dir.
func load(dir, id string) (*libcontainer.Container, error) {
	return libcontainer.Load(bundle.LibcontainerRoot(dir), id)
}

// withContainer runs f on container id while holding its lock.
func (rt *Runtime) withContainer(id string, f func(*container) error) error {
	lock, err := rt.Root.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	c, err := rt.open(lock.Dir, id, lock)
	if err != nil {
		return err
	}
	return f(c)
}

// withLibcontainer runs f on container id while holding its lock; the
// container must still have libcontainer's state (c.ct is set).
func (rt *Runtime) withLibcontainer(id string, f func(*container) error) error {
	return rt.withContainer(id, func(c *container) error {
		if c.ct == nil {
			return ErrNotRunning
		}
		return f(c)
	})
}

// withRunning runs f on container id, which must be running or paused,
// while holding its lock.
func (rt *Runtime) withRunning(id string, f func(*container) error) error {
	return rt.withContainer(id, func(c *container) error {
		status, err := c.status()
		if err != nil {
			return err
		}
		if status != libcontainer.Running && status != libcontainer.Paused {
			return ErrNotRunning
		}
		return f(c)
	})
}
