package tests

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	criu "github.com/checkpoint-restore/go-criu/v8"
	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// criuNsLink makes a `criu-ns` symlink to the runtime: the service binary
// RPC clients exec as `criu-ns swrk FD`.
func criuNsLink(t *testing.T) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "criu-ns")
	if err := os.Symlink(runtimeBin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// goCriu is a go-criu client of criu-ns with the test's root.
func (e *env) goCriu() *criu.Criu {
	e.t.Helper()
	e.t.Setenv("CRIU_NS_RUNTIME_ROOT", e.root)
	c := criu.MakeCriu()
	c.SetCriuPath(criuNsLink(e.t))
	return c
}

// openDir opens dir (creating it) for a request's *_dir_fd; it stays open
// until the test ends.
func openDir(t *testing.T, dir string) *os.File {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func fdOf(f *os.File) *int32 { v := int32(f.Fd()); return &v }
func i32(v int32) *int32     { return &v }
func yes() *bool             { v := true; return &v }
func str(s string) *string   { return &s }

// restoreOpts asks for a restore of dir, logging to restore.log there.
func restoreOpts(t *testing.T, dir string) *rpc.CriuOpts {
	return &rpc.CriuOpts{ImagesDirFd: fdOf(openDir(t, dir)), LogFile: str("restore.log"), LogLevel: i32(4)}
}

// dumpOpts asks for a dump of pid into dir that leaves the tree running.
func dumpOpts(t *testing.T, pid int, dir string) *rpc.CriuOpts {
	return &rpc.CriuOpts{ImagesDirFd: fdOf(openDir(t, dir)), Pid: i32(int32(pid)), LeaveRunning: yes(),
		LogFile: str("dump.log"), LogLevel: i32(4)}
}

// rpcNotes records the notifications a go-criu client gets.
type rpcNotes struct {
	criu.NoNotify
	mu      sync.Mutex
	scripts []string
	pids    map[string]int32
}

func (n *rpcNotes) add(script string, pid int32) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.scripts = append(n.scripts, script)
	if n.pids == nil {
		n.pids = map[string]int32{}
	}
	if pid != 0 {
		n.pids[script] = pid
	}
	return nil
}

func (n *rpcNotes) PreRestore() error               { return n.add("pre-restore", 0) }
func (n *rpcNotes) SetupNamespaces(pid int32) error { return n.add("setup-namespaces", pid) }
func (n *rpcNotes) PostSetupNamespaces() error      { return n.add("post-setup-namespaces", 0) }
func (n *rpcNotes) PostRestore(pid int32) error     { return n.add("post-restore", pid) }
func (n *rpcNotes) PostResume() error               { return n.add("post-resume", 0) }
func (n *rpcNotes) PreDump() error                  { return n.add("pre-dump", 0) }
func (n *rpcNotes) PostDump() error                 { return n.add("post-dump", 0) }
func (n *rpcNotes) has(script string) bool {
	return strings.Contains(strings.Join(n.scripts, " "), script)
}
func (n *rpcNotes) pid(t *testing.T, s string) int32 { t.Helper(); return n.pids[s] }

// takenImages starts a workload with args and dumps it with bare CRIU,
// leaving it running: its pids stay taken on the host.
func takenImages(t *testing.T, args ...string) (images, *workload) {
	t.Helper()
	dir := t.TempDir()
	w := startWorkload(t, dir, args...)
	img := filepath.Join(dir, "img")
	criuDump(t, w.pid(), img, "--leave-running")
	if !isWorkload(w.pid()) {
		t.Fatalf("the original tree %d did not keep running", w.pid())
	}
	return images{dir: img, counter: w.counter, status: w.status, origPid: w.pid()}, w
}

// endTree kills a restored tree by its root's pid and waits for it.
func endTree(t *testing.T, root int) {
	t.Helper()
	kids := childrenOf(root)
	syscall.Kill(root, syscall.SIGKILL)
	waitGone(t, append(kids, root)...)
}

// deleteAll removes every container left in the root (criu-ns keeps a
// stopped one after its tree ends).
func (e *env) deleteAll() {
	e.t.Helper()
	ids, err := e.listIDs()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		e.mustRun("delete", "--force", id)
	}
}

