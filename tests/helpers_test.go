package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds against hangs, never expectations: no test asserts how long
// anything takes. CRIU_NS_TEST_SLOWDOWN=N multiplies them on a machine N
// times slower than this one (tests/vm's guest, under TCG), where a
// command that takes longer is slow, not hung (scaleBounds).
var (
	cmdTimeout   = 20 * time.Second // any single runtime/CRIU command
	cleanTimeout = 10 * time.Second // a command run by a cleanup
	pipeDelay    = 5 * time.Second  // how long stdio may stay open after exit
	settleTime   = 15 * time.Second // processes dying, counters advancing...
)

// slowdown is CRIU_NS_TEST_SLOWDOWN (1 when unset).
var slowdown = 1

// scaleBounds multiplies the bounds by CRIU_NS_TEST_SLOWDOWN.
func scaleBounds(env string) error {
	if env == "" {
		return nil
	}
	n, err := strconv.Atoi(env)
	if err != nil || n < 1 || n > 100 {
		return fmt.Errorf("CRIU_NS_TEST_SLOWDOWN=%q: want a whole number from 1 to 100", env)
	}
	slowdown = n
	for _, d := range []*time.Duration{&cmdTimeout, &cleanTimeout, &pipeDelay, &settleTime} {
		*d *= time.Duration(n)
	}
	return nil
}

const (
	errPrefix    = "criu-ns-runtime: "
	annRootPid   = "io.criu-ns-runtime.root.pid"
	annRootNsPid = "io.criu-ns-runtime.root.ns-pid"
	annImagePath = "io.criu-ns-runtime.image-path"
)

// cid makes a container id unique to this run of the suite: the runtime
// may name host-wide things (cgroups) after ids, and other runs or users
// of the machine may use the same names.
func cid(name string) string { return name + "-" + runToken }

// env is one test's runtime root plus what its cleanup must undo.
type env struct {
	t    *testing.T
	root string // --root of every runtime command of the test
	dir  string // scratch directory of the test
	// before is what of the run existed when the env was made: what an
	// earlier test left is that test's failure (and TestMain's), not
	// this one's.
	before runState
}

// newEnv creates a fresh --root. Roots are short paths directly below
// baseDir: the runtime may put unix sockets in them.
func newEnv(t *testing.T) *env {
	t.Helper()
	root, err := os.MkdirTemp(baseDir, "r")
	if err != nil {
		t.Fatal(err)
	}
	addRunRoot(root)
	e := &env{t: t, root: root, dir: t.TempDir(), before: currentRunState()}
	t.Cleanup(e.cleanup)
	return e
}

// on returns e reporting to t (a subtest of e's test).
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// cleanup force-deletes every container left in the root, kills (by pid)
// whatever the test started and is still alive, and detaches mounts left
// below the root. It reports nothing: assertNothingLeft does.
func (e *env) cleanup() {
	ids, _ := e.listIDs()
	for _, id := range ids {
		e.runQuiet("delete", "--force", id)
	}
	killLeftovers()
	unmountBelow(e.root)
	os.RemoveAll(e.root)
	removeCgroups()
}

// result of one command.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int // exit status; -1 when killed by a signal
	err    error
}

func (r result) String() string {
	return fmt.Sprintf("`%s`: exit %d (%v)\nstdout: %s\nstderr: %s",
		strings.Join(r.args, " "), r.code, r.err, r.stdout, r.stderr)
}

// command builds `criu-ns-runtime --root ROOT args...`.
func (e *env) command(ctx context.Context, args ...string) *exec.Cmd {
	full := append([]string{"--root", e.root}, args...)
	cmd := exec.CommandContext(ctx, runtimeBin, full...)
	cmd.Dir = e.dir
	return cmd
}

// run runs the runtime with --root and returns what happened. It fails the
// test when the command hangs past cmdTimeout, or when it exits but leaves
// its stdout/stderr open in some surviving process (a caller capturing the
// output, like `$(criu-ns-runtime restore -d ...)`, would hang).
func (e *env) run(args ...string) result {
	e.t.Helper()
	return runCmd(e.t, e.command, args...)
}

