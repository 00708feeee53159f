package shim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// writeLibctState writes a state.json for container id in dir, as
// libcontainer lays it out, with init as its init and freezer as its
// freezer cgroup.
func writeLibctState(t *testing.T, dir, id string, init pidfd.Ref, freezer string) string {
	t.Helper()
	paths := map[string]string{"freezer": freezer}
	if cgroups.IsCgroup2UnifiedMode() {
		paths = map[string]string{"": freezer}
	}
	st := map[string]any{
		"id": id, "init_process_pid": init.Pid, "init_process_start": init.StartTime,
		"config": map[string]any{
			"rootfs": "/r", "labels": []string{"bundle=/b", "k=v"},
			"cgroups": map[string]any{"path": "/x/" + id, "devices": []any{map[string]any{"type": 97}}},
			"mounts":  []any{map[string]any{"source": "proc"}},
		},
		"cgroup_paths": paths,
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	p := libcontainerState(dir, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostFreezer is the host's root freezer cgroup, which is never frozen:
// the cgroup library reads freezer files only on cgroupfs. A frozen
// cgroup is tests/'s (TestPauseShowsInStateAndList).
func hostFreezer() string {
	if cgroups.IsCgroup2UnifiedMode() {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/freezer"
}

// TestLibctStateStatus: the status state and list report, decided as
// libcontainer decides it, from the same files.
func TestLibctStateStatus(t *testing.T) {
	self, err := pidfd.Of(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	gone := pidfd.Ref{Pid: self.Pid, StartTime: self.StartTime + 1}
	for _, tc := range []struct {
		name  string
		init  pidfd.Ref
		fifo  bool
		alive bool // the caller says the init runs
		want  libcontainer.Status
	}{
		{"running", self, false, false, libcontainer.Running},
		{"init gone (its pid reused)", gone, false, false, libcontainer.Stopped},
		{"init said to run", gone, false, true, libcontainer.Running},
		{"created: exec.fifo is there", self, true, false, libcontainer.Created},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLibctState(t, dir, "c1", tc.init, hostFreezer())
			if tc.fifo {
				if err := os.WriteFile(filepath.Join(bundle.LibcontainerRoot(dir), "c1", execFifo), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s, err := readLibctState(dir, "c1")
			if err != nil {
				t.Fatal(err)
			}
			if s.InitProcessPid != tc.init.Pid || s.Config.Rootfs != "/r" || len(s.Config.Labels) != 2 || s.Config.Cgroups.Path != "/x/c1" {
				t.Errorf("read %+v", s)
			}
			got, err := s.status(tc.alive)
			if err != nil || got != tc.want {
				t.Errorf("status: %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

// TestReadLibctStateErrors: a missing state.json is libcontainer's
// ErrNotExist; a corrupt one is an error naming the file and what is wrong.
func TestReadLibctStateErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := readLibctState(dir, "c1"); !errors.Is(err, libcontainer.ErrNotExist) {
		t.Errorf("missing state.json: %v, want ErrNotExist", err)
	}
	self, _ := pidfd.Of(os.Getpid())
	p := writeLibctState(t, dir, "c1", self, hostFreezer())
	whole, _ := os.ReadFile(p)
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "the file is empty"},
		{"truncated", string(whole[:len(whole)/2]), "truncated after"},
		{"garbage", "Lorem ipsum \x00\xff", "invalid character"},
		{"no cgroup config", `{"init_process_pid": 1, "config": {}}`, "no cgroup config"},
	} {
		if err := os.WriteFile(p, []byte(tc.data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readLibctState(dir, "c1")
		if err == nil || !strings.Contains(err.Error(), p+" is corrupt") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q naming %s", tc.name, err, tc.want, p)
		}
	}
}
