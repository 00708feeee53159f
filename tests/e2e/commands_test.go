package e2e

// Tests of the runc-compatible command line itself (no manager in
// between): each test drives bin/criu-ns-runtime with its own --root and a
// busybox bundle whose config.json comes from the runtime's own `spec`.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rtCall is one invocation of the runtime under test.
type rtCall struct {
	dir    string    // working directory (default: the test's)
	stdin  io.Reader // default: /dev/null
	stdout *os.File  // default: captured through a pipe
	stderr *os.File  // default: captured through a pipe
	// A container started by the call inherits stdout and stderr: give
	// detached containers files, never the captured pipes.
	timeout time.Duration
}

type rtResult struct {
	stdout, stderr string
	code           int
}

func (r rtResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// rtRun runs the runtime with args and returns its output and exit code.
func rtRun(t *testing.T, c rtCall, args ...string) rtResult {
	t.Helper()
	if c.timeout == 0 {
		c.timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimePath(), args...)
	cmd.Dir = c.dir
	cmd.Stdin = c.stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if c.stdout != nil {
		cmd.Stdout = c.stdout
	}
	if c.stderr != nil {
		cmd.Stderr = c.stderr
	}
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	t.Logf("$ criu-ns-runtime %s (%.2fs)", strings.Join(args, " "), time.Since(start).Seconds())
	res := rtResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		t.Fatalf("criu-ns-runtime %s: timed out after %v (stdout %q, stderr %q)", strings.Join(args, " "), c.timeout, res.stdout, res.stderr)
	case errors.Is(err, exec.ErrWaitDelay):
		t.Fatalf("criu-ns-runtime %s: a child kept the output pipes open (stdout %q, stderr %q)", strings.Join(args, " "), res.stdout, res.stderr)
	case errors.As(err, &exitErr):
		res.code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("criu-ns-runtime %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// cmdsEnv is one test's runtime root and scratch directory.
type cmdsEnv struct {
	t    *testing.T
	dir  string
	root string
}

func newCmdsEnv(t *testing.T) *cmdsEnv {
	t.Helper()
	requireE2E(t)
	dir := makeTempDir(t, "e2e-cmds-")
	return &cmdsEnv{t: t, dir: dir, root: filepath.Join(dir, "state")}
}

// rt runs `criu-ns-runtime --root ROOT args...`.
func (e *cmdsEnv) rt(c rtCall, args ...string) rtResult {
	e.t.Helper()
	return rtRun(e.t, c, append([]string{"--root", e.root}, args...)...)
}

// ok runs the runtime and fails the test unless it exits 0.
func (e *cmdsEnv) ok(args ...string) rtResult {
	e.t.Helper()
	r := e.rt(rtCall{}, args...)
	if r.code != 0 {
		e.t.Fatalf("criu-ns-runtime %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// file opens (creating) a file in the scratch dir; closed at cleanup.
func (e *cmdsEnv) file(name string) *os.File {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, name), os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

func (e *cmdsEnv) devNull() *os.File {
	e.t.Helper()
	f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f
}

// detached runs a command that leaves a process behind (create, run -d,
// exec -d, restore -d): stdin and stdout are /dev/null, stderr is stderr
// (a file that is then read back as the result's stderr, or /dev/null).
func (e *cmdsEnv) detached(stderr *os.File, args ...string) rtResult {
	e.t.Helper()
	null := e.devNull()
	if stderr == nil {
		stderr = e.file(fmt.Sprintf("stderr-%d", time.Now().UnixNano()))
	}
	off, _ := stderr.Seek(0, io.SeekEnd)
	r := e.rt(rtCall{stdin: null, stdout: null, stderr: stderr}, args...)
	if fi, err := stderr.Stat(); err == nil && fi.Mode().IsRegular() {
		b := make([]byte, fi.Size()-off)
		n, _ := stderr.ReadAt(b, off)
		r.stderr = string(b[:n])
	}
	return r
}

// track deletes container id (--force) when the test ends.
func (e *cmdsEnv) track(id string) {
	e.t.Cleanup(func() {
		r := rtRun(e.t, rtCall{}, "--root", e.root, "delete", "--force", id)
		if r.code != 0 {
			e.t.Errorf("cleanup: delete --force %s: %v", id, r)
		}
	})
}

// containerID is unique per test and process: cgroups are host-wide.
func cmdsID(t *testing.T, what string) string {
	return fmt.Sprintf("cmds-%s-%d-%d", what, os.Getpid(), time.Now().UnixNano()%1000000)
}

type ociState struct {
	OCIVersion string `json:"ociVersion"`
	ID         string `json:"id"`
	Pid        int    `json:"pid"`
	Status     string `json:"status"`
	Bundle     string `json:"bundle"`
}

// state returns the parsed `state ID`; the test fails if it errs.
func (e *cmdsEnv) state(id string) ociState {
	e.t.Helper()
	r := e.ok("state", id)
	var s ociState
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		e.t.Fatalf("state %s: %v\n%s", id, err, r.stdout)
	}
	if s.ID != id {
		e.t.Fatalf("state %s: id %q", id, s.ID)
	}
	return s
}

func (e *cmdsEnv) wantStatus(id, want string) ociState {
	e.t.Helper()
	s := e.state(id)
	if s.Status != want {
		e.t.Fatalf("state %s: status %q, want %q", id, s.Status, want)
	}
	return s
}

// wantGone checks that `state ID` fails with "does not exist".
func (e *cmdsEnv) wantGone(id string) {
	e.t.Helper()
	r := e.rt(rtCall{}, "state", id)
	if r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		e.t.Fatalf("state %s: %v; want a non-zero exit and \"does not exist\"", id, r)
	}
}

// bundle makes dir/name with a busybox rootfs and a config.json written by
// `spec` and then edited: no terminal, the given args, a writable rootfs.
func (e *cmdsEnv) bundle(name string, args ...string) string {
	e.t.Helper()
	b := filepath.Join(e.dir, name)
	rootfs := filepath.Join(b, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		e.t.Fatal(err)
	}
	tarball := buildRootfsTar(e.t, filepath.Join(e.dir, name+"-tar"))
	mustRun(e.t, 30*time.Second, nil, "tar", "-C", rootfs, "-xf", tarball)
	e.ok("spec", "--bundle", b)
	e.editConfig(b, func(c map[string]any) {
		proc := c["process"].(map[string]any)
		proc["terminal"] = false
		proc["args"] = args
		c["root"].(map[string]any)["readonly"] = false
	})
	return b
}

func (e *cmdsEnv) editConfig(bundle string, edit func(map[string]any)) {
	e.t.Helper()
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		e.t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		e.t.Fatalf("%s: %v", path, err)
	}
	edit(c)
	if data, err = json.MarshalIndent(c, "", "\t"); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *cmdsEnv) writeFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func readPidFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

// cgroupDir is the v1 cgroup directory of pid for controller.
func cgroupDir(t *testing.T, pid int, controller string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, f[2])
			}
		}
	}
	t.Fatalf("pid %d has no %s cgroup:\n%s", pid, controller, data)
	return ""
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// oneErrorLine checks that stderr is exactly one line naming want.
func oneErrorLine(t *testing.T, what string, r rtResult, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("%s: stderr %q; want one line containing %q", what, r.stderr, want)
	}
}