// runQuiet is run without any reporting, for cleanups and polling.
func (e *env) runQuiet(args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cleanTimeout)
	defer cancel()
	cmd := e.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = pipeDelay
	err := cmd.Run()
	return result{args: args, stdout: out.String(), stderr: errb.String(), code: exitCode(cmd, err), err: err}
}

func runCmd(t *testing.T, mk func(context.Context, ...string) *exec.Cmd, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := mk(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = pipeDelay
	err := cmd.Run()
	r := result{args: cmd.Args, stdout: out.String(), stderr: errb.String(), code: exitCode(cmd, err), err: err}
	if ctx.Err() != nil {
		t.Fatalf("timed out after %v: %s", cmdTimeout, r)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		t.Errorf("the command exited but a surviving process kept its stdout/stderr open: %s", r)
	}
	return r
}

func exitCode(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		return -1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1
	}
	return cmd.ProcessState.ExitCode()
}

// mustRun runs the runtime and fails the test unless it exits 0.
func (e *env) mustRun(args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("unexpected failure: %s", r)
	}
	return r
}

// mustFail runs the runtime and fails the test unless it exits 1 with
// exactly one line on stderr, "criu-ns-runtime: <message>", the message
// containing (case-insensitively) one of want, if any are given.
func (e *env) mustFail(want []string, args ...string) string {
	e.t.Helper()
	return checkFailure(e.t, e.run(args...), want)
}

func checkFailure(t *testing.T, r result, want []string) string {
	t.Helper()
	return checkFailureFrom(t, r, errPrefix, want)
}

// checkFailureFrom is checkFailure for a front end whose messages start
// with prefix.
func checkFailureFrom(t *testing.T, r result, prefix string, want []string) string {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("unexpected success: %s", r)
	}
	if r.code != 1 {
		t.Errorf("exit status %d, the contract says 1: %s", r.code, r)
	}
	msg := strings.TrimSuffix(r.stderr, "\n")
	t.Logf("%s -> exit %d: %s", strings.Join(r.args[1:], " "), r.code, msg)
	switch {
	case msg == "":
		t.Errorf("no error message on stderr: %s", r)
	case strings.Contains(msg, "\n"):
		t.Errorf("stderr has %d lines, want exactly one: %s", strings.Count(msg, "\n")+1, r)
	case !strings.HasPrefix(msg, prefix):
		t.Errorf("stderr does not start with %q: %s", prefix, r)
	}
	if len(want) > 0 {
		found := false
		for _, w := range want {
			if strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
				found = true
			}
		}
		if !found {
			t.Errorf("error message names none of %q: %s", want, r)
		}
	}
	return msg
}

// state is the runc-style state JSON.
type state struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     string            `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations"`
}

func (e *env) state(id string) state {
	e.t.Helper()
	r := e.mustRun("state", id)
	var st state
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("state %s: bad JSON: %v: %s", id, err, r)
	}
	return st
}

// rootPids returns the restored root's host pid and its pid in the
// container's namespace, from the state annotations, checking both.
func (e *env) rootPids(id string) (hostPid, nsPid int) {
	e.t.Helper()
	st := e.state(id)
	if st.Status != "running" {
		e.t.Fatalf("container %s is %q, want running: %+v", id, st.Status, st)
	}
	hostPid, err := strconv.Atoi(st.Annotations[annRootPid])
	if err != nil || hostPid <= 0 {
		e.t.Fatalf("annotation %s of %s is %q: %+v", annRootPid, id, st.Annotations[annRootPid], st)
	}
	nsPid, err = strconv.Atoi(st.Annotations[annRootNsPid])
	if err != nil || nsPid <= 0 {
		e.t.Fatalf("annotation %s of %s is %q: %+v", annRootNsPid, id, st.Annotations[annRootNsPid], st)
	}
	if !isWorkload(hostPid) {
		e.t.Fatalf("root pid %d of %s is not a live workload process (exe %q)", hostPid, id, procExe(hostPid))
	}
	if got := innermostPid(hostPid); got != nsPid {
		e.t.Errorf("%s says the root's ns pid is %d, /proc/%d/status says %d", annRootNsPid, nsPid, hostPid, got)
	}
	return hostPid, nsPid
}

