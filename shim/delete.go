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
	err := rt.withContainer(id, func(c *container) error {
		if c.ct != nil {
			status, err := c.ct.Status()
			if err != nil {
				return err
			}
			// A created container has run nothing yet: runc deletes it as is.
			if status != libcontainer.Stopped {
				if !force && status != libcontainer.Created {
					return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", id, status)
				}
				c.ct.Signal(unix.SIGKILL)
				waitExit(c.ct)
			}
			if err := c.ct.Destroy(); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
		}
		return rt.Root.Remove(id)
	})
	if errors.Is(err, bundle.ErrNotExist) && force {
		return nil // as runc: forcing away what is already gone succeeds
	}
	return err
}
