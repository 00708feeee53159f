package shim

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// State is runc's `state` JSON.
type State struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Annotations that State adds for any kind of container.
const (
	// AnnotationReason says why a container has its status: why it is
	// stopped though never run, or (status "error") what is wrong.
	AnnotationReason = "io.criu-ns-runtime.reason"
	// AnnotationCheckpoint is "in progress" while a checkpoint holds the
	// container.
	AnnotationCheckpoint = "io.criu-ns-runtime.checkpoint"
)

// StatusError is the status list gives a container whose files it cannot
// read; AnnotationReason says which and why.
const StatusError = "error"

// State reports container id without waiting for its lock: like runc, a
// reader never waits for a long checkpoint. When nobody holds the lock,
// it first finishes what a command that died left half-done (recover),
// so what it reports is what is true.
func (rt *Runtime) State(id string) (*State, error) {
	if err := bundle.ValidateID(id); err != nil {
		return nil, err
	}
	return rt.state(rt.Root.ContainerDir(id), id)
}

func (rt *Runtime) state(dir, id string) (*State, error) {
	c, err := rt.lookAny(dir, id)
	if err != nil {
		return nil, err
	}
	if c.broken != nil {
		return nil, c.broken
	}
	busy := false
	if c.meta == nil || c.meta.Restoring() || bundle.HasJournal(dir) {
		lock, err := rt.Root.TryLock(id)
		switch {
		case err == nil:
			defer lock.Unlock()
			if c, err = rt.openAny(dir, id, lock); err != nil {
				return nil, err
			}
			if c.broken == nil && c.meta != nil {
				if err := rt.recover(c); err != nil {
					return nil, err
				}
			}
		case errors.Is(err, bundle.ErrBusy):
			busy = true
		default:
			return nil, err
		}
	}
	return rt.describe(c, busy)
}

// openAny opens the container in dir, which may have no meta.json yet.
func (rt *Runtime) openAny(dir, id string, lock *bundle.Lock) (*container, error) {
	c, err := rt.open(dir, id, lock)
	return orUnwritten(c, err, dir, id, lock)
}

// lookAny is openAny for a command that only reports (look).
func (rt *Runtime) lookAny(dir, id string) (*container, error) {
	c, err := rt.look(dir, id, nil)
	return orUnwritten(c, err, dir, id, nil)
}

// orUnwritten passes on what open or look returned, but for ErrNotExist
// while the directory exists: a restore died before it wrote meta.json,
// and the container is one without it.
func orUnwritten(c *container, err error, dir, id string, lock *bundle.Lock) (*container, error) {
	if errors.Is(err, bundle.ErrNotExist) {
		if _, statErr := os.Stat(dir); statErr != nil {
			return nil, bundle.ErrNotExist
		}
		return &container{id: id, dir: dir, lock: lock}, nil
	}
	return c, err
}

// describe is c's state; busy says another command holds c's lock.
func (rt *Runtime) describe(c *container, busy bool) (*State, error) {
	s := &State{
		OCIVersion: specs.Version, ID: c.id, Status: "stopped", Bundle: c.dir,
		Rootfs: bundle.RootfsPath(c.dir), Owner: "root",
	}
	if c.broken != nil {
		return nil, c.broken
	}
	annotate := func(k, v string) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
	if c.meta == nil {
		if busy {
			s.Status = "creating" // meta.json is the first file a restore writes
		} else {
			annotate(AnnotationReason, reasonStopped(c))
		}
		return s, nil
	}
	s.Created = c.meta.Created
	c.ops.describe(s, c)
	status, err := c.status()
	if err != nil {
		return nil, err
	}
	s.Status = status.String()
	switch {
	case busy && c.meta.Restoring():
		s.Status = "creating"
	case busy && bundle.HasJournal(c.dir):
		annotate(AnnotationCheckpoint, "in progress")
	case !busy && reasonStopped(c) != "":
		annotate(AnnotationReason, reasonStopped(c))
	}
	if status != libcontainer.Stopped {
		s.Pid = c.lc.InitProcessPid
	}
	return s, nil
}

// List reports every container under the root. A container whose files
// cannot be read is listed with status "error" and the reason, never
// left out.
func (rt *Runtime) List() ([]*State, error) {
	ids, err := rt.Root.IDs()
	if err != nil {
		return nil, err
	}
	// Each state is a few small file reads and /proc lookups: spread
	// them over the CPUs, as a root can hold hundreds of containers. The
	// workers take the next index from a counter: a channel would wake a
	// worker for each container.
	found := make([]*State, len(ids))
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < listWorkersN(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ids); i = int(next.Add(1) - 1) {
				dir := rt.Root.ContainerDir(ids[i])
				s, err := rt.state(dir, ids[i])
				switch {
				case errors.Is(err, bundle.ErrNotExist):
					// removed while we looked
				case err != nil:
					s = &State{OCIVersion: specs.Version, ID: ids[i], Status: StatusError, Bundle: dir,
						Rootfs: bundle.RootfsPath(dir), Created: createdAt(dir), Owner: "root",
						Annotations: map[string]string{AnnotationReason: err.Error()}}
				}
				found[i] = s
			}
		}()
	}
	wg.Wait()
	states := make([]*State, 0, len(ids))
	for _, s := range found {
		if s != nil {
			states = append(states, s)
		}
	}
	return states, nil
}

// createdAt is when the container in dir was made, for a container whose
// files cannot be read: meta.json's record if it can be, else the birth
// time of the directory, which its creation claimed.
func createdAt(dir string) time.Time {
	if m, err := bundle.ReadMeta(dir); err == nil {
		return m.Created
	}
	var stx unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, dir, 0, unix.STATX_BTIME, &stx) == nil && stx.Mask&unix.STATX_BTIME != 0 {
		return time.Unix(stx.Btime.Sec, int64(stx.Btime.Nsec)).UTC()
	}
	return time.Time{}
}

// listWorkersN is how many goroutines list spreads the containers over.
var listWorkersN = func() int { return runtime.GOMAXPROCS(0) }