// waitStatus waits until `state id` reports status.
func (e *env) waitStatus(id, status string) {
	e.t.Helper()
	eventually(e.t, settleTime, "container "+id+" to be "+status, func() error {
		r := e.run("state", id)
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		var st state
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			return err
		}
		if st.Status != status {
			return fmt.Errorf("status %q", st.Status)
		}
		return nil
	})
}

func (e *env) listIDs() ([]string, error) {
	r := e.runQuiet("list", "-q")
	if r.code != 0 {
		return nil, fmt.Errorf("%s", r)
	}
	return strings.Fields(r.stdout), nil
}

// eventually polls cond every 20ms until it returns nil, failing the test
// with cond's last error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// workload is a tree the test started itself (not restored).
type workload struct {
	cmd     *exec.Cmd
	done    chan struct{}
	counter string
	status  string
}

// startWorkload starts the workload in a new session with only stdio, all
// /dev/null. -counter and -status go to files in dir.
func startWorkload(t *testing.T, dir string, args ...string) *workload {
	t.Helper()
	w := &workload{
		counter: filepath.Join(dir, "counter"),
		status:  filepath.Join(dir, "status"),
		done:    make(chan struct{}),
	}
	full := append([]string{"-counter", w.counter, "-status", w.status}, args...)
	w.cmd = exec.Command(workloadBin, full...)
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return w.start(t)
}

func (w *workload) start(t *testing.T) *workload {
	t.Helper()
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.cmd.Wait()
		close(w.done)
	}()
	t.Cleanup(func() {
		w.cmd.Process.Kill()
		<-w.done
	})
	waitCounterAdvances(t, w.counter)
	return w
}

func (w *workload) pid() int { return w.cmd.Process.Pid }

// waitExit waits for the workload (started by the test) to end.
func (w *workload) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-w.done:
	case <-time.After(settleTime):
		t.Fatalf("workload %d still running after %v", w.pid(), settleTime)
	}
}

// criuDump dumps the tree rooted at pid with bare CRIU into dir.
func criuDump(t *testing.T, pid int, dir string, extra ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"dump", "-t", strconv.Itoa(pid), "-D", dir, "-o", "dump.log"}, extra...)
	r := runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
		return exec.CommandContext(ctx, criuBin, a...)
	}, args...)
	if r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
		t.Fatalf("bare criu dump failed: %s\ndump.log:\n%s", r, tail(string(log), 30))
	}
}

// images is a set of CRIU images of a workload that has been dumped (and
// is dead).
type images struct {
	dir     string
	counter string
	status  string
	origPid int
}

// makeImages starts a workload with args, dumps it with bare CRIU and
// waits for it to end.
func makeImages(t *testing.T, args ...string) images {
	t.Helper()
	dir := t.TempDir()
	w := startWorkload(t, dir, args...)
	img := filepath.Join(dir, "img")
	criuDump(t, w.pid(), img)
	w.waitExit(t)
	return images{dir: img, counter: w.counter, status: w.status, origPid: w.pid()}
}

