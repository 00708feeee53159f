package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// checkTree checks the container id runs a complete restored tree: the
// root has the original's pid inside a fresh pid+mount namespace, its
// child (when withChild) was restored too, and the counter advances.
// It returns the root's host pid.
func (e *env) checkTree(id string, img images, withChild bool) int {
	e.t.Helper()
	host, ns := e.rootPids(id)
	if ns != img.origPid {
		e.t.Errorf("root's ns pid is %d, want the original pid %d", ns, img.origPid)
	}
	checkFreshNamespaces(e.t, host)
	if withChild {
		kids := childrenOf(host)
		if len(kids) != 1 || !isWorkload(kids[0]) {
			e.t.Errorf("restored root %d has children %v, want one workload child", host, kids)
		}
	}
	waitCounterAdvances(e.t, img.counter)
	return host
}

func TestRestoreWhileOriginalPIDsTaken(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	w := startWorkload(t, dir, "-child")
	img := filepath.Join(dir, "img")
	criuDump(t, w.pid(), img, "--leave-running")
	if !isWorkload(w.pid()) || len(childrenOf(w.pid())) != 1 {
		t.Fatalf("the original tree did not survive criu dump --leave-running")
	}

	e.mustRun("restore", "-d", "--image-path", img, cid("taken"))
	host := e.checkTree(cid("taken"), images{dir: img, counter: w.counter, origPid: w.pid()}, true)
	if host == w.pid() {
		t.Errorf("the restored root has the original's host pid %d", host)
	}
	if !isWorkload(w.pid()) {
		t.Fatalf("the original %d died during the restore", w.pid())
	}

	// Both copies write the counter: stop the original, the restored
	// copy alone must keep it moving.
	w.cmd.Process.Kill()
	w.waitExit(t)
	waitCounterAdvances(t, w.counter)
	if !isWorkload(host) {
		t.Fatalf("restored root %d died", host)
	}

	kids := childrenOf(host)
	e.mustRun("delete", "--force", cid("taken"))
	waitGone(t, append(kids, host)...)
	counterStopped(t, w.counter)
	e.assertNothingLeft()
}

func TestCheckpointRestoreCycles(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "64", "-child")
	dirs := []string{img.dir}
	for i := 1; i <= 3; i++ {
		dirs = append(dirs, filepath.Join(t.TempDir(), fmt.Sprintf("cycle%d", i)))
	}
	for i := 0; i < 3; i++ {
		t.Logf("cycle %d: restore from %s, checkpoint to %s", i+1, dirs[i], dirs[i+1])
		e.mustRun("restore", "-d", "--image-path", dirs[i], cid("cyc"))
		host := e.checkTree(cid("cyc"), img, true)
		checkMemory(t, host, img.status)
		kids := childrenOf(host)

		e.mustRun("checkpoint", "--image-path", dirs[i+1], cid("cyc"))
		waitGone(t, append(kids, host)...)
		counterStopped(t, img.counter)
		for _, f := range []string{"inventory.img", "pstree.img", fmt.Sprintf("core-%d.img", img.origPid)} {
			if _, err := os.Stat(filepath.Join(dirs[i+1], f)); err != nil {
				t.Errorf("checkpoint wrote no %s: %v", f, err)
			}
		}
		e.waitStatus(cid("cyc"), "stopped")
		e.mustRun("delete", cid("cyc"))
		e.mustFail([]string{"does not exist"}, "state", cid("cyc"))
	}

	// The last checkpoint restores as well as the first.
	e.mustRun("restore", "-d", "--image-path", dirs[3], cid("cyc"))
	host := e.checkTree(cid("cyc"), img, true)
	checkMemory(t, host, img.status)
	e.mustRun("delete", "--force", cid("cyc"))
	waitGone(t, host)
	e.assertNothingLeft()
}