// TestRPCGoCriu drives criu-ns with go-criu: a restore while the tree's
// pids are taken (the notifications carry the pid as we see it), a dump
// of the restored tree by that pid, and a restore of that dump while the
// first copy runs.
func TestRPCGoCriu(t *testing.T) {
	e := newEnv(t)
	img, orig := takenImages(t, "-mem", "8", "-child")
	before := hashDir(t, img.dir)

	// Bare CRIU cannot: the pids are taken.
	bare := criu.MakeCriu()
	bare.SetCriuPath(criuBin)
	if err := bare.Restore(restoreOpts(t, copyImages(t, img.dir)), nil); err == nil {
		t.Fatalf("bare CRIU restored over taken pids: the test proves nothing")
	} else {
		t.Logf("bare criu swrk restore: %v", err)
	}

	n := &rpcNotes{}
	if err := e.goCriu().Restore(restoreOpts(t, img.dir), n); err != nil {
		t.Fatalf("restore through criu-ns: %v\n%s", err, restoreLog(img.dir))
	}
	t.Logf("notifications: %v, pids %v", n.scripts, n.pids)
	pid := int(n.pid(t, "post-restore"))
	checkNsRoot(t, pid, img)
	// (setup-namespaces comes only for trees with namespaces of their own.)
	if got, ok := n.pids["setup-namespaces"]; ok && int(got) != pid {
		t.Errorf("setup-namespaces named pid %d, post-restore %d", got, pid)
	}
	for _, s := range []string{"pre-restore", "post-resume"} {
		if !n.has(s) {
			t.Errorf("no %s notification: %v", s, n.scripts)
		}
	}
	assertSameImages(t, before, img.dir)

	// Dump the restored tree by the pid the notification gave, leaving it
	// running: CRIU runs inside the tree's namespaces.
	img2 := filepath.Join(t.TempDir(), "img2")
	dn := &rpcNotes{}
	if err := e.goCriu().Dump(dumpOpts(t, pid, img2), dn); err != nil {
		log, _ := os.ReadFile(filepath.Join(img2, "dump.log"))
		t.Fatalf("dump through criu-ns: %v\n%s", err, tail(string(log), 20))
	}
	if !dn.has("pre-dump") || !dn.has("post-dump") {
		t.Errorf("dump notifications: %v, want pre-dump and post-dump", dn.scripts)
	}
	if _, err := os.Stat(filepath.Join(img2, "core-"+strconv.Itoa(img.origPid)+".img")); err != nil {
		t.Errorf("the dump has no core image for the ns pid %d: %v", img.origPid, err)
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, pid, img.status)

	// ...and restore that dump while the first copy still runs.
	n2 := &rpcNotes{}
	if err := e.goCriu().Restore(restoreOpts(t, img2), n2); err != nil {
		t.Fatalf("second restore: %v\n%s", err, restoreLog(img2))
	}
	pid2 := int(n2.pid(t, "post-restore"))
	if pid2 == pid {
		t.Fatalf("second restore reports the first copy's pid %d", pid)
	}
	checkNsRoot(t, pid2, img)
	checkMemory(t, pid, img.status)

	endTree(t, pid)
	endTree(t, pid2)
	orig.cmd.Process.Kill()
	orig.waitExit(t)
	e.deleteAll()
	e.assertNothingLeft()
}

// TestRPCGoCriuInheritFd: the restored tree gets the client's pipe for the
// pipe it had, through inherit_fd.
func TestRPCGoCriuInheritFd(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	w := &workload{counter: filepath.Join(dir, "counter"), status: filepath.Join(dir, "status"), done: make(chan struct{})}
	w.cmd = exec.Command(workloadBin, "-counter", w.counter, "-status", w.status)
	w.cmd.Stdout = pw
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w.start(t)
	pw.Close()
	img := filepath.Join(dir, "img")
	criuDump(t, w.pid(), img)
	w.waitExit(t)
	oldPipe := pipeName(t, pr)

	pr2, pw2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr2.Close()
	c := e.goCriu()
	c.AddInheritFd(oldPipe, pw2)
	n := &rpcNotes{}
	err = c.Restore(restoreOpts(t, img), n)
	pw2.Close()
	if err != nil {
		t.Fatalf("restore with inherit_fd: %v\n%s", err, restoreLog(img))
	}
	pid := int(n.pid(t, "post-restore"))
	if !isWorkload(pid) {
		t.Fatalf("post-restore pid %d is no workload", pid)
	}
	got, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/1")
	if want := pipeName(t, pr2); got != want {
		t.Errorf("restored root's stdout is %q, want the client's pipe %q (was %q)", got, want, oldPipe)
	}
	waitCounterAdvances(t, w.counter)
	endTree(t, pid)
	e.deleteAll()
	e.assertNothingLeft()
}

// refuseNote fails one notification, as a client whose hook went wrong.
type refuseNote struct {
	rpcNotes
	script string
}

func (r *refuseNote) PostRestore(pid int32) error {
	r.add("post-restore", pid)
	if r.script == "post-restore" {
		return errors.New("refused by the test")
	}
	return nil
}

// TestRPCGoCriuNotifyRefused: a client that fails a notification after
// the tree exists (go-criu then drops the connection, as CRIU expects of
// a failed hook) gets no tree, and nothing is left behind.
func TestRPCGoCriuNotifyRefused(t *testing.T) {
	e := newEnv(t)
	img, orig := takenImages(t, "-child")
	before := hashDir(t, img.dir)
	n := &refuseNote{script: "post-restore"}
	err := e.goCriu().Restore(restoreOpts(t, img.dir), n)
	if err == nil {
		t.Fatalf("restore succeeded although the client refused post-restore")
	}
	t.Logf("refused restore: %v (notifications %v)", err, n.scripts)
	pid := int(n.pid(t, "post-restore"))
	if pid == 0 {
		t.Fatalf("no post-restore notification came: %v", n.scripts)
	}
	waitGone(t, pid)
	assertSameImages(t, before, img.dir)
	orig.cmd.Process.Kill()
	orig.waitExit(t)
	e.assertNothingLeft()
}