// copyImages copies the image files (not logs) of src to a new directory.
func copyImages(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() || isLog(ent.Name()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, ent.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func readCounter(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// waitCounterAdvances waits until the counter file has been incremented
// at least three times.
func waitCounterAdvances(t *testing.T, file string) {
	t.Helper()
	start, _ := readCounter(file)
	eventually(t, settleTime, "the counter in "+file+" to advance", func() error {
		n, err := readCounter(file)
		if err != nil {
			return err
		}
		if n < start+3 {
			return fmt.Errorf("counter %d, started at %d", n, start)
		}
		return nil
	})
}

// counterStopped checks the counter does not move for 300ms.
func counterStopped(t *testing.T, file string) {
	t.Helper()
	a, _ := readCounter(file)
	time.Sleep(300 * time.Millisecond)
	if b, _ := readCounter(file); a != b {
		t.Errorf("counter in %s still moves (%d -> %d): some copy of the tree is still running", file, a, b)
	}
}

// checkMemory asks the restored root to verify its -mem buffer and
// expects "ok" in the status file.
func checkMemory(t *testing.T, pid int, statusFile string) {
	t.Helper()
	os.Remove(statusFile)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatalf("SIGUSR1 to %d: %v", pid, err)
	}
	expectStatus(t, statusFile, "ok")
}

func expectStatus(t *testing.T, statusFile, want string) {
	t.Helper()
	var got []byte
	eventually(t, settleTime, "the workload to write "+statusFile, func() error {
		var err error
		got, err = os.ReadFile(statusFile)
		return err
	})
	if string(got) != want {
		t.Fatalf("%s says %q, want %q", statusFile, got, want)
	}
}

func isLog(name string) bool {
	return strings.HasSuffix(name, ".log") || strings.HasPrefix(name, "stats-")
}

// hashDir returns the sha256 of every file below dir by relative path; a
// symbolic link (an incremental dump's parent) stands for its target.
func hashDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			sums[rel] = "symlink to " + target
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		sums[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("hashing %s: %v", dir, err)
	}
	return sums
}

// assertSameImages checks every file hashed before is still in dir,
// byte-identical. New files are allowed only for logs and CRIU stats.
func assertSameImages(t *testing.T, before map[string]string, dir string) {
	t.Helper()
	after := hashDir(t, dir)
	for name, sum := range before {
		switch got, ok := after[name]; {
		case !ok:
			t.Errorf("image file %s disappeared from %s", name, dir)
		case got != sum:
			t.Errorf("image file %s in %s changed", name, dir)
		}
	}
	for name := range after {
		if _, ok := before[name]; !ok && !isLog(filepath.Base(name)) {
			t.Errorf("new file %s appeared in the image directory %s", name, dir)
		}
	}
}

// assertNothingLeft checks the root holds no container, nothing is
// mounted below it, and no process or cgroup of the run is left that was
// not there when the env was made.
func (e *env) assertNothingLeft() {
	e.t.Helper()
	var left runState
	deadline := time.Now().Add(settleTime)
	for {
		left = currentRunState().since(e.before)
		if left.empty() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(left.procs) > 0 {
		e.t.Errorf("processes left:\n%s", strings.Join(left.describeProcs(), "\n"))
	}
	if len(left.cgroups) > 0 {
		e.t.Errorf("cgroups of this run's containers left: %q", left.cgroupList())
	}
	ids, err := e.listIDs()
	if err != nil {
		e.t.Errorf("list -q: %v", err)
	} else if len(ids) > 0 {
		e.t.Errorf("containers left in %s: %q", e.root, ids)
	}
	if ents, err := os.ReadDir(e.root); err != nil {
		e.t.Errorf("reading the root: %v", err)
	} else {
		for _, ent := range ents {
			if ent.IsDir() {
				e.t.Errorf("directory %s left in the root %s", ent.Name(), e.root)
			}
		}
	}
	if m := mountsBelow(e.root); len(m) > 0 {
		e.t.Errorf("mounts left below %s: %q", e.root, m)
	}
	if left := e.cgroupParents(); len(left) > 0 {
		e.t.Errorf("the cgroup parents of the root's containers are left: %q", left)
	}
}

// cgroupParents lists the cgroup directories the runtime made for this
// root's containers (/criu-ns-runtime/<hash of the root>) that exist, in
// any hierarchy.
func (e *env) cgroupParents() []string {
	sum := sha256.Sum256([]byte(e.root))
	var out []string
	for _, mnt := range cgroupMounts() {
		p := filepath.Join(mnt, "criu-ns-runtime", hex.EncodeToString(sum[:4]))
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// cgroupMounts lists the mount points of every cgroup hierarchy.
func cgroupMounts() []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		_, after, ok := strings.Cut(line, " - ")
		f := strings.Fields(line)
		if !ok || len(f) < 5 {
			continue
		}
		if fs := strings.Fields(after); len(fs) > 0 && (fs[0] == "cgroup" || fs[0] == "cgroup2") {
			out = append(out, unescapeMount(f[4]))
		}
	}
	return out
}

// ours tells whether pid is a process of this run of the suite: the
// workload binary is private to the run; runtime and criu processes are
// recognised by the run's directory or token on their command line (the
// runtime's binary may be shared with other users of the machine, whose
// processes must be left alone).
func ours(pid int) (bool, string) {
	exe := strings.TrimSuffix(procExe(pid), " (deleted)")
	switch {
	case exe == workloadBin || exe == runtimeBin || exe == faultBin || exe == criuBin:
	case filepath.Base(exe) == "criu-ns-runtime" || filepath.Base(exe) == "criu":
	case filepath.Base(exe) == "dash" || filepath.Base(exe) == "bash": // the tests' CRIU wrappers and scripts
	default:
		return false, ""
	}
	cmdline := procCmdline(pid)
	if exe == workloadBin || strings.Contains(cmdline, baseDir) || strings.Contains(cmdline, runToken) {
		return true, cmdline
	}
	return false, ""
}

// procID names a process across pid reuse: its pid and start time.
type procID struct{ pid, start int }

// runState is what of this run exists: its live processes (by procID,
// with their command lines) and its containers' cgroups.
type runState struct {
	procs   map[procID]string
	cgroups map[string]bool
}

// currentRunState lists the run's live processes, ours() by their binary
// and command line or by being in a cgroup of the run's containers
// (libcontainer's init, which has neither, is found so), and the run's
// cgroups (ourCgroups).
func currentRunState() runState {
	s := runState{procs: map[procID]string{}, cgroups: map[string]bool{}}
	add := func(pid int, cmdline string) {
		if pid == os.Getpid() || procState(pid) == "Z" {
			return
		}
		if start := statField(pid, 22); start > 0 {
			s.procs[procID{pid, start}] = cmdline
		}
	}
	for _, pid := range allPids() {
		if ok, cmdline := ours(pid); ok {
			add(pid, cmdline)
		}
	}
	for _, cg := range ourCgroups() {
		s.cgroups[cg] = true
		for _, pid := range cgroupProcs(cg) {
			add(pid, procCmdline(pid)+" (in "+cg+")")
		}
	}
	return s
}

// since is what of s was not in before.
func (s runState) since(before runState) runState {
	out := runState{procs: map[procID]string{}, cgroups: map[string]bool{}}
	for id, cmdline := range s.procs {
		if _, ok := before.procs[id]; !ok {
			out.procs[id] = cmdline
		}
	}
	for cg := range s.cgroups {
		if !before.cgroups[cg] {
			out.cgroups[cg] = true
		}
	}
	return out
}

func (s runState) empty() bool { return len(s.procs)+len(s.cgroups) == 0 }

func (s runState) describeProcs() []string {
	var out []string
	for id, cmdline := range s.procs {
		out = append(out, fmt.Sprintf("  pid %d: %s", id.pid, cmdline))
	}
	slices.Sort(out)
	return out
}

func (s runState) cgroupList() []string {
	out := slices.Collect(maps.Keys(s.cgroups))
	slices.Sort(out)
	return out
}

// cgroupProcs lists the processes in cgroup dir and below it.
func cgroupProcs(dir string) []int {
	var pids []int
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

func procCmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))
}

