package shim

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// An ephemeral container (criu-ns mode: the user never learns its id) is
// removed once its tree ends, by a janitor: a detached process of this
// binary that waits, holding nothing of the container, first for the
// restoring command to be done however it ends (a pipe that command
// holds closes), then for the container's init to exit (a pidfd), and
// then deletes the container. It starts before the id is claimed, so no
// moment of the restore leaves an ephemeral container without one.

// JanitorCommand is the hidden command of cmd/criu-ns-runtime that runs
// Janitor: `criu-ns-runtime --root ROOT janitor ID CREATED`, with the
// read end of the restore's pipe as fd 3.
const JanitorCommand = "janitor"

// startJanitor starts the janitor of container id, made at created; it
// acts once the returned pipe is closed.
func (rt *Runtime) startJanitor(id string, created time.Time) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(rt.Self, "--root", rt.Root.Dir, JanitorCommand, id, created.Format(time.RFC3339Nano))
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = crashpoint.Strip(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // stdio: /dev/null
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	go cmd.Wait() // reap it if it ends while we run
	return w, nil
}

// errNotOurs: the container the janitor was started for is gone; another
// has its id.
var errNotOurs = errors.New("not the janitor's container")

// Janitor removes ephemeral container id, made at created, once its tree
// has ended; restoreDone reaches EOF once the restore is done.
func (rt *Runtime) Janitor(id string, created time.Time, restoreDone *os.File) error {
	io.Copy(io.Discard, restoreDone)
	restoreDone.Close()
	for {
		var init *pidfd.Proc
		err := rt.withAnyContainer(id, func(c *container) error {
			if c.meta != nil && !c.meta.Created.Equal(created) {
				return errNotOurs
			}
			if st, err := c.status(); err == nil && (st == libcontainer.Running || st == libcontainer.Paused) {
				if p, err := c.init(); err == nil {
					init = p
					return nil
				}
			}
			// The janitor shares the restore's mount namespace, where a
			// restore killed mid-way may have left the root staged.
			unmountRootfs(bundle.RootfsPath(c.dir))
			return rt.delete(c, true)
		})
		if init == nil {
			if errors.Is(err, bundle.ErrNotExist) || errors.Is(err, errNotOurs) {
				return nil
			}
			return err
		}
		init.Wait(-1)
		init.Close()
	}
}