func TestCommandsVersion(t *testing.T) {
	requireE2E(t)
	r := rtRun(t, rtCall{}, "--version")
	if r.code != 0 {
		t.Fatalf("--version: %v", r)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	res := []*regexp.Regexp{
		regexp.MustCompile(`^criu-ns-runtime version \S+$`),
		regexp.MustCompile(`^commit: \S*$`),
		regexp.MustCompile(`^spec: 1\.\d+\.\d+$`),
	}
	if len(lines) != len(res) {
		t.Fatalf("--version printed %d lines, want 3:\n%s", len(lines), r.stdout)
	}
	for i, re := range res {
		if !re.MatchString(lines[i]) {
			t.Errorf("--version line %d: %q does not match %s", i+1, lines[i], re)
		}
	}
}

func TestCommandsFeatures(t *testing.T) {
	requireE2E(t)
	r := rtRun(t, rtCall{}, "features")
	if r.code != 0 {
		t.Fatalf("features: %v", r)
	}
	var f struct {
		OCIVersionMin string   `json:"ociVersionMin"`
		OCIVersionMax string   `json:"ociVersionMax"`
		Hooks         []string `json:"hooks"`
		MountOptions  []string `json:"mountOptions"`
		Linux         *struct {
			Namespaces []string `json:"namespaces"`
			Cgroup     *struct {
				V1      *bool `json:"v1"`
				V2      *bool `json:"v2"`
				Systemd *bool `json:"systemd"`
			} `json:"cgroup"`
		} `json:"linux"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("features output is not JSON: %v\n%s", err, r.stdout)
	}
	if dec.More() {
		t.Errorf("features printed more than one JSON value:\n%s", r.stdout)
	}
	if f.OCIVersionMin != "1.0.0" {
		t.Errorf("ociVersionMin %q, want 1.0.0", f.OCIVersionMin)
	}
	if !regexp.MustCompile(`^1\.3\.\d+$`).MatchString(f.OCIVersionMax) {
		t.Errorf("ociVersionMax %q, want 1.3.x", f.OCIVersionMax)
	}
	if len(f.Hooks) == 0 || len(f.MountOptions) == 0 {
		t.Errorf("hooks %v, mountOptions %v: want both non-empty", f.Hooks, f.MountOptions)
	}
	if f.Linux == nil {
		t.Fatalf("features has no linux section:\n%s", r.stdout)
	}
	ns := map[string]bool{}
	for _, n := range f.Linux.Namespaces {
		ns[n] = true
	}
	if !ns["pid"] || !ns["mount"] {
		t.Errorf("linux.namespaces %v: want pid and mount", f.Linux.Namespaces)
	}
	cg := f.Linux.Cgroup
	// systemd cgroups work only where systemd runs (it does not here).
	_, err := os.Stat("/run/systemd/system")
	systemd := err == nil
	if cg == nil || cg.V1 == nil || !*cg.V1 || cg.Systemd == nil || *cg.Systemd != systemd {
		t.Errorf("linux.cgroup %s: want v1 true and systemd %v", jsonString(cg), systemd)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCommandsSpec(t *testing.T) {
	e := newCmdsEnv(t)
	// `spec` with no flags writes ./config.json.
	r := e.rt(rtCall{dir: e.dir}, "spec")
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("spec: %v; want exit 0 and no output", r)
	}
	path := filepath.Join(e.dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OCIVersion string `json:"ociVersion"`
		Process    *struct {
			Args []string `json:"args"`
		} `json:"process"`
		Root *struct {
			Path string `json:"path"`
		} `json:"root"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("config.json: %v\n%s", err, data)
	}
	if !regexp.MustCompile(`^1\.\d+\.\d+$`).MatchString(c.OCIVersion) {
		t.Errorf("config.json ociVersion %q", c.OCIVersion)
	}
	if c.Process == nil || len(c.Process.Args) == 0 || c.Root == nil || c.Root.Path == "" {
		t.Errorf("config.json lacks process.args or root.path:\n%s", data)
	}

	// An existing config.json (here edited) is left alone, whether the
	// directory comes from the cwd or from --bundle.
	edited := append(data, []byte("\n \n")...)
	if err := os.WriteFile(path, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		c    rtCall
		args []string
	}{
		{rtCall{dir: e.dir}, []string{"spec"}},
		{rtCall{}, []string{"spec", "--bundle", e.dir}},
		{rtCall{}, []string{"spec", "-b", e.dir}},
	} {
		r := e.rt(call.c, call.args...)
		if r.code == 0 {
			t.Errorf("%v over an existing config.json: exit 0, want failure", call.args)
		}
		oneErrorLine(t, strings.Join(call.args, " "), r, "config.json")
		if r.stdout != "" {
			t.Errorf("%v: stdout %q", call.args, r.stdout)
		}
		now, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(now, edited) {
			t.Fatalf("%v changed config.json (err %v)", call.args, err)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%v changed config.json's mode to %v", call.args, fi.Mode().Perm())
		}
	}
}

func TestCommandsLifecycle(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sleep", "1000")
	id := cmdsID(t, "life")
	e.track(id)
	pidFile := filepath.Join(e.dir, "init.pid")

	if r := e.detached(nil, "create", "--bundle", b, "--pid-file", pidFile, id); r.code != 0 {
		t.Fatalf("create: %v", r)
	}
	pid := readPidFile(t, pidFile)
	s := e.wantStatus(id, "created")
	if s.Pid != pid {
		t.Errorf("state pid %d, pid file %d", s.Pid, pid)
	}
	if s.Bundle != b {
		t.Errorf("state bundle %q, want %q", s.Bundle, b)
	}
	// A second create with the same id fails and leaves the first alone.
	if r := e.detached(nil, "create", "--bundle", b, id); r.code == 0 {
		t.Errorf("second create %s: exit 0, want failure", id)
	}

	e.ok("start", id)
	if s := e.wantStatus(id, "running"); s.Pid != pid {
		t.Errorf("running: state pid %d, want %d", s.Pid, pid)
	}
	if r := e.rt(rtCall{}, "start", id); r.code == 0 {
		t.Errorf("start of a running container: exit 0, want failure")
	}

	psPids := func() []int {
		t.Helper()
		r := e.ok("ps", "--format", "json", id)
		var pids []int
		if err := json.Unmarshal([]byte(r.stdout), &pids); err != nil {
			t.Fatalf("ps --format json: %v\n%s", err, r.stdout)
		}
		return pids
	}
	if pids := psPids(); !containsInt(pids, pid) {
		t.Errorf("ps %v lacks the init pid %d", pids, pid)
	}

	// exec in the foreground: output and exit status.
	if r := e.ok("exec", id, "cat", "/proc/1/cmdline"); r.stdout != "sleep\x001000\x00" {
		t.Errorf("exec cat /proc/1/cmdline: %q, want %q", r.stdout, "sleep\x001000\x00")
	}
	if r := e.rt(rtCall{}, "exec", id, "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exec sh -c 'exit 3': %v, want exit 3", r)
	}
	// exec --process --detach --pid-file.
	proc := e.writeFile("process.json", `{"terminal":false,"user":{"uid":0,"gid":0},"args":["sleep","1000"],"env":["PATH=/bin"],"cwd":"/"}`)
	execPidFile := filepath.Join(e.dir, "exec.pid")
	if r := e.detached(nil, "exec", "--process", proc, "--detach", "--pid-file", execPidFile, id); r.code != 0 {
		t.Fatalf("exec --process --detach: %v", r)
	}
	execPid := readPidFile(t, execPidFile)
	// The pid can be reported just before the process's execve.
	waitFor(t, 5*time.Second, fmt.Sprintf("exec'd pid %d to run sleep 1000", execPid), func() (bool, string) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", execPid))
		return err == nil && string(cmdline) == "sleep\x001000\x00", fmt.Sprintf("%q %v", cmdline, err)
	})
	if pids := psPids(); !containsInt(pids, pid) || !containsInt(pids, execPid) {
		t.Errorf("ps %v: want init %d and exec'd %d", pids, pid, execPid)
	}

	// pause / resume, checked against the freezer cgroup.
	freezer := filepath.Join(cgroupDir(t, pid, "freezer"), "freezer.state")
	e.ok("pause", id)
	e.wantStatus(id, "paused")
	if st := readTrimmed(t, freezer); st != "FROZEN" {
		t.Errorf("paused: %s is %q, want FROZEN", freezer, st)
	}
	if r := e.rt(rtCall{}, "pause", id); r.code == 0 {
		t.Errorf("pause of a paused container: exit 0, want failure")
	}
	e.ok("resume", id)
	e.wantStatus(id, "running")
	if st := readTrimmed(t, freezer); st != "THAWED" {
		t.Errorf("resumed: %s is %q, want THAWED", freezer, st)
	}
	if r := e.rt(rtCall{}, "resume", id); r.code == 0 {
		t.Errorf("resume of a running container: exit 0, want failure")
	}

	// update --resources FILE, then from stdin.
	memLimit := filepath.Join(cgroupDir(t, pid, "memory"), "memory.limit_in_bytes")
	pidsMax := filepath.Join(cgroupDir(t, pid, "pids"), "pids.max")
	res := e.writeFile("resources.json", `{"memory":{"limit":67108864},"pids":{"limit":42}}`)
	e.ok("update", "--resources", res, id)
	if v := readTrimmed(t, memLimit); v != "67108864" {
		t.Errorf("after update: %s = %s, want 67108864", memLimit, v)
	}
	if v := readTrimmed(t, pidsMax); v != "42" {
		t.Errorf("after update: %s = %s, want 42", pidsMax, v)
	}
	r := e.rt(rtCall{stdin: strings.NewReader(`{"memory":{"limit":33554432},"pids":{"limit":17}}`)}, "update", "--resources", "-", id)
	if r.code != 0 {
		t.Fatalf("update --resources -: %v", r)
	}
	if v := readTrimmed(t, memLimit); v != "33554432" {
		t.Errorf("after update from stdin: %s = %s, want 33554432", memLimit, v)
	}
	if v := readTrimmed(t, pidsMax); v != "17" {
		t.Errorf("after update from stdin: %s = %s, want 17", pidsMax, v)
	}
	e.wantStatus(id, "running")

	// kill with a numeric signal; the container stops.
	e.ok("kill", id, "9")
	waitFor(t, 15*time.Second, id+" to stop", func() (bool, string) {
		s := e.state(id)
		return s.Status == "stopped", s.Status
	})
	r = e.rt(rtCall{}, "kill", id, "9")
	if r.code == 0 {
		t.Errorf("kill of a stopped container: exit 0, want failure")
	}
	oneErrorLine(t, "kill of a stopped container", r, "container not running")

	e.ok("delete", id)
	e.wantGone(id)
	if r := e.rt(rtCall{}, "delete", id); r.code == 0 {
		t.Errorf("delete of a deleted container: exit 0, want failure")
	}
	if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
		t.Errorf("after delete, --root holds %v", entries)
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestCommandsRun(t *testing.T) {
	e := newCmdsEnv(t)

	// run -d: returns while the process runs.
	b := e.bundle("bundle-d", "sleep", "1000")
	id := cmdsID(t, "rund")
	e.track(id)
	pidFile := filepath.Join(e.dir, "run.pid")
	if r := e.detached(nil, "run", "-d", "--bundle", b, "--pid-file", pidFile, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	s := e.wantStatus(id, "running")
	if pid := readPidFile(t, pidFile); s.Pid != pid {
		t.Errorf("state pid %d, pid file %d", s.Pid, pid)
	}
	e.ok("delete", "--force", id)
	e.wantGone(id)

	// run in the foreground: its status is the process's, output passes
	// through, and no container is left.
	fg := e.bundle("bundle-fg", "sh", "-c", "echo out; echo err >&2; exit 7")
	fgID := cmdsID(t, "runfg")
	e.track(fgID)
	r := e.rt(rtCall{}, "run", "--bundle", fg, fgID)
	if r.code != 7 {
		t.Errorf("run (exit 7): %v, want exit 7", r)
	}
	if r.stdout != "out\n" || r.stderr != "err\n" {
		t.Errorf("run: stdout %q, stderr %q; want \"out\\n\", \"err\\n\"", r.stdout, r.stderr)
	}
	e.wantGone(fgID)
	if entries, _ := os.ReadDir(e.root); len(entries) != 0 {
		t.Errorf("after a foreground run, --root holds %v", entries)
	}

	// run from the bundle as the working directory, exit 0.
	ok := e.bundle("bundle-0", "true")
	okID := cmdsID(t, "run0")
	e.track(okID)
	if r := e.rt(rtCall{dir: ok}, "run", okID); r.code != 0 {
		t.Errorf("run (cwd bundle, true): %v, want exit 0", r)
	}
	e.wantGone(okID)
}

func TestCommandsLogFile(t *testing.T) {
	e := newCmdsEnv(t)
	for _, form := range [][]string{
		{"--log", "LOG", "--log-format", "json"},
		{"--log-format=json", "--log=LOG"},
	} {
		log := filepath.Join(e.dir, fmt.Sprintf("log-%d.json", len(form)))
		// A line already in the file stays: the log is appended to.
		if err := os.WriteFile(log, []byte(`{"level":"info","msg":"earlier"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"--root", e.root}
		for _, a := range form {
			args = append(args, strings.ReplaceAll(a, "LOG", log))
		}
		args = append(args, "state", "nosuch")
		r := rtRun(t, rtCall{}, args...)
		if r.code == 0 {
			t.Errorf("%v: exit 0, want failure", args)
		}
		oneErrorLine(t, strings.Join(args, " "), r, "does not exist")
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) < 2 || !strings.Contains(lines[0], "earlier") {
			t.Errorf("%v: log file %q: want the earlier line kept and a new one", form, data)
			continue
		}
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		last := lines[len(lines)-1]
		if err := json.Unmarshal([]byte(last), &entry); err != nil {
			t.Errorf("%v: last log line %q is not JSON: %v", form, last, err)
			continue
		}
		if entry.Level != "error" || !strings.Contains(entry.Msg, "does not exist") {
			t.Errorf("%v: last log line %q: want level error and a msg with \"does not exist\"", form, last)
		}
	}
}

func TestCommandsOCIVersion(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sleep", "1000")
	for _, v := range []string{"1.0.0", "1.0.2", "1.2.0", "1.3.0"} {
		e.editConfig(b, func(c map[string]any) { c["ociVersion"] = v })
		id := cmdsID(t, "v"+strings.ReplaceAll(v, ".", ""))
		e.track(id)
		if r := e.detached(nil, "create", "--bundle", b, id); r.code != 0 {
			t.Errorf("create with ociVersion %s: %v", v, r)
			continue
		}
		e.wantStatus(id, "created")
		e.ok("delete", "--force", id)
	}
	for _, v := range []string{"1.4.0", "0.9", "2.0.0"} {
		e.editConfig(b, func(c map[string]any) { c["ociVersion"] = v })
		id := cmdsID(t, "bad")
		e.track(id)
		r := e.detached(nil, "create", "--bundle", b, id)
		if r.code == 0 {
			t.Errorf("create with ociVersion %s: exit 0, want failure", v)
			continue
		}
		oneErrorLine(t, "create with ociVersion "+v, r, "ociVersion")
		if !strings.Contains(r.stderr, v) {
			t.Errorf("create with ociVersion %s: error %q does not name the version", v, r.stderr)
		}
		if entries, err := os.ReadDir(e.root); err == nil && len(entries) != 0 {
			var names []string
			for _, en := range entries {
				names = append(names, en.Name())
			}
			t.Errorf("after the failed create (ociVersion %s), --root holds %v", v, names)
		}
		e.wantGone(id)
	}
}

// counterFile reads the counter a counterScript writes into the rootfs.
func counterFile(t *testing.T, path string) (counterValue, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return counterValue{}, false
	}
	vals := parseCounterLines(string(b))
	if len(vals) != 1 {
		return counterValue{}, false
	}
	return vals[0], true
}

func waitCounter(t *testing.T, path string, after counterValue) counterValue {
	t.Helper()
	var v counterValue
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to pass %v", path, after), func() (bool, string) {
		var ok bool
		v, ok = counterFile(t, path)
		return ok && (after.token == "" || v.token != after.token || v.n > after.n), v.String()
	})
	return v
}

func requireFile(t *testing.T, path string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
		t.Errorf("%s: missing or empty (%v)", path, err)
	}
}

// TestBundleCheckpointRestore checkpoints a bundle container the way
// containerd's runc shim does (paused, --leave-running, then a final dump)
// and restores it with --bundle.
func TestBundleCheckpointRestore(t *testing.T) {
	e := newCmdsEnv(t)
	counter := "/tmp/counter"
	b := e.bundle("bundle", "sh", "-c", counterScript(counter))
	hostCounter := filepath.Join(b, "rootfs", counter)
	id := cmdsID(t, "cr")
	e.track(id)
	log := filepath.Join(e.dir, "runtime.log")
	null := e.devNull()
	// CRIU dumps the tree's stdio: /dev/null, not the test's pipes.
	if r := e.detached(null, "--log", log, "run", "-d", "--bundle", b, id); r.code != 0 {
		logData, _ := os.ReadFile(log)
		t.Fatalf("run -d: %v\nlog: %s", r, logData)
	}
	first := waitCounter(t, hostCounter, counterValue{})
	first = waitCounter(t, hostCounter, first)
	t.Logf("counter runs: %v", first)

	img := func(n string) string { return filepath.Join(e.dir, n) }

	// Paused, --leave-running: stays paused, frozen.
	e.ok("pause", id)
	frozen, _ := counterFile(t, hostCounter)
	e.ok("checkpoint", "--image-path", img("I"), "--work-path", img("W"), "--file-locks", "--leave-running", id)
	e.wantStatus(id, "paused")
	time.Sleep(300 * time.Millisecond)
	if v, _ := counterFile(t, hostCounter); v != frozen {
		t.Errorf("paused container counted on after checkpoint --leave-running: %v -> %v", frozen, v)
	}
	e.ok("resume", id)
	e.wantStatus(id, "running")
	resumed := waitCounter(t, hostCounter, frozen)
	if resumed.token != first.token {
		t.Fatalf("counter restarted after checkpoint --leave-running + resume: %v -> %v", first, resumed)
	}
	requireFile(t, filepath.Join(img("W"), "dump.log"))
	requireFile(t, filepath.Join(img("I"), "inventory.img"))

	// Running, a repeated boolean flag.
	e.ok("checkpoint", "--image-path", img("I2"), "--work-path", img("W2"), "--leave-running", "--leave-running", id)
	e.wantStatus(id, "running")
	afterI2 := waitCounter(t, hostCounter, resumed)
	if afterI2.token != first.token {
		t.Fatalf("counter restarted after the second checkpoint: %v -> %v", resumed, afterI2)
	}
	requireFile(t, filepath.Join(img("W2"), "dump.log"))

	// Final dump: the container is gone, as with runc.
	e.ok("checkpoint", "--image-path", img("I3"), id)
	e.wantGone(id)
	dumped, ok := counterFile(t, hostCounter)
	if !ok || dumped.token != first.token {
		t.Fatalf("counter after the final dump: %v", dumped)
	}
	time.Sleep(300 * time.Millisecond)
	if v, _ := counterFile(t, hostCounter); v != dumped {
		t.Fatalf("counter still runs after checkpoint without --leave-running: %v -> %v", dumped, v)
	}
	requireFile(t, filepath.Join(img("I3"), "dump.log"))
	e.ok("delete", "--force", id)

	pidFile := img("restore.pid")
	r := e.detached(nil, "--log", log, "restore", "--image-path", img("I3"), "--work-path", img("W3"), "--detach",
		"--pid-file", pidFile, "-no-subreaper", "--bundle", b, id)
	if r.code != 0 {
		restoreLog, _ := os.ReadFile(filepath.Join(img("W3"), "restore.log"))
		t.Fatalf("restore: %v\nrestore.log tail:\n%s", r, tail(string(restoreLog), 20))
	}
	s := e.wantStatus(id, "running")
	if pid := readPidFile(t, pidFile); pid != s.Pid {
		t.Errorf("restore pid file %d, state pid %d", pid, s.Pid)
	}
	restored := waitCounter(t, hostCounter, dumped)
	if restored.token != dumped.token {
		t.Errorf("restore restarted the counter: dumped %v, now %v", dumped, restored)
	}
	if restored.n > dumped.n+30 {
		t.Errorf("counter jumped from %v to %v across the restore", dumped, restored)
	}
	requireFile(t, filepath.Join(img("W3"), "restore.log"))
	if pids := e.ok("ps", "--format", "json", id).stdout; !strings.Contains(pids, strconv.Itoa(s.Pid)) {
		t.Errorf("ps after restore: %s lacks %d", pids, s.Pid)
	}

	// The restored container behaves like any other.
	e.ok("pause", id)
	e.wantStatus(id, "paused")
	e.ok("resume", id)
	e.ok("kill", id, "KILL")
	waitFor(t, 15*time.Second, id+" to stop", func() (bool, string) {
		s := e.state(id)
		return s.Status == "stopped", s.Status
	})
	e.ok("delete", id)
	e.wantGone(id)
}

// pipeLines reads "<token> <n>" lines from r until EOF.
func pipeLines(r *os.File) <-chan counterValue {
	ch := make(chan counterValue, 1024)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			for _, v := range parseCounterLines(sc.Text()) {
				ch <- v
			}
		}
	}()
	return ch
}

// nextLine waits for the next counter line; ok is false at EOF.
func nextLine(t *testing.T, ch <-chan counterValue, what string) (counterValue, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(10 * time.Second):
		t.Fatalf("no counter line on %s within 10s", what)
	}
	return counterValue{}, false
}

// TestBundleCheckpointRestorePipe gives the container a pipe as stdout, as
// managers do: checkpoint keeps it working, and restore connects the tree
// to the new pipe it is given as stdout (descriptors.json + inherit-fd).
func TestBundleCheckpointRestorePipe(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sh", "-c", counterScript("/tmp/counter"))
	id := cmdsID(t, "crpipe")
	e.track(id)
	null := e.devNull()
	log := filepath.Join(e.dir, "runtime.log")

	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r1.Close() })
	res := e.rt(rtCall{stdin: null, stdout: w1, stderr: null}, "--log", log, "run", "-d", "--bundle", b, id)
	w1.Close()
	if res.code != 0 {
		logData, _ := os.ReadFile(log)
		t.Fatalf("run -d: %v\nlog: %s", res, logData)
	}
	lines1 := pipeLines(r1)
	v, _ := nextLine(t, lines1, "the first pipe")
	token := v.token
	expect := func(ch <-chan counterValue, what string, prev counterValue) counterValue {
		t.Helper()
		v, ok := nextLine(t, ch, what)
		if !ok {
			t.Fatalf("%s closed after %v", what, prev)
		}
		if v.token != token || v.n != prev.n+1 {
			t.Fatalf("%s: %v after %v, want %s %d", what, v, prev, token, prev.n+1)
		}
		return v
	}
	v = expect(lines1, "the first pipe", v)

	e.ok("checkpoint", "--image-path", filepath.Join(e.dir, "I1"), "--work-path", filepath.Join(e.dir, "W1"), "--leave-running", id)
	e.wantStatus(id, "running")
	for i := 0; i < 3; i++ {
		v = expect(lines1, "the first pipe after checkpoint --leave-running", v)
	}

	e.ok("checkpoint", "--image-path", filepath.Join(e.dir, "I2"), "--work-path", filepath.Join(e.dir, "W2"), id)
	e.wantGone(id)
	// The dumped tree is gone: the first pipe drains to EOF.
	for {
		next, ok := nextLine(t, lines1, "the first pipe after the final checkpoint")
		if !ok {
			break
		}
		if next.token != token || next.n != v.n+1 {
			t.Fatalf("first pipe: %v after %v", next, v)
		}
		v = next
	}
	last := v
	desc, err := os.ReadFile(filepath.Join(e.dir, "I2", "descriptors.json"))
	if err != nil || !strings.Contains(string(desc), "pipe:[") {
		t.Errorf("descriptors.json %q (%v): want the stdout pipe recorded", desc, err)
	}

	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r2.Close() })
	res = e.rt(rtCall{stdin: null, stdout: w2, stderr: null}, "--log", log, "restore", "--image-path", filepath.Join(e.dir, "I2"),
		"--work-path", filepath.Join(e.dir, "W2r"), "--detach", "--bundle", b, id)
	w2.Close()
	if res.code != 0 {
		logData, _ := os.ReadFile(log)
		restoreLog, _ := os.ReadFile(filepath.Join(e.dir, "W2r", "restore.log"))
		t.Fatalf("restore: %v\nlog: %s\nrestore.log tail:\n%s", res, logData, tail(string(restoreLog), 20))
	}
	e.wantStatus(id, "running")
	lines2 := pipeLines(r2)
	v = last
	for i := 0; i < 3; i++ {
		v = expect(lines2, "the restore's pipe", v)
	}
	t.Logf("counter on the first pipe ended at %v; continued on the new pipe up to %v", last, v)

	e.ok("delete", "--force", id)
	e.wantGone(id)
	// The tree is gone: the second pipe reaches EOF.
	for {
		if _, ok := nextLine(t, lines2, "the restore's pipe after delete --force"); !ok {
			break
		}
	}
}

func TestCommandsHelpAndFlagErrors(t *testing.T) {
	requireE2E(t)
	for _, args := range [][]string{{"checkpoint", "--help"}, {"restore", "--help"}, {"--help"}} {
		r := rtRun(t, rtCall{}, args...)
		if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "USAGE") && !strings.Contains(strings.ToLower(r.stdout+r.stderr), "usage") {
			t.Errorf("%v: %v; want exit 0 and a usage text", args, r)
		}
	}
	if r := rtRun(t, rtCall{}, "checkpoint", "--help"); !strings.Contains(r.stdout, "--leave-running") {
		t.Errorf("checkpoint --help does not list --leave-running:\n%s", r.stdout)
	}
	r := rtRun(t, rtCall{}, "restore", "--lsm-mount-context")
	if r.code == 0 {
		t.Errorf("restore --lsm-mount-context (no value): exit 0, want failure")
	}
	oneErrorLine(t, "restore --lsm-mount-context", r, "flag needs an argument")
	r = rtRun(t, rtCall{}, "checkpoint", "--no-such-flag", "x")
	if r.code == 0 {
		t.Errorf("checkpoint --no-such-flag: exit 0, want failure")
	}
	oneErrorLine(t, "checkpoint --no-such-flag", r, "no-such-flag")
}

// TestCommandsExecPaused: exec into a paused container must not hang. runc
// refuses it ("cannot exec in a paused container (use --ignore-paused to
// override)"); a frozen exec would also block every later command that
// takes the container's lock, resume included.
func TestCommandsExecPaused(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sleep", "1000")
	id := cmdsID(t, "execpaused")
	e.track(id)
	if r := e.detached(nil, "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	e.ok("pause", id)
	// Make sure the container is thawed (so cleanup can work) even when
	// exec hangs and this test fails.
	t.Cleanup(func() { rtRun(t, rtCall{timeout: 10 * time.Second}, "--root", e.root, "resume", id) })
	// Files, not pipes: a hung exec's child would hold pipes open.
	errFile := e.file("exec-stderr")
	r := e.rt(rtCall{stdin: e.devNull(), stdout: e.devNull(), stderr: errFile, timeout: 5 * time.Second}, "exec", id, "true")
	errText, _ := os.ReadFile(errFile.Name())
	r.stderr = string(errText)
	if r.code == 0 {
		t.Errorf("exec in a paused container: exit 0, want a refusal")
	} else if !strings.Contains(r.stderr, "paused") {
		t.Errorf("exec in a paused container: %v; want an error naming the paused state", r)
	}
	e.wantStatus(id, "paused")
	e.ok("resume", id)
	e.wantStatus(id, "running")
	if r := e.ok("exec", id, "echo", "hi"); r.stdout != "hi\n" {
		t.Errorf("exec after resume: %q", r.stdout)
	}
}

// TestCommandsKillSignals: runc's kill takes signal names with or without
// SIG, numbers, and 0 (a liveness probe that sends nothing).
func TestCommandsKillSignals(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sh", "-c", "trap 'echo usr1 > /tmp/got' USR1; while :; do sleep 0.1; done")
	id := cmdsID(t, "kill")
	e.track(id)
	if r := e.detached(nil, "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	got := filepath.Join(b, "rootfs", "tmp", "got")
	for _, sig := range []string{"USR1", "SIGUSR1", "10"} {
		os.Remove(got)
		e.ok("kill", id, sig)
		waitFor(t, 5*time.Second, "the trap for "+sig, func() (bool, string) {
			_, err := os.Stat(got)
			return err == nil, fmt.Sprint(err)
		})
	}
	if r := e.rt(rtCall{}, "kill", id, "NOSUCHSIG"); r.code == 0 {
		t.Errorf("kill NOSUCHSIG: exit 0, want failure")
	}
	if r := e.rt(rtCall{}, "kill", id, "0"); r.code != 0 {
		t.Errorf("kill %s 0 (running container): %v; runc sends signal 0 and exits 0", id, r)
	}
	e.wantStatus(id, "running")
}

// TestBundleTimeout: --timeout bounds libcontainer's CRIU run too. A CRIU
// that never answers is stopped, the container runs on, the image dir is
// not written, and the error says it timed out.
func TestBundleTimeout(t *testing.T) {
	e := newCmdsEnv(t)
	counter := "/tmp/counter"
	b := e.bundle("bundle", "sh", "-c", counterScript(counter))
	hostCounter := filepath.Join(b, "rootfs", counter)
	id := cmdsID(t, "to")
	e.track(id)
	if r := e.detached(e.devNull(), "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	first := waitCounter(t, hostCounter, counterValue{})

	// libcontainer runs "criu" from PATH, the --criu binary's directory first.
	dir := filepath.Join(e.dir, "stuck")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stuck := "#!/bin/sh\n# never answers libcontainer; ends, with its child, on SIGALRM or SIGTERM\nsleep 60 &\npid=$!\ntrap 'kill $pid; exit 1' ALRM TERM\nwait $pid\n"
	if err := os.WriteFile(filepath.Join(dir, "criu"), []byte(stuck), 0o755); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(e.dir, "img")
	r := e.rt(rtCall{}, "--criu", filepath.Join(dir, "criu"), "checkpoint", "--timeout", "1s", "--image-path", img, "--leave-running", id)
	if r.code == 0 {
		t.Fatalf("checkpoint with a stuck CRIU succeeded: %v", r)
	}
	oneErrorLine(t, "checkpoint --timeout", r, "timed out after 1s")
	if ents, _ := os.ReadDir(img); len(ents) != 0 {
		t.Errorf("the timed-out checkpoint wrote %d entries into %s", len(ents), img)
	}
	e.wantStatus(id, "running")
	if v := waitCounter(t, hostCounter, first); v.token != first.token {
		t.Errorf("the container restarted: %v -> %v", first, v)
	}
	e.ok("checkpoint", "--image-path", img, "--leave-running", id)
	requireFile(t, filepath.Join(img, "inventory.img"))
	e.ok("delete", "--force", id)
	e.wantGone(id)
}
