package shim

import (
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// What criu-ns swrk mode (criuns/swrk) needs of tree containers: a restore
// whose init serves CRIU's RPC protocol, a dump run by the caller inside
// a container, and the pid translations between the two views.

// RPCRestore makes a tree restore serve CRIU's RPC protocol: instead of
// running `criu restore`, the init runs `criu swrk` and relays between it
// and Channel (internal/criurpc).
type RPCRestore struct {
	// Channel is the init's end of a channel (criurpc.SocketPair); the
	// caller talks on the other end.
	Channel *os.File
	// Started gets the init's host pid once it runs (and holds its own
	// copy of Channel), while Restore waits for the init's report; it must
	// not block. The caller relays CRIU's conversation from then on: the
	// report comes only after CRIU's answer.
	Started func(initPid int)
}

// DumpRPC runs dump while container id, a running tree, is locked: dump
// gets the init (held by pidfd), runs CRIU inside the container's namespaces
// for an RPC client, and says whether the tree ended. As after a
// checkpoint, a container whose tree ended is then stopped, and removed
// if it is ephemeral.
func (rt *Runtime) DumpRPC(id string, dump func(init *pidfd.Proc) (treeEnded bool, err error)) error {
	return rt.withRunning(id, func(c *container) error {
		if c.meta.Kind != bundle.KindTree {
			return fmt.Errorf("container %s is %s, not a tree container", id, describeKind(c.meta.Kind))
		}
		if st, _ := c.ct.Status(); st == libcontainer.Paused {
			return fmt.Errorf("container %s is paused: resume it before a dump", id)
		}
		init, err := c.init()
		if err != nil {
			return ErrNotRunning
		}
		defer init.Close()
		ended, err := dump(init)
		if !ended {
			// The client's dump may have reset the tree's soft-dirty bits
			// (track_mem): no dump of ours is a safe parent any more.
			c.meta.MemTrack = &bundle.MemTrack{Lost: "an RPC client (criu-ns swrk) has dumped the tree since, perhaps resetting its soft-dirty bits"}
			if werr := bundle.WriteMeta(c.dir, c.meta); err == nil {
				err = werr
			}
			return err
		}
		// The tree is gone; the init leaves once it can take the lock.
		c.lock.Unlock()
		init.Wait(-1)
		if c.meta.Ephemeral {
			// Its janitor may be at it too: gone is as good as deleted.
			if derr := rt.Delete(id, true); err == nil {
				err = derr
			}
		}
		return err
	})
}

// FindTree finds the tree container whose pid namespace holds pid (a
// host pid) and returns its id and pid's number in that namespace; id is
// "" when pid lives in no tree container of this root.
func (rt *Runtime) FindTree(pid int) (string, int, error) {
	pidNs, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return "", 0, nil // no such process: not ours either
	}
	if self, _ := os.Readlink("/proc/self/ns/pid"); self == pidNs {
		return "", 0, nil // a process of our own namespace
	}
	ids, err := rt.Root.IDs()
	if err != nil {
		return "", 0, err
	}
	// The roots' pids are recorded: try the container of that root first.
	if root, _ := rt.FindByRootPid(pid); root != "" {
		ids = append([]string{root}, ids...)
	}
	for _, id := range ids {
		dir := rt.Root.ContainerDir(id)
		m, err := bundle.ReadMeta(dir)
		if err != nil || m.Kind != bundle.KindTree {
			continue
		}
		ct, err := load(dir, id)
		if err != nil {
			continue
		}
		st, err := ct.State()
		if err != nil || st.InitProcessPid == 0 {
			continue
		}
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", st.InitProcessPid)); ns == pidNs {
			n, err := nsPid(pid)
			return id, n, err
		}
	}
	return "", 0, nil
}

// InitChild returns the host pid of the process below the init initPid
// whose pid in the container is nsPid: a restored root, as CRIU names it.
func InitChild(initPid, nsPid int) (int, error) { return descendantWithNsPid(initPid, nsPid) }
