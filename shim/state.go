package shim

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/utils"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// Annotations that State adds for restored trees.
const (
	AnnotationRootPid   = "io.criu-ns-runtime.root.pid"
	AnnotationRootNsPid = "io.criu-ns-runtime.root.ns-pid"
	AnnotationImagePath = "io.criu-ns-runtime.image-path"
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
	meta, err := bundle.ReadMeta(dir)
	if err != nil {
		if _, statErr := os.Stat(dir); errors.Is(err, bundle.ErrNotExist) && statErr == nil {
			// Still being created: meta.json is written last.
			return &State{OCIVersion: specs.Version, ID: id, Status: "created", Bundle: dir,
				Rootfs: bundle.RootfsPath(dir), Owner: "root"}, nil
		}
		return nil, err
	}
	s := &State{
		OCIVersion: specs.Version, ID: id, Status: "stopped", Bundle: dir,
		Rootfs: bundle.RootfsPath(dir), Created: meta.Created, Owner: "root",
		Annotations: map[string]string{AnnotationImagePath: meta.ImagePath},
	}
	if meta.Bundle != "" {
		s.Bundle = meta.Bundle
	}
	if meta.RootPid > 0 {
		s.Annotations[AnnotationRootPid] = strconv.Itoa(meta.RootPid)
		s.Annotations[AnnotationRootNsPid] = strconv.Itoa(meta.RootNsPid)
	}
	ct, err := load(dir, id)
	if err != nil {
		return s, nil // libcontainer's state is gone: nothing runs
	}
	status, err := ct.Status()
	if err != nil {
		return nil, err
	}
	s.Status = status.String()
	if status != libcontainer.Stopped {
		if st, err := ct.State(); err == nil {
			s.Pid = st.InitProcessPid
		}
	}
	if meta.Bundle != "" {
		// A manager's container: report its own rootfs and annotations.
		cfg := ct.Config()
		s.Rootfs = cfg.Rootfs
		_, s.Annotations = utils.Annotations(cfg.Labels)
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
