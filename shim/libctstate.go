package shim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/jsonscan"
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
	Config               libctConfig       `json:"config"`
	// dir is libcontainer's state directory of the container.
	dir string
}

// libctConfig is what state and list read of the container's config.
type libctConfig struct {
	Rootfs  string      `json:"rootfs"`
	Labels  []string    `json:"labels"`
	Cgroups *cgroupName `json:"cgroups"`
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
	s := &libctState{dir: filepath.Dir(path)}
	err := smallfile.Use(path, func(b []byte) error {
		if s.scan(b) {
			return nil
		}
		// Not a file the scan can vouch for: encoding/json decides, and
		// words what is wrong with it.
		*s = libctState{dir: s.dir}
		if err := json.Unmarshal(b, s); err != nil {
			return fmt.Errorf("%s is corrupt: %w", path, bundle.JSONError(b, err))
		}
		return nil
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, libcontainer.ErrNotExist
	case err != nil:
		return nil, err
	}
	if s.Config.Cgroups == nil {
		return nil, fmt.Errorf("%s is corrupt: it has no cgroup config", path)
	}
	return s, nil
}

// scan decodes state.json's content b into s as json.Unmarshal would,
// in one pass that builds nothing of the config but what s keeps: for
// 500 containers json.Unmarshal was a third of list's CPU time. It
// returns false, with s half-filled, where it cannot be sure to decode
// as json.Unmarshal does (see jsonscan): on every corrupt file, and
// where a key comes twice (json.Unmarshal merges the two).
func (s *libctState) scan(b []byte) bool {
	d := &stateScan{Scanner: jsonscan.New(b)}
	if !d.BeginObject() {
		return false
	}
	for d.More() {
		switch k := d.Key(); string(k) {
		case "init_process_pid":
			if d.once(0) && !d.Null() {
				s.InitProcessPid = int(d.Int())
			}
		case "init_process_start":
			if d.once(1) && !d.Null() {
				s.InitProcessStartTime = d.Uint()
			}
		case "cgroup_paths":
			if d.once(2) && !d.Null() && d.BeginObject() {
				s.CgroupPaths = map[string]string{}
				for d.More() {
					k := string(d.Key())
					s.CgroupPaths[k] = d.optString()
				}
			}
		case "config":
			if d.once(3) && !d.Null() && d.BeginObject() {
				d.config(&s.Config)
			}
		default:
			if d.Other(k, "init_process_pid", "init_process_start", "cgroup_paths", "config") {
				d.Skip()
			}
		}
	}
	return d.End()
}

// stateScan is scan's cursor, with the keys it has met.
type stateScan struct {
	*jsonscan.Scanner
	seen uint32
}

// once says whether this is the first time of key number n (each key of
// each object scan decodes has its own); the second makes it give up.
func (d *stateScan) once(n uint) bool {
	if d.seen&(1<<n) != 0 {
		d.Fail()
		return false
	}
	d.seen |= 1 << n
	return true
}

// optString is a string value, or "" for null, as json.Unmarshal gives
// a map's value or a slice's element.
func (d *stateScan) optString() string {
	if d.Null() {
		return ""
	}
	return d.String()
}

// config scans state.json's config, after its '{'.
func (d *stateScan) config(c *libctConfig) {
	for d.More() {
		switch k := d.Key(); string(k) {
		case "rootfs":
			if d.once(4) && !d.Null() {
				c.Rootfs = d.String()
			}
		case "labels":
			if d.once(5) && !d.Null() && d.BeginArray() {
				c.Labels = []string{}
				for d.More() {
					c.Labels = append(c.Labels, d.optString())
				}
			}
		case "cgroups":
			if d.once(6) && !d.Null() && d.BeginObject() {
				c.Cgroups = &cgroupName{}
				d.cgroups(c.Cgroups)
			}
		default:
			if d.Other(k, "rootfs", "labels", "cgroups") {
				d.Skip()
			}
		}
	}
}

// cgroups scans config.cgroups, after its '{'.
func (d *stateScan) cgroups(n *cgroupName) {
	str := func(key uint, v *string) {
		if d.once(key) && !d.Null() {
			*v = d.String()
		}
	}
	flag := func(key uint, v *bool) {
		if d.once(key) && !d.Null() {
			*v = d.Bool()
		}
	}
	for d.More() {
		switch k := d.Key(); string(k) {
		case "name":
			str(7, &n.Name)
		case "parent":
			str(8, &n.Parent)
		case "path":
			str(9, &n.Path)
		case "scope_prefix":
			str(10, &n.ScopePrefix)
		case "Systemd":
			flag(11, &n.Systemd)
		case "Rootless":
			flag(12, &n.Rootless)
		default:
			if d.Other(k, "name", "parent", "path", "scope_prefix", "Systemd", "Rootless") {
				d.Skip()
			}
		}
	}
}

// status is libcontainer's status of the container, decided as
// libcontainer's refreshState decides it: paused if its freezer cgroup
// is frozen, stopped once its init has gone, created while exec.fifo
// exists, else running. initAlive says the caller knows the init runs.
func (s *libctState) status(initAlive bool) (libcontainer.Status, error) {
	frozen, err := s.frozen()
	switch {
	case err != nil:
		return 0, err
	case frozen:
		return libcontainer.Paused, nil
	case !initAlive && !s.init().Alive():
		return libcontainer.Stopped, nil
	}
	var st unix.Stat_t
	if unix.Stat(filepath.Join(s.dir, execFifo), &st) == nil {
		return libcontainer.Created, nil
	}
	return libcontainer.Running, nil
}

// frozen says whether the container's freezer cgroup is frozen, as
// libcontainer's cgroup manager says. On cgroup v1 without systemd all
// the manager does is read the freezer files of the freezer path
// state.json records: readV1Freezer reads them without a manager, and
// with two system calls a file instead of five.
func (s *libctState) frozen() (bool, error) {
	n := s.Config.Cgroups
	if dir := s.CgroupPaths["freezer"]; !n.Systemd && dir != "" && !cgroups.IsCgroup2UnifiedMode() &&
		filepath.Clean(dir) == dir && strings.HasPrefix(dir, cgroupfsPrefix) {
		st, err := readV1Freezer(dir)
		return st == cgroups.Frozen, err
	}
	cm, err := manager.NewWithPaths(&cgroups.Cgroup{
		Name: n.Name, Parent: n.Parent, Path: n.Path, ScopePrefix: n.ScopePrefix,
		Systemd: n.Systemd, Rootless: n.Rootless,
		Resources: &cgroups.Resources{}, // cgroup v1's manager wants them set
	}, s.CgroupPaths)
	if err != nil {
		return false, err
	}
	st, err := cm.GetFreezerState()
	return st == cgroups.Frozen, err
}

// cgroupfsPrefix is where the cgroup library reads cgroup files from
// (elsewhere it checks that a file is on a cgroupfs).
const cgroupfsPrefix = "/sys/fs/cgroup/"

// readV1Freezer is the state of the cgroup v1 freezer cgroup dir, as the
// kernel's files give it and libcontainer reads it: FROZEN is frozen
// only if the cgroup was frozen itself (freezer.self_freezing; else an
// ancestor froze it, and the container counts as thawed), FREEZING is
// read again 1 ms later, and no freezer file (no freezer) is Undefined.
func readV1Freezer(dir string) (cgroups.FreezerState, error) {
	for {
		var state string
		err := smallfile.UseOnce(filepath.Join(dir, "freezer.state"), func(b []byte) error {
			state = knownWord(bytes.TrimSpace(b), "THAWED", "FROZEN", "FREEZING")
			return nil
		})
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
			return cgroups.Undefined, nil
		}
		if err != nil {
			return cgroups.Undefined, err
		}
		switch state {
		case "THAWED":
			return cgroups.Thawed, nil
		case "FREEZING":
			time.Sleep(time.Millisecond)
			continue
		case "FROZEN":
		default:
			return cgroups.Undefined, fmt.Errorf("unknown freezer.state %q", state)
		}
		var self string
		err = smallfile.UseOnce(filepath.Join(dir, "freezer.self_freezing"), func(b []byte) error {
			self = knownWord(b, "0\n", "1\n")
			return nil
		})
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV):
			return cgroups.Frozen, nil // a kernel without it: as frozen
		case err != nil:
			return cgroups.Frozen, err
		case self == "0\n":
			return cgroups.Thawed, nil
		case self == "1\n":
			return cgroups.Frozen, nil
		}
		return cgroups.Undefined, fmt.Errorf(`unknown "freezer.self_freezing" state: %q`, self)
	}
}

// knownWord is the one of words that b holds, else a copy of b: what a
// cgroup file says, without a copy for the words expected.
func knownWord(b []byte, words ...string) string {
	for _, w := range words {
		if string(b) == w {
			return w
		}
	}
	return string(b)
}

// init names the container's init process.
func (s *libctState) init() pidfd.Ref {
	return pidfd.Ref{Pid: s.InitProcessPid, StartTime: s.InitProcessStartTime}
}

// libcontainerState is the path of libcontainer's state file.
func libcontainerState(dir, id string) string {
	return filepath.Join(bundle.LibcontainerRoot(dir), id, "state.json")
}