func TestCheckpointLeaveRunning(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	e.mustRun("restore", "-d", "--image-path", img.dir, cid("lr"))
	host := e.checkTree(cid("lr"), img, true)

	img2 := filepath.Join(t.TempDir(), "img2")
	work := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	e.mustRun("checkpoint", "--leave-running", "--image-path", img2, "--work-path", work, cid("lr"))
	if _, err := os.Stat(filepath.Join(work, "dump.log")); err != nil {
		t.Errorf("no dump.log in --work-path: %v", err)
	}
	if _, err := os.Stat(filepath.Join(img2, "pstree.img")); err != nil {
		t.Errorf("no pstree.img in the checkpoint: %v", err)
	}
	if h, _ := e.rootPids(cid("lr")); h != host {
		t.Errorf("root host pid changed from %d to %d", host, h)
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, host, img.status)
	if len(childrenOf(host)) != 1 {
		t.Errorf("the root lost its child: %v", childrenOf(host))
	}

	// What --leave-running wrote restores too, next to the original.
	e.mustRun("restore", "-d", "--image-path", img2, cid("lr2"))
	host2 := e.checkTree(cid("lr2"), img, true)
	checkMemory(t, host2, img.status)
	if !isWorkload(host) {
		t.Errorf("the first container's root died")
	}
	e.mustRun("delete", "--force", cid("lr"))
	e.mustRun("delete", "--force", cid("lr2"))
	waitGone(t, host, host2)
	e.assertNothingLeft()
}

func TestPidFile(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t)
	pidFile := filepath.Join(t.TempDir(), "root.pid")
	work := filepath.Join(t.TempDir(), "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	// --flag=value forms on purpose.
	e.mustRun("restore", "--detach", "--image-path="+img.dir, "--work-path="+work, "--pid-file="+pidFile, cid("pf"))
	// No waiting: the file must be complete when restore -d returns.
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("no pid file when restore -d returned: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file holds %q: %v", b, err)
	}
	if !isWorkload(pid) {
		t.Fatalf("pid file holds %d, which is not a live workload (exe %q)", pid, procExe(pid))
	}
	if innermostPid(pid) != img.origPid {
		t.Errorf("pid file's process %d has ns pid %d, want the root's %d", pid, innermostPid(pid), img.origPid)
	}
	if host := e.checkTree(cid("pf"), img, false); host != pid {
		t.Errorf("pid file says %d, state's %s says %d", pid, annRootPid, host)
	}
	if _, err := os.Stat(filepath.Join(work, "restore.log")); err != nil {
		t.Errorf("no restore.log in --work-path: %v", err)
	}
	e.mustRun("delete", "--force", cid("pf"))
	waitGone(t, pid)
	e.assertNothingLeft()
}

func TestForegroundRestore(t *testing.T) {
	img := makeImages(t)

	// start runs `restore` in the foreground and waits for the tree.
	start := func(t *testing.T, e *env, id string) (*foreground, int) {
		fg := &foreground{done: make(chan struct{})}
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		t.Cleanup(cancel)
		fg.cmd = e.command(ctx, "restore", "--image-path", img.dir, id)
		fg.cmd.Stdout, fg.cmd.Stderr = &fg.out, &fg.out
		fg.cmd.WaitDelay = pipeDelay
		fg.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := fg.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			fg.err = fg.cmd.Wait()
			close(fg.done)
		}()
		t.Cleanup(func() {
			fg.cmd.Process.Kill()
			<-fg.done
		})
		eventually(t, settleTime, "the foreground restore to run the tree", func() error {
			select {
			case <-fg.done:
				return fmt.Errorf("restore exited early: %v: %s", fg.err, fg.output())
			default:
			}
			r := e.runQuiet("state", id)
			if r.code != 0 {
				return fmt.Errorf("%s", r)
			}
			if !strings.Contains(r.stdout, annRootPid) {
				return fmt.Errorf("no root pid yet: %s", r.stdout)
			}
			return nil
		})
		return fg, e.checkTree(id, img, false)
	}

	t.Run("SIGTERM to the runtime", func(t *testing.T) {
		e := newEnv(t)
		fg, host := start(t, e, cid("fg-term"))
		// The root was staged in a mount namespace of the runtime's own,
		// which goes when the runtime goes.
		if own, hosts := nsOf(fg.cmd.Process.Pid, "mnt"), nsOf(os.Getpid(), "mnt"); own == hosts {
			t.Errorf("the restoring runtime shares the host's mount namespace %s", hosts)
		}
		if err := fg.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		fg.expectExit(t, 42)
		waitGone(t, host)
		e.mustFail([]string{"does not exist"}, "state", cid("fg-term"))
		e.assertNothingLeft()
	})

	t.Run("SIGUSR2 to the tree", func(t *testing.T) {
		e := newEnv(t)
		fg, host := start(t, e, cid("fg-usr2"))
		if err := syscall.Kill(host, syscall.SIGUSR2); err != nil {
			t.Fatal(err)
		}
		fg.expectExit(t, 43)
		waitGone(t, host)
		e.mustFail([]string{"does not exist"}, "state", cid("fg-usr2"))
		e.assertNothingLeft()
	})
}

