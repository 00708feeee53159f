package setns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// target is a process whose namespaces the commands enter: a child of
// the test, in the test's own namespaces.
func target(t *testing.T) *pidfd.Proc {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("entering a mount namespace needs root (make unit runs as root)")
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	ref, err := pidfd.Of(sleep.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ref.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func run(t *testing.T, o Options, cancelAfter time.Duration, script string) (Status, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	o.Status, o.StatusName = d, "exit"
	cmd, err := Command(o, "/bin/sh", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd.Close()
	if cancelAfter > 0 {
		time.Sleep(cancelAfter)
		cmd.Cancel()
	}
	cmd.Wait()
	st, err := ReadStatus(dir, "exit")
	if err != nil {
		t.Fatalf("no exit status: %v", err)
	}
	return st, dir
}

func TestStatusIsWritten(t *testing.T) {
	o := Options{Target: target(t)}
	if st, _ := run(t, o, 0, "exit 3"); st.OK() || st.Code != 3 || st.Signal != 0 {
		t.Errorf("status %v, want exit status 3", st)
	}
	if st, _ := run(t, o, 0, "kill -9 $$"); st.Signal != 9 {
		t.Errorf("status %v, want killed by SIGKILL", st)
	}
	if st, _ := run(t, o, 0, "exit 0"); !st.OK() {
		t.Errorf("status %v, want ok", st)
	}
}

func TestLeftoversAreKilled(t *testing.T) {
	o := Options{Target: target(t)}
	pidFile := t.TempDir() + "/pid"
	// A helper the command leaves behind, stopped, like CRIU's vdso probe.
	run(t, o, 0, "sleep 60 & echo $! > "+pidFile+"; kill -STOP $!; exit 0")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	time.Sleep(100 * time.Millisecond) // reaped by whoever adopted it
	if st, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil && !strings.Contains(string(st), ") Z") {
		t.Errorf("the command's helper %s survived it: %s", pid, st)
	}
}

func TestCancel(t *testing.T) {
	o := Options{Target: target(t), Grace: time.Second}
	// SIGALRM ends a command that does not handle it...
	if st, _ := run(t, o, 200*time.Millisecond, "sleep 30"); st.Signal == 0 {
		t.Errorf("status %v, want killed", st)
	}
	// ...and one that ignores it is killed after the grace period.
	st, _ := run(t, o, 200*time.Millisecond, "trap '' ALRM; sleep 30; exit 0")
	if st.Signal != 9 {
		t.Errorf("status %v, want killed by SIGKILL", st)
	}
}

// TestSpawn: the spawned command outlives setns-spawn, in a process group
// of its first child's making, and is adopted by the namespace's reaper
// (the test, a subreaper, stands in for a container's init).
func TestSpawn(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	out := filepath.Join(t.TempDir(), "stat")
	cmd, err := Spawn(target(t), nil, nil, []string{"OUT=" + out}, "/bin/sh", "-c",
		`read -r stat </proc/self/stat; echo "$stat" >"$OUT.tmp"; mv "$OUT.tmp" "$OUT"; exec sleep 60`)
	if err != nil {
		t.Fatal(err)
	}
	err = cmd.Run()
	cmd.Close()
	if err != nil {
		t.Fatalf("setns-spawn: %v", err)
	}
	var fields []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(out); err == nil {
			fields = strings.Fields(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the spawned command never ran")
		}
	}
	pid, _ := strconv.Atoi(fields[0])
	defer func() { unix.Kill(pid, unix.SIGKILL); unix.Wait4(pid, nil, 0, nil) }()
	pgid, _ := strconv.Atoi(fields[4])
	if pgid == pid || pgid == unix.Getpgrp() {
		t.Errorf("the spawned command is in process group %d (its pid %d, ours %d): want its first child's", pgid, pid, unix.Getpgrp())
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + fields[0] + "/stat")
		f := strings.Fields(string(b))
		if len(f) > 3 && f[3] == strconv.Itoa(os.Getpid()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spawned command's parent is %v, want the reaper %d", f, os.Getpid())
		}
	}
}
