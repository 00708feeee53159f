package shim

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
)

// Delete removes a container; force kills its processes first. No
// delete succeeds while a process of the container still runs: without
// force it refuses, with force it kills every process the container's
// cgroup holds (found from libcontainer's state, or from where the
// runtime puts its cgroups when that state is unreadable) and waits for
// them to go. A container whose restore never finished, or whose files
// are corrupt, is deleted like any other.
func (rt *Runtime) Delete(id string, force bool) error {
	err := rt.withAnyContainer(id, func(c *container) error { return rt.delete(c, force) })
	if errors.Is(err, bundle.ErrNotExist) && force {
		return nil // as runc: forcing away what is already gone succeeds
	}
	return err
}

func (rt *Runtime) delete(c *container, force bool) error {
	cg, err := rt.cgroupOf(c)
	if err != nil {
		return fmt.Errorf("delete %s: %w", c.id, err)
	}
	init, _ := c.init()
	defer init.Close()
	pids := cgroupPids(cg)
	if init != nil || len(pids) > 0 {
		if !force && !c.leftover() {
			switch {
			case c.broken != nil:
				return fmt.Errorf("cannot delete container %s: %v, and its processes still run (use --force to kill them)", c.id, errors.Unwrap(c.broken))
			default:
				status, _ := c.status()
				return fmt.Errorf("cannot delete container %s that is not stopped: %s (use --force)", c.id, status)
			}
		}
		if init != nil {
			// For a tree, the kernel ends the whole pid namespace with it.
			init.Signal(unix.SIGKILL)
		}
		if err := killCgroup(cg); err != nil {
			return fmt.Errorf("delete %s: %w", c.id, err)
		}
		if init != nil && !init.Wait(10*time.Second) {
			return fmt.Errorf("delete %s: its init (pid %d) did not end after SIGKILL", c.id, init.Pid)
		}
	}
	crashpoint.Hit("delete.after-kill")
	if c.ct != nil {
		if err := c.ct.Destroy(); err != nil {
			return fmt.Errorf("delete %s: %w", c.id, err)
		}
	}
	crashpoint.Hit("delete.after-destroy")
	if err := removeCgroup(cg); err != nil {
		return fmt.Errorf("delete %s: %w", c.id, err)
	}
	crashpoint.Hit("delete.after-cgroups")
	if err := settleJournal(c); err != nil {
		return fmt.Errorf("delete %s: %w", c.id, err)
	}
	return rt.Root.Remove(c.id)
}

// settleJournal ends a checkpoint transaction that recover could not
// (the container's meta.json is unreadable) before the journal goes with
// the container: it is committed if CRIU said the dump succeeded, rolled
// back if CRIU said it failed, and its dump kept beside the image dir if
// nobody can tell, since it may be the tree's last state.
func settleJournal(c *container) error {
	var j checkpointJournal
	if err := bundle.ReadJournal(c.dir, &j); err != nil {
		return nil // none, or unreadable: nothing to act on
	}
	done, err := j.Swap.Committed()
	status := readDumpStatus(c.dir)
	switch {
	case err != nil:
		return err
	case done || status != nil && status.OK():
		err = j.Swap.Commit()
	case status != nil:
		err = j.Swap.Abort()
	default:
		if _, statErr := os.Stat(j.Swap.Staging); statErr == nil {
			_, err = j.Swap.Keep(".unverified")
		}
	}
	if err != nil {
		return err
	}
	return bundle.RemoveJournal(c.dir)
}

// leftover says whether what runs of c is only what a command that died
// left (a libcontainer init that never started its process, a restore
// that never got its tree running): deleting it needs no force, as runc
// deletes a created container.
func (c *container) leftover() bool {
	if c.broken != nil {
		return false
	}
	if c.meta == nil || c.meta.Restoring() {
		return true
	}
	st, err := c.status()
	return err == nil && st == libcontainer.Created
}

// cgroupOf is c's cgroup: from libcontainer's state if it can be read;
// else, for a bundle container, from its bundle's config.json; else where
// a tree container's is.
func (rt *Runtime) cgroupOf(c *container) (cgroups.Manager, error) {
	if c.ct == nil && c.meta != nil && c.meta.Kind == bundle.KindBundle {
		if spec, err := loadBundleSpec(c.meta.Bundle); err == nil {
			if cg, err := specconv.CreateCgroupConfig(&specconv.CreateOpts{CgroupName: c.id, Spec: spec}, nil); err == nil {
				return manager.New(cg)
			}
		}
	}
	return rt.containerCgroup(c.id, c.ct)
}