type foreground struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	err  error
	done chan struct{}
}

func (fg *foreground) output() string { return fg.out.String() }

func (fg *foreground) expectExit(t *testing.T, code int) {
	t.Helper()
	select {
	case <-fg.done:
	case <-time.After(settleTime):
		t.Fatalf("foreground restore still running %v after the signal; output: %s", settleTime, fg.output())
	}
	if got := exitCode(fg.cmd, fg.err); got != code {
		t.Fatalf("foreground restore exited %d (%v), want %d; output: %s", got, fg.err, code, fg.output())
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestConcurrentRestores(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	ids := []string{cid("twin-a"), cid("twin-b")}
	results := make([]result, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No t.Fatal off the test goroutine: runQuiet, checked below.
			results[i] = e.runQuiet("restore", "-d", "--image-path", img.dir, id)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("concurrent restore failed: %s", r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	var hosts, inits []int
	nss := map[string]bool{}
	for _, id := range ids {
		host := e.checkTree(id, img, true)
		checkMemory(t, host, img.status)
		hosts = append(hosts, host)
		inits = append(inits, e.state(id).Pid)
		for _, ns := range []string{"pid", "mnt"} {
			n := nsOf(host, ns)
			if nss[n] {
				t.Errorf("both containers share %s", n)
			}
			nss[n] = true
		}
	}
	if hosts[0] == hosts[1] || inits[0] == inits[1] {
		t.Errorf("root pids %v, init pids %v: want distinct", hosts, inits)
	}
	for _, id := range ids {
		e.mustRun("delete", "--force", id)
	}
	waitGone(t, hosts...)
	e.assertNothingLeft()
}

// The host's root is staged in the restoring process's own mount
// namespace: the host's mount table never holds it, and no container's
// mount table holds another container's staged root.
func TestStagedRootStaysPrivate(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "4")
	hostMounts := len(mountsBelow("/"))
	var sizes []int
	for i := 0; i < 3; i++ {
		id := cid("private-" + itoa(i))
		e.mustRun("restore", "-d", "--image-path", img.dir, id)
		if m := mountsBelow(e.root); len(m) > 0 {
			t.Errorf("after restoring %s the host has mounts below the root: %q", id, m)
		}
		host, _ := e.rootPids(id)
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", host))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, strings.Count(string(b), "\n"))
		if strings.Contains(string(b), e.root) {
			t.Errorf("container %s's mount table names the runtime root %s:\n%s", id, e.root, b)
		}
	}
	if sizes[2] != sizes[0] {
		t.Errorf("container mount tables have %v entries: they grow with the number of containers", sizes)
	}
	if n := len(mountsBelow("/")); n != hostMounts {
		t.Errorf("the host had %d mounts before the restores and %d after", hostMounts, n)
	}
	for i := 0; i < 3; i++ {
		e.mustRun("delete", "--force", cid("private-"+itoa(i)))
	}
	e.assertNothingLeft()
}
