package shim

import (
	"errors"
	"fmt"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// Delete removes a stopped container; force kills a running one first.
func (rt *Runtime) Delete(id string, force bool) error {
	lock, err := rt.Root.Lock(id)
	if errors.Is(err, bundle.ErrNotExist) && force {
		return nil // as runc: forcing away what is already gone succeeds
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if ct, err := load(lock.Dir, id); err == nil {
		status, err := ct.Status()
		if err != nil {
			return err
		}
		// A created container has run nothing yet: runc deletes it as is.
		if status != libcontainer.Stopped {
			if !force && status != libcontainer.Created {
				return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", id, status)
			}
			ct.Signal(unix.SIGKILL)
			waitExit(ct)
		}
		if err := ct.Destroy(); err != nil {
			return fmt.Errorf("delete %s: %w", id, err)
		}
	}
	if err := unstageRootfs(bundle.RootfsPath(lock.Dir)); err != nil {
		return err
	}
	return rt.Root.Remove(id)
}
