package shim

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// container is one existing container as a command sees it.
type container struct {
	id   string
	dir  string
	lock *bundle.Lock // held by the command
	meta *bundle.Meta
	ops  kindOps
	// lc is what libcontainer's state.json records; nil once it is gone
	// (the container never started, or its dump removed it).
	lc *libctState
	// ct is libcontainer's view, for commands that act on the container
	// (open); nil when lc is, and in a read-only look (state, list).
	ct *libcontainer.Container
	// broken says why the container's files cannot be trusted (meta.json
	// or libcontainer's state.json unreadable): every command but delete
	// fails with it, naming the file.
	broken error
}

// open reads container id in dir for a command that acts on it: what we
// recorded, and libcontainer's state and view. lock is the caller's lock
// on it, if it holds one. A missing meta.json is ErrNotExist; unreadable
// files leave c.broken set.
func (rt *Runtime) open(dir, id string, lock *bundle.Lock) (*container, error) {
	c, err := rt.look(dir, id, lock)
	if err != nil || c.lc == nil {
		return c, err
	}
	ct, err := load(dir, id)
	switch {
	case err == nil:
		c.ct = ct
	case !errors.Is(err, libcontainer.ErrNotExist) && c.broken == nil:
		c.broken = fmt.Errorf("container %s: %w", id, unreadable(libcontainerState(dir, id), err))
	}
	return c, nil
}

// look reads container id in dir for a command that only reports on it
// (state, list): what we recorded and what libcontainer's state.json
// says, without libcontainer's view (c.ct stays nil). Errors as open's.
func (rt *Runtime) look(dir, id string, lock *bundle.Lock) (*container, error) {
	c := &container{id: id, dir: dir, lock: lock}
	meta, err := bundle.ReadMeta(dir)
	switch {
	case errors.Is(err, bundle.ErrNotExist):
		return nil, err
	case err != nil:
		c.broken = fmt.Errorf("container %s: %w", id, err)
	default:
		c.meta = meta
		if c.ops, err = opsOf(meta.Kind); err != nil {
			c.broken = err
		}
	}
	lc, err := readLibctState(dir, id)
	switch {
	case err == nil:
		c.lc = lc
	case !errors.Is(err, libcontainer.ErrNotExist) && c.broken == nil:
		c.broken = fmt.Errorf("container %s: %w", id, err)
	}
	return c, nil
}

// unreadable words why the JSON file at path could not be read.
func unreadable(path string, err error) error {
	fi, statErr := os.Stat(path)
	switch {
	case statErr == nil && fi.Size() == 0:
		return fmt.Errorf("%s is corrupt: the file is empty", path)
	case statErr == nil && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return fmt.Errorf("%s is corrupt: truncated after %d bytes", path, fi.Size())
	}
	return fmt.Errorf("%s is corrupt: %w", path, err)
}

// status is libcontainer's status of c; Stopped when libcontainer's
// state is gone, when a restore of a tree never got as far as a running
// tree, or when the tree's root has ended (its init lingers a moment, for
// a dump that may still be running): it is not running, whatever is left
// of it.
func (c *container) status() (libcontainer.Status, error) {
	if c.broken != nil {
		return 0, c.broken
	}
	if c.lc == nil || c.meta == nil || c.meta.Restoring() {
		return libcontainer.Stopped, nil
	}
	if c.meta.Kind == bundle.KindTree && c.meta.RootStartTime != 0 {
		if !c.root().Alive() {
			return libcontainer.Stopped, nil
		}
		// The root runs in the init's pid namespace, and the kernel lets
		// an init of a namespace end only once all its processes have:
		// while the root runs, so does the init.
		return c.lc.status(true)
	}
	return c.lc.status(false)
}

// init is the container's init process, held by a pidfd checked against
// its start time; pidfd.ErrGone when it has ended.
func (c *container) init() (*pidfd.Proc, error) {
	if c.lc == nil {
		return nil, pidfd.ErrGone
	}
	return c.lc.init().Open()
}

// root names the restored root of a tree container.
func (c *container) root() pidfd.Ref {
	return pidfd.Ref{Pid: c.meta.RootPid, StartTime: c.meta.RootStartTime}
}

// load returns libcontainer's view of the container in dir.
func load(dir, id string) (*libcontainer.Container, error) {
	return libcontainer.Load(bundle.LibcontainerRoot(dir), id)
}

// withContainer runs f on container id while holding its lock, once
// whatever a command that died left half-done in it is finished or
// undone (recover). The container's files must be readable.
func (rt *Runtime) withContainer(id string, f func(*container) error) error {
	return rt.withAnyContainer(id, func(c *container) error {
		if c.broken != nil {
			return c.broken
		}
		if c.meta == nil {
			return ErrNotRunning // a restore that died before it began
		}
		return f(c)
	})
}

// withAnyContainer is withContainer for commands that also act on a
// container whose files are unreadable (c.broken) or were never written
// (c.meta nil: a restore died before it wrote any).
func (rt *Runtime) withAnyContainer(id string, f func(*container) error) error {
	lock, err := rt.Root.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	// The container may have no meta.json: a restore died before it
	// wrote one.
	c, err := rt.openAny(lock.Dir, id, lock)
	if err != nil {
		return err
	}
	if c.broken == nil && c.meta != nil {
		if err := rt.recover(c); err != nil {
			return err
		}
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
