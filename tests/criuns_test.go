package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// criuNs runs `BIN args...` (BIN: the runtime, or a criu-ns link to it) in
// criu-ns mode with the test's root.
func (e *env) criuNs(bin string, args ...string) result {
	e.t.Helper()
	return runCmd(e.t, func(ctx context.Context, a ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, a...)
		cmd.Dir = e.dir
		cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+e.root)
		return cmd
	}, args...)
}

func (e *env) mustCriuNs(args ...string) result {
	e.t.Helper()
	r := e.criuNs(runtimeBin, append([]string{"criu"}, args...)...)
	if r.code != 0 {
		e.t.Fatalf("unexpected failure: %s", r)
	}
	return r
}

// readPidFile reads a pid file that must exist right now.
func readPidFile(t *testing.T, p string) int {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s holds %q", p, b)
	}
	return pid
}

// checkNsRoot checks pid is the restored root of img in fresh namespaces.
func checkNsRoot(t *testing.T, pid int, img images) {
	t.Helper()
	if !isWorkload(pid) {
		t.Fatalf("pid %d is not a live workload (exe %q)", pid, procExe(pid))
	}
	if got := innermostPid(pid); got != img.origPid {
		t.Errorf("restored root %d has ns pid %d, want %d", pid, got, img.origPid)
	}
	checkFreshNamespaces(t, pid)
	if kids := childrenOf(pid); len(kids) != 1 || !isWorkload(kids[0]) {
		t.Errorf("restored root %d has children %v, want one workload child", pid, kids)
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, pid, img.status)
}

func TestCriuNsRestoreDumpRestore(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	before := hashDir(t, img.dir)

	// restore: --pidfile is relative to -D, as with CRIU.
	e.mustCriuNs("restore", "-D", img.dir, "-d", "--pidfile", "p")
	pid := readPidFile(t, filepath.Join(img.dir, "p"))
	checkNsRoot(t, pid, img)
	os.Remove(filepath.Join(img.dir, "p"))
	assertSameImages(t, before, img.dir)

	// dump by the pid the caller knows (its host pid).
	img2 := filepath.Join(t.TempDir(), "img2")
	if err := os.Mkdir(img2, 0o755); err != nil {
		t.Fatal(err)
	}
	kids := childrenOf(pid)
	e.mustCriuNs("dump", "-t", strconv.Itoa(pid), "-D", img2)
	waitGone(t, append(kids, pid)...)
	counterStopped(t, img.counter)
	if _, err := os.Stat(filepath.Join(img2, "core-"+strconv.Itoa(img.origPid)+".img")); err != nil {
		t.Errorf("the dump has no core image for the ns pid %d: %v", img.origPid, err)
	}

	// ...and restore that dump again.
	e.mustCriuNs("restore", "-D", img2, "-d", "--pidfile", "p")
	pid2 := readPidFile(t, filepath.Join(img2, "p"))
	checkNsRoot(t, pid2, img)

	kids = childrenOf(pid2)
	if err := syscall.Kill(pid2, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitGone(t, append(kids, pid2)...)
	// Whatever criu-ns mode keeps about its trees is a container in the
	// root; delete them all, then nothing may be left.
	ids, err := e.listIDs()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		e.mustRun("delete", "--force", id)
	}
	e.assertNothingLeft()
}

func TestCriuNsPassthrough(t *testing.T) {
	e := newEnv(t)
	// Commands other than restore and dump go to CRIU.
	e.mustCriuNs("check")
	want, err := exec.Command(criuBin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := e.mustCriuNs("--version").stdout; got != string(want) {
		t.Errorf("criu --version through criu-ns mode printed %q, criu prints %q", got, want)
	}
	// argv0 criu-ns selects the mode too.
	link := filepath.Join(t.TempDir(), "criu-ns")
	if err := os.Symlink(runtimeBin, link); err != nil {
		t.Fatal(err)
	}
	if r := e.criuNs(link, "--version"); r.code != 0 || r.stdout != string(want) {
		t.Errorf("criu-ns --version: want CRIU's version: %s", r)
	}

	e.assertNothingLeft()
}

// TestCriuNsRestoreFailure: a failed restore in criu-ns mode says why and
// leaves nothing behind.
func TestCriuNsRestoreFailure(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t)
	before := hashDir(t, img.dir)
	if err := os.Remove(img.counter); err != nil { // a file the tree needs
		t.Fatal(err)
	}
	r := e.criuNs(runtimeBin, "criu", "restore", "-D", img.dir, "-d", "--pidfile", "p")
	if r.code == 0 || strings.TrimSpace(r.stderr) == "" {
		t.Errorf("want a failure with a message: %s", r)
	}
	t.Logf("criu restore -> exit %d: %s", r.code, r.stderr)
	if _, err := os.Stat(filepath.Join(img.dir, "p")); err == nil {
		t.Errorf("a pid file was written for a failed restore")
	}
	assertSameImages(t, before, img.dir)
	e.assertNothingLeft()
}