// pipeName is the pipe's name in /proc/PID/fd: "pipe:[inode]".
func pipeName(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return "pipe:[" + strconv.FormatUint(st.Ino, 10) + "]"
}

// TestRPCGoCriuPreDumpLoop: go-criu's pre-dump loop (pre-dump, then dump,
// on one connection) of a restored tree. Without soft-dirty tracking in
// the kernel CRIU refuses the pre-dump; through criu-ns it must refuse it
// with the same answer as bare CRIU gives for a tree of its own.
func TestRPCGoCriuPreDumpLoop(t *testing.T) {
	e := newEnv(t)
	img, orig := takenImages(t, "-mem", "8", "-child")
	n := &rpcNotes{}
	if err := e.goCriu().Restore(restoreOpts(t, img.dir), n); err != nil {
		t.Fatalf("restore: %v\n%s", err, restoreLog(img.dir))
	}
	pid := int(n.pid(t, "post-restore"))
	checkNsRoot(t, pid, img)
	dirty := haveSoftDirty(t)

	base := t.TempDir()
	pre := filepath.Join(base, "pre")
	c := e.goCriu()
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	preOpts := dumpOpts(t, pid, pre)
	preOpts.LeaveRunning = nil
	preOpts.TrackMem = yes()
	err := c.PreDump(preOpts, nil)
	if dirty {
		if err != nil {
			t.Fatalf("pre-dump on a kernel with dirty tracking: %v", err)
		}
		final := filepath.Join(base, "final")
		o := dumpOpts(t, pid, final)
		o.TrackMem, o.ParentImg = yes(), str("../pre")
		if err := c.Dump(o, nil); err != nil {
			t.Fatalf("dump after the pre-dump, same connection: %v", err)
		}
		if err := c.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		checkMemory(t, pid, img.status)
		n2 := &rpcNotes{}
		if err := e.goCriu().Restore(restoreOpts(t, final), n2); err != nil {
			t.Fatalf("restore of the incremental dump: %v\n%s", err, restoreLog(final))
		}
		pid2 := int(n2.pid(t, "post-restore"))
		checkNsRoot(t, pid2, img)
		endTree(t, pid2)
	} else {
		c.Cleanup()
		var resp *criuError
		if !errors.As(asCriuError(err), &resp) {
			t.Fatalf("pre-dump through criu-ns without dirty tracking: want CRIU's refusal, got %v", err)
		}
		// Bare CRIU, the same request, for a tree it can dump: the original.
		b := criu.MakeCriu()
		b.SetCriuPath(criuBin)
		bOpts := dumpOpts(t, orig.pid(), filepath.Join(base, "bare"))
		bOpts.LeaveRunning = nil
		bOpts.TrackMem = yes()
		var bare *criuError
		if !errors.As(asCriuError(b.PreDump(bOpts, nil)), &bare) {
			t.Fatalf("bare CRIU accepted the pre-dump: the kernel has dirty tracking after all")
		}
		// The same answer, and the same errors in the logs.
		nsErrs, bareErrs := logErrors(t, filepath.Join(pre, "dump.log")), logErrors(t, filepath.Join(base, "bare", "dump.log"))
		t.Logf("through criu-ns: %v %q; bare: %v %q", resp, nsErrs, bare, bareErrs)
		if *resp != *bare {
			t.Errorf("criu-ns answered the pre-dump with %v, bare CRIU with %v", resp, bare)
		}
		if len(nsErrs) == 0 || strings.Join(nsErrs, "\n") != strings.Join(bareErrs, "\n") {
			t.Errorf("CRIU's errors through criu-ns %q, bare %q", nsErrs, bareErrs)
		}
		if imgs, _ := filepath.Glob(filepath.Join(pre, "*.img")); len(imgs) != 0 {
			t.Errorf("refused pre-dump left images: %v", imgs)
		}
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, pid, img.status)
	endTree(t, pid)
	orig.cmd.Process.Kill()
	orig.waitExit(t)
	e.deleteAll()
	e.assertNothingLeft()
}

// logErrors returns CRIU's "Error (...)" lines of a log, without their
// timestamps, but the rlimit one every CRIU here logs.
func logErrors(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatalf("CRIU's log: %v", err)
	}
	var errs []string
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, "Error ("); i >= 0 && !strings.Contains(line, "RLIMIT_NOFILE") {
			errs = append(errs, line[i:])
		}
	}
	return errs
}

// criuError is CRIU's refusal as go-criu reports it: "operation failed
// (msg:MSG err:ERRNO)".
type criuError struct {
	msg   string
	errno string
}

func (c *criuError) Error() string { return "msg:" + c.msg + " err:" + c.errno }

func asCriuError(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	i := strings.Index(s, "operation failed (msg:")
	j := strings.LastIndex(s, " err:")
	if i < 0 || j < i {
		return err
	}
	k := strings.Index(s[j:], ")")
	if k < 0 {
		return err
	}
	return &criuError{msg: s[i+len("operation failed (msg:") : j], errno: s[j+len(" err:") : j+k]}
}
