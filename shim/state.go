package shim

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"

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

// State reports container id without taking its lock: like runc, a
// reader never waits for a long checkpoint.
func (rt *Runtime) State(id string) (*State, error) {
	if err := bundle.ValidateID(id); err != nil {
		return nil, err
	}
	return rt.state(rt.Root.ContainerDir(id), id)
}

func (rt *Runtime) state(dir, id string) (*State, error) {
	c, err := rt.open(dir, id, nil)
	if err != nil {
		if _, statErr := os.Stat(dir); errors.Is(err, bundle.ErrNotExist) && statErr == nil {
			// Still being created: meta.json is the first file written.
			return &State{OCIVersion: specs.Version, ID: id, Status: "creating", Bundle: dir,
				Rootfs: bundle.RootfsPath(dir), Owner: "root"}, nil
		}
		return nil, err
	}
	s := &State{
		OCIVersion: specs.Version, ID: id, Status: "stopped", Bundle: dir,
		Rootfs: bundle.RootfsPath(dir), Created: c.meta.Created, Owner: "root",
	}
	c.ops.describe(s, c)
	status, err := c.status()
	if err != nil {
		return nil, err
	}
	s.Status = status.String()
	if status != libcontainer.Stopped {
		if st, err := c.ct.State(); err == nil {
			s.Pid = st.InitProcessPid
		}
	}
	return s, nil
}

// List reports every container under the root.
func (rt *Runtime) List() ([]*State, error) {
	ids, err := rt.Root.IDs()
	if err != nil {
		return nil, err
	}
	// Each state is a few small file reads and a /proc lookup: spread
	// them over the CPUs, as a root can hold hundreds of containers.
	found := make([]*State, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				found[i], _ = rt.state(rt.Root.ContainerDir(ids[i]), ids[i])
			}
		}()
	}
	for i := range ids {
		next <- i
	}
	close(next)
	wg.Wait()
	states := make([]*State, 0, len(ids))
	for _, s := range found {
		if s != nil { // nil: removed while we looked
			states = append(states, s)
		}
	}
	return states, nil
}
