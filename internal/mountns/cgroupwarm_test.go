package mountns

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupProcsPath(t *testing.T) {
	unified := "/sys/fs/cgroup"
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		unified = "/sys/fs/cgroup/unified"
	}
	for _, tc := range []struct {
		name, cgroup, want string
		ok                 bool
	}{
		{"hybrid: the pids hierarchy first", "12:blkio:/a\n5:pids:/user.slice/x\n0::/user.slice/x\n",
			"/sys/fs/cgroup/pids/user.slice/x/cgroup.procs", true},
		{"v2 only", "0::/a/b\n", unified + "/a/b/cgroup.procs", true},
		{"pids after the unified line still wins", "0::/u\n3:pids:/p\n", "/sys/fs/cgroup/pids/p/cgroup.procs", true},
		{"no pids, no unified", "4:memory:/m\n", "", false},
		{"garbage", "nonsense\n::\n", "", false},
		{"empty", "", "", false},
	} {
		f := filepath.Join(t.TempDir(), "cgroup")
		if err := os.WriteFile(f, []byte(tc.cgroup), 0o644); err != nil {
			t.Fatal(err)
		}
		got, ok := cgroupProcsPath(f)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: cgroupProcsPath = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := cgroupProcsPath(filepath.Join(t.TempDir(), "missing")); ok {
		t.Error("a missing cgroup file gave a path")
	}
	// This process's own: the file the warm-up writes to exists.
	if p, ok := cgroupProcsPath("/proc/self/cgroup"); !ok {
		t.Error("no cgroup.procs for this process")
	} else if _, err := os.Stat(p); err != nil {
		t.Errorf("own cgroup.procs %s: %v", p, err)
	}
}
