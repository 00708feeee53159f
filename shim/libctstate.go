package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/smallfile"
)

// libctState is what the runtime reads of libcontainer's state.json
// itself: the container's init, its cgroups, and the settings state
// reports. state and list read only this. libcontainer.Load decodes the
// whole config, and Load and Status each check the init through
// libcontainer's hardened procfs; for 500 containers that was most of
// list's 150 ms. Commands that act on a container still Load it.
type libctState struct {
	InitProcessPid       int               `json:"init_process_pid"`
	InitProcessStartTime uint64            `json:"init_process_start"`
	CgroupPaths          map[string]string `json:"cgroup_paths"`
	Config               struct {
		Rootfs  string      `json:"rootfs"`
		Labels  []string    `json:"labels"`
		Cgroups *cgroupName `json:"cgroups"`
	} `json:"config"`
	// dir is libcontainer's state directory of the container.
	dir string
}

// cgroupName is the part of libcontainer's cgroup config that says where
// the cgroup is and which manager drives it: all that reading its
// freezer needs. The rest (the limits, the device rules) is most of it.
type cgroupName struct {
	Name        string `json:"name"`
	Parent      string `json:"parent"`
	Path        string `json:"path"`
	ScopePrefix string `json:"scope_prefix"`
	Systemd     bool   `json:"Systemd"`
	Rootless    bool   `json:"Rootless"`
}

// execFifo is libcontainer's exec.fifo: it exists from create until start.
const execFifo = "exec.fifo"

// readLibctState reads libcontainer's state.json of container id in dir;
// libcontainer.ErrNotExist if there is none (the container never started,
// or its dump removed it), an error naming the file if it is corrupt.
func readLibctState(dir, id string) (*libctState, error) {
	path := libcontainerState(dir, id)
	b, err := smallfile.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, libcontainer.ErrNotExist
	}
	if err != nil {
		return nil, err
	}
	s := &libctState{dir: filepath.Dir(path)}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("%s is corrupt: %w", path, bundle.JSONError(b, err))
	}
	if s.Config.Cgroups == nil {
		return nil, fmt.Errorf("%s is corrupt: it has no cgroup config", path)
	}
	return s, nil
}

// status is libcontainer's status of the container, decided as
// libcontainer's refreshState decides it: paused if its freezer cgroup
// is frozen, stopped once its init has gone, created while exec.fifo
// exists, else running. initAlive says the caller knows the init runs.
func (s *libctState) status(initAlive bool) (libcontainer.Status, error) {
	n := s.Config.Cgroups
	cm, err := manager.NewWithPaths(&cgroups.Cgroup{
		Name: n.Name, Parent: n.Parent, Path: n.Path, ScopePrefix: n.ScopePrefix,
		Systemd: n.Systemd, Rootless: n.Rootless,
		Resources: &cgroups.Resources{}, // cgroup v1's manager wants them set
	}, s.CgroupPaths)
	if err != nil {
		return 0, err
	}
	frozen, err := cm.GetFreezerState()
	switch {
	case err != nil:
		return 0, err
	case frozen == cgroups.Frozen:
		return libcontainer.Paused, nil
	case !initAlive && !s.init().Alive():
		return libcontainer.Stopped, nil
	}
	if _, err := os.Stat(filepath.Join(s.dir, execFifo)); err == nil {
		return libcontainer.Created, nil
	}
	return libcontainer.Running, nil
}

// init names the container's init process.
func (s *libctState) init() pidfd.Ref {
	return pidfd.Ref{Pid: s.InitProcessPid, StartTime: s.InitProcessStartTime}
}

// libcontainerState is the path of libcontainer's state file.
func libcontainerState(dir, id string) string {
	return filepath.Join(bundle.LibcontainerRoot(dir), id, "state.json")
}