// killLeftovers SIGKILLs, by pid, the run's processes (currentRunState:
// all started by this run) and waits a little for them to go.
func killLeftovers() {
	for i := 0; i < 50*slowdown; i++ {
		procs := currentRunState().procs
		if len(procs) == 0 {
			return
		}
		for id := range procs {
			// The start time makes sure the pid is still the same
			// process; it cannot be reused before it is reaped.
			if statField(id.pid, 22) == id.start {
				syscall.Kill(id.pid, syscall.SIGKILL)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runRoots holds the names the runtime gives the cgroup parents of this
// run's roots (/criu-ns-runtime/<hash of the root>), so that ourCgroups
// need not walk those of every other root on the machine.
var runRoots sync.Map

func addRunRoot(root string) {
	sum := sha256.Sum256([]byte(root))
	runRoots.Store(hex.EncodeToString(sum[:4]), true)
}

// ourCgroups lists cgroup directories (four levels deep at most) named
// after a container of this run: whatever else the runtime calls them, a
// container's cgroups carry its id.
func ourCgroups() []string {
	const top = "/sys/fs/cgroup"
	var out []string
	filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Contains(d.Name(), runToken) {
			out = append(out, p)
			return filepath.SkipDir
		}
		if _, ours := runRoots.Load(d.Name()); !ours && filepath.Base(filepath.Dir(p)) == "criu-ns-runtime" {
			return filepath.SkipDir // another root's containers
		}
		if strings.Count(strings.TrimPrefix(p, top), "/") >= 4 {
			return filepath.SkipDir
		}
		return nil
	})
	return out
}

// removeCgroups removes (when empty) the cgroups ourCgroups finds.
func removeCgroups() {
	for _, p := range ourCgroups() {
		var dirs []string
		filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, q)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, ent := range ents {
		if pid, err := strconv.Atoi(ent.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procExe(pid int) string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return s
}

// isWorkload tells whether pid is a live (not zombie) workload process.
func isWorkload(pid int) bool {
	return strings.TrimSuffix(procExe(pid), " (deleted)") == workloadBin && procState(pid) != "Z"
}

// procStat returns the fields of /proc/PID/stat after the comm.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

func procState(pid int) string {
	if f := procStat(pid); len(f) > 0 {
		return f[0]
	}
	return ""
}

// statField returns field n (1-based, as in proc(5)) of /proc/PID/stat.
func statField(pid, n int) int {
	f := procStat(pid)
	if len(f) < n-2 {
		return -1
	}
	v, _ := strconv.Atoi(f[n-3])
	return v
}

// childrenOf lists live processes whose parent is pid.
func childrenOf(pid int) []int {
	var kids []int
	for _, p := range allPids() {
		if statField(p, 4) == pid && procState(p) != "Z" {
			kids = append(kids, p)
		}
	}
	return kids
}

// innermostPid is pid as seen in its own pid namespace (NSpid).
func innermostPid(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "NSpid:"); ok {
			fs := strings.Fields(rest)
			v, _ := strconv.Atoi(fs[len(fs)-1])
			return v
		}
	}
	return -1
}

func nsOf(pid int, ns string) string {
	s, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	return s
}

// checkFreshNamespaces checks pid lives in pid and mount namespaces
// other than the test's.
func checkFreshNamespaces(t *testing.T, pid int) {
	t.Helper()
	for _, ns := range []string{"pid", "mnt"} {
		mine, theirs := nsOf(os.Getpid(), ns), nsOf(pid, ns)
		if theirs == "" || theirs == mine {
			t.Errorf("process %d is in %s namespace %q, the test is in %q: want a fresh one", pid, ns, theirs, mine)
		}
	}
}

func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	eventually(t, settleTime, fmt.Sprintf("processes %v to end", pids), func() error {
		for _, p := range pids {
			if isWorkload(p) {
				return fmt.Errorf("%d still alive (%s)", p, procState(p))
			}
		}
		return nil
	})
}

// mountsBelow lists mount points at or below dir in our mount namespace.
func mountsBelow(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}

func unescapeMount(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}

func unmountBelow(dir string) {
	m := mountsBelow(dir)
	slices.Reverse(m)
	for _, mp := range m {
		syscall.Unmount(mp, syscall.MNT_DETACH)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// restoreLog returns the end of the restore.log in dir, for diagnostics.
func restoreLog(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "restore.log"))
	if err != nil {
		return "(no restore.log: " + err.Error() + ")"
	}
	return tail(string(b), 20)
}

// drain keeps reading r (a pty master must be read, or writers to the
// slave block once its buffer is full) and remembers what it read.
type drain struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func drainAll(r io.Reader) *drain {
	d := &drain{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			d.mu.Lock()
			d.buf.Write(b[:n])
			d.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return d
}

func (d *drain) String() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.buf.String()
}
