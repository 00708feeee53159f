package shim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cgroup2Mount is where a cgroup v2 hierarchy is mounted: /sys/fs/cgroup
// on a v2 machine, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if _, after, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(after, "cgroup2 ") && len(f) > 4 {
			return f[4]
		}
	}
	t.Fatal("no cgroup v2 hierarchy is mounted: this test needs one")
	return ""
}

// waitUnpopulated returns once the kernel says the cgroup is empty, not
// while a process is in it.
func TestWaitUnpopulated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("making a cgroup needs root")
	}
	dir := filepath.Join(cgroup2Mount(t), fmt.Sprintf("criu-ns-runtime-unit-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(sleep.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	if waitUnpopulated(dir, time.Now().Add(100*time.Millisecond)) {
		t.Fatal("waitUnpopulated says empty while sleep runs in the cgroup")
	}
	sleep.Process.Kill()
	if !waitUnpopulated(dir, time.Now().Add(10*time.Second)) {
		t.Fatal("waitUnpopulated still waits though sleep was killed")
	}
	if !waitUnpopulated(filepath.Join(dir, "gone"), time.Now()) {
		t.Error("a cgroup that does not exist is not empty")
	}
}
