package shim

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"

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

// realLibctState is a state.json as libcontainer writes it (its own
// types, marshalled), with the settings a bundle container's has.
func realLibctState(t testing.TB) []byte {
	t.Helper()
	st := libcontainer.State{
		BaseState: libcontainer.BaseState{
			ID: "c1", InitProcessPid: 4242, InitProcessStartTime: 1234567,
			Created: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
			Config: configs.Config{
				Rootfs: "/run/c1/rootfs", Labels: []string{"bundle=/b/c1", "io.x=y"},
				Mounts:     []*configs.Mount{{Source: "proc", Destination: "/proc", Device: "proc"}},
				Namespaces: configs.Namespaces{{Type: configs.NEWPID}, {Type: configs.NEWNS, Path: "/proc/1/ns/mnt"}},
				Cgroups: &cgroups.Cgroup{Name: "c1", Parent: "/p", Path: "/criu-ns-runtime/x/c1", ScopePrefix: "s", Systemd: false, Rootless: true,
					Resources: &cgroups.Resources{Memory: 1 << 30, CpuShares: 512, Devices: []*devices.Rule{{Type: 'c', Major: 1, Minor: 3, Permissions: "rwm", Allow: true}}}},
			},
		},
		Rootless:            true,
		CgroupPaths:         map[string]string{"freezer": "/sys/fs/cgroup/freezer/x/c1", "memory": "/sys/fs/cgroup/memory/x/c1", "": "/u"},
		NamespacePaths:      map[configs.NamespaceType]string{configs.NEWPID: "/proc/4242/ns/pid"},
		ExternalDescriptors: []string{"/dev/null", "pipe:[1]", "pipe:[2]"},
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAsUnmarshal checks that scan either gives up on b or gives what
// json.Unmarshal gives, and says whether it did not give up.
func sameAsUnmarshal(t *testing.T, b []byte) bool {
	t.Helper()
	var got, want libctState
	if !got.scan(b) {
		return false
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Errorf("%q: scanned %+v, but json.Unmarshal: %v", b, got, err)
	} else if !reflect.DeepEqual(got, want) {
		t.Errorf("%q: scanned %+v, json.Unmarshal gives %+v", b, got, want)
	}
	return true
}

// TestLibctStateScan: what state and list read of state.json is what
// json.Unmarshal reads, and whatever the scan cannot read as json.Unmarshal
// does goes to json.Unmarshal.
func TestLibctStateScan(t *testing.T) {
	real := realLibctState(t)
	if !sameAsUnmarshal(t, real) {
		t.Errorf("libcontainer's own state.json: not scanned\n%s", real)
	}
	self, _ := pidfd.Of(os.Getpid())
	written, _ := os.ReadFile(writeLibctState(t, t.TempDir(), "c1", self, hostFreezer()))
	if !sameAsUnmarshal(t, written) {
		t.Errorf("writeLibctState's state.json: not scanned\n%s", written)
	}
	for _, tc := range []struct {
		doc  string
		scan bool // the scan reads it
	}{
		{`{"config":{"cgroups":{}}}`, true},
		{`{"config":{"cgroups":null}}`, true},
		{`{"config":null,"init_process_pid":null,"cgroup_paths":null}`, true},
		{`{"cgroup_paths":{},"config":{"labels":[],"cgroups":{"Systemd":true}}}`, true},
		{`{"cgroup_paths":{"a":null},"config":{"labels":[null,"x"]}}`, true},
		{`{"init_process_pid":-1,"init_process_start":0}`, true},
		{`{"ID":"x","rootless":true,"config":{"Cgroups_":1}}`, true},
		{`null`, false}, // json.Unmarshal takes it; s stays zero
		{`[]`, false},   // not an object
		{`{"init_process_pid":1,"init_process_pid":2}`, false},                 // twice: json.Unmarshal keeps the last
		{`{"config":{"cgroups":{"path":"a"}},"config":{"rootfs":"r"}}`, false}, // twice: it merges
		{`{"Init_Process_Pid":3}`, false},                                      // json.Unmarshal ignores case
		{`{"config":{"CGROUPS":{"PATH":"x"}}}`, false},
		{`{"config":{"cgroups":{"systemd":true}}}`, false},
		{`{"config":{"rootfſ":"x"}}`, false}, // ſ folds to s
		{`{"config":{"rootfs":"a\/b"}}`, false},
		{`{"cgroup_paths":{"a\u0041":"x"}}`, false},
		{`{"init_process_pid":1.0}`, false},
		{`{"init_process_pid":"1"}`, false},
		{`{"init_process_start":-1}`, false},
		{`{"config":{"labels":"x"}}`, false},
		{`{"config":{"cgroups":{"Rootless":1}}}`, false},
		{`{"config":{"cgroups":[]}}`, false},
		{`{"config":{"mounts":[{"x":01}]}}`, false}, // corrupt where nothing is read
		{`{"config":{"cgroups":{}}} x`, false},
		{`{"config":{"cgroups":{}}`, false},
	} {
		if got := sameAsUnmarshal(t, []byte(tc.doc)); got != tc.scan {
			t.Errorf("%s: scanned %v, want %v", tc.doc, got, tc.scan)
		}
	}
}

// FuzzLibctStateScan: wherever the scan reads a state.json, it reads
// what json.Unmarshal reads (the seed corpus: libcontainer's own file).
func FuzzLibctStateScan(f *testing.F) {
	f.Add(realLibctState(f))
	f.Add([]byte(`{"cgroup_paths":{"a":null},"config":{"labels":[null,"x"],"cgroups":{"Systemd":true}}}`))
	f.Fuzz(func(t *testing.T, b []byte) { sameAsUnmarshal(t, b) })
}

// TestReadV1Freezer: the freezer's files read as libcontainer reads them.
func TestReadV1Freezer(t *testing.T) {
	for _, tc := range []struct {
		state, self string // "": no such file
		want        cgroups.FreezerState
		err         string
	}{
		{"THAWED\n", "0\n", cgroups.Thawed, ""},
		{"FROZEN\n", "1\n", cgroups.Frozen, ""},
		{"FROZEN\n", "0\n", cgroups.Thawed, ""}, // an ancestor froze it
		{"FROZEN\n", "", cgroups.Frozen, ""},
		{"", "", cgroups.Undefined, ""},
		{"FROZEN\n", "2\n", cgroups.Undefined, "freezer.self_freezing"},
		{"MELTED\n", "", cgroups.Undefined, `unknown freezer.state "MELTED"`},
	} {
		dir := t.TempDir()
		for name, data := range map[string]string{"freezer.state": tc.state, "freezer.self_freezing": tc.self} {
			if data != "" {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		got, err := readV1Freezer(dir)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("state %q, self_freezing %q: %v, %v; want %v, error %q", tc.state, tc.self, got, err, tc.want, tc.err)
		}
	}
	// FREEZING is read again until it settles.
	dir := t.TempDir()
	p := filepath.Join(dir, "freezer.state")
	if err := os.WriteFile(p, []byte("FREEZING\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(20*time.Millisecond, func() { os.WriteFile(p+".tmp", []byte("THAWED\n"), 0o600); os.Rename(p+".tmp", p) })
	if got, err := readV1Freezer(dir); got != cgroups.Thawed || err != nil {
		t.Errorf("FREEZING, then THAWED: %v, %v", got, err)
	}
	// The host's own freezer, as the library reads it.
	if !cgroups.IsCgroup2UnifiedMode() {
		want, wantErr := (&fs.FreezerGroup{}).GetState(hostFreezer())
		if got, err := readV1Freezer(hostFreezer()); got != want || (err == nil) != (wantErr == nil) {
			t.Errorf("%s: %v, %v; the cgroup library: %v, %v", hostFreezer(), got, err, want, wantErr)
		}
	}
}

// BenchmarkLibctStateScan: the scan against json.Unmarshal, on
// libcontainer's own file.
func BenchmarkLibctStateScan(b *testing.B) {
	real := realLibctState(b)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s libctState
			if !s.scan(real) {
				b.Fatal("not scanned")
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s libctState
			if err := json.Unmarshal(real, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
