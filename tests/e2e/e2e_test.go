// Package e2e drives the OCI runtime through real container managers
// (podman + conmon, containerd 1.6 + ctr, containerd 2.x's CRI + crictl)
// and through the OCI runtime-tools validation suite.
//
// Environment:
//
//	E2E_RUNTIME              runtime binary (default ../../bin/criu-ns-runtime)
//	E2E_RUNTIME_NAME         name the managers know it by (default criu-ns-runtime)
//	E2E_RUNTIME_TOOLS_DIR    built runtime-tools tree (default /var/cache/criu-ns-runtime/runtime-tools)
//	E2E_CRI_BIN_DIR          containerd 2.x and crictl (default: scripts/install-cri-tools.sh's cache)
//	E2E_NO_INSTALL=1         do not run scripts/install-*.sh when a dependency is missing
//	E2E_ALLOW_SKIP=1         skip, instead of fail, when a dependency is missing
//	E2E_SKIP_NOTE            file that gets the skip note too (the Makefile prints it last)
//
// The tests need root. Missing dependencies are installed by running
// scripts/install-e2e-deps.sh and scripts/install-criu.sh. Whatever is
// still missing then fails every test, unless E2E_ALLOW_SKIP=1 asks for
// skips; the run then ends with a line saying what was skipped and why.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/leftovers"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatecri"
)

const (
	// defaultRuntime is `make build`'s output, relative to this package.
	defaultRuntime         = "../../bin/criu-ns-runtime"
	defaultRuntimeName     = "criu-ns-runtime"
	defaultRuntimeToolsDir = "/var/cache/criu-ns-runtime/runtime-tools"
	imageRef               = "localhost/e2e-busybox:latest"
)

// depsMissing is non-empty when the dependencies could not be installed:
// it says what is missing.
var depsMissing string

// allowSkip: E2E_ALLOW_SKIP=1 turns missing dependencies into skips.
func allowSkip() bool { return os.Getenv("E2E_ALLOW_SKIP") == "1" }

func runtimePath() string {
	if p := os.Getenv("E2E_RUNTIME"); p != "" {
		return p
	}
	abs, _ := filepath.Abs(defaultRuntime)
	return abs
}

func runtimeName() string {
	if n := os.Getenv("E2E_RUNTIME_NAME"); n != "" {
		return n
	}
	return defaultRuntimeName
}

func runtimeToolsDir() string {
	if d := os.Getenv("E2E_RUNTIME_TOOLS_DIR"); d != "" {
		return d
	}
	return defaultRuntimeToolsDir
}

// repoRoot is the repository root (this file is tests/e2e/e2e_test.go).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// missingDeps lists what the e2e tests need but cannot find.
func missingDeps() []string {
	var missing []string
	for _, bin := range []string{"podman", "conmon", "containerd", "ctr", "containerd-shim-runc-v2", "criu"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox (busybox-static)")
	}
	if m, _ := filepath.Glob(filepath.Join(runtimeToolsDir(), "validation", "*.t")); len(m) == 0 {
		missing = append(missing, "runtime-tools validation executables in "+runtimeToolsDir())
	}
	if _, err := os.Stat(filepath.Join(runtimeToolsDir(), "runtimetest")); err != nil {
		missing = append(missing, "runtime-tools runtimetest in "+runtimeToolsDir())
	}
	return append(missing, privatecri.MissingTools(criBinDir())...)
}

func TestMain(m *testing.M) {
	// /usr/local/sbin holds the CRIU that scripts/install-criu.sh builds.
	os.Setenv("PATH", os.Getenv("PATH")+":/usr/local/sbin:/usr/sbin:/sbin:/usr/local/go/bin")
	// A shell may hand us stray descriptors: no manager, runtime or
	// workload started from here may inherit them (CRIU refuses to dump
	// a tree that holds one).
	if err := cloexecStrayFds(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		os.Exit(1)
	}
	depsMissing = ensureDeps()
	if depsMissing != "" && !allowSkip() {
		fmt.Fprintf(os.Stderr, "\n!!! E2E DEPENDENCIES MISSING, EVERY TEST WILL FAIL: %s\n"+
			"!!! (set E2E_ALLOW_SKIP=1 to skip them instead)\n\n", depsMissing)
	}
	code := m.Run()
	if depsMissing != "" && allowSkip() {
		note := fmt.Sprintf("e2e: SKIPPED (E2E_ALLOW_SKIP=1): the e2e tests did not run: %s", depsMissing)
		if f := os.Getenv("E2E_SKIP_NOTE"); f != "" {
			os.WriteFile(f, []byte(note+"\n"), 0o644)
		}
		fmt.Println(note) // the run's last line
	}
	os.Exit(code)
}

// cloexecStrayFds marks every descriptor above stderr close-on-exec.
func cloexecStrayFds() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The descriptor ReadDir used is closed already: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}

func ensureDeps() string {
	if os.Geteuid() != 0 {
		return "the e2e tests must run as root"
	}
	missing := missingDeps()
	if len(missing) == 0 {
		return ""
	}
	if os.Getenv("E2E_NO_INSTALL") == "1" {
		return fmt.Sprintf("missing %s and E2E_NO_INSTALL=1", strings.Join(missing, ", "))
	}
	fmt.Fprintf(os.Stderr, "e2e: missing %s; running the install scripts\n", strings.Join(missing, ", "))
	var failures []string
	for _, s := range []string{"install-criu.sh", "install-e2e-deps.sh"} {
		cmd := exec.Command("bash", filepath.Join(repoRoot(), "scripts", s))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			failures = append(failures, fmt.Sprintf("scripts/%s: %v", s, err))
		}
	}
	if missing = missingDeps(); len(missing) > 0 {
		return fmt.Sprintf("could not install %s (%s)", strings.Join(missing, ", "), strings.Join(failures, "; "))
	}
	return ""
}

// requireE2E fails the test when dependencies could not be installed
// (skips it if E2E_ALLOW_SKIP=1) and when the runtime under test is absent.
func requireE2E(t *testing.T) {
	t.Helper()
	if depsMissing != "" {
		if allowSkip() {
			t.Skipf("!!! E2E SKIPPED (E2E_ALLOW_SKIP=1): %s", depsMissing)
		}
		t.Fatalf("e2e dependencies missing after the install scripts ran: %s (E2E_ALLOW_SKIP=1 skips instead)", depsMissing)
	}
	if fi, err := os.Stat(runtimePath()); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("runtime under test %q is not an executable (build it, or set E2E_RUNTIME): %v", runtimePath(), err)
	}
}

// run runs a command with a timeout and returns its combined output.
func run(t *testing.T, timeout time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %v: %w", timeout, err)
	}
	t.Logf("$ %s %s (%.2fs)", name, strings.Join(args, " "), time.Since(start).Seconds())
	return out.String(), err
}

// mustRun is run that fails the test on error.
func mustRun(t *testing.T, timeout time.Duration, env []string, name string, args ...string) string {
	t.Helper()
	out, err := run(t, timeout, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// makeTempDir creates a temp dir that is removed at the end of the test
// after lazily unmounting anything the managers left mounted below it.
func makeTempDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	return dir
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	_, errs := leftovers.Unmount(dir)
	for _, err := range errs {
		t.Logf("%v", err)
	}
}

// writeRuntimeWrapper writes a shell script that runs the runtime under
// test and then appends one line to <dir>/runtime-calls.log: the caller's
// name, the arguments, the binary that ran and its exit status (tab
// separated). readRuntimeCalls parses that record.
func writeRuntimeWrapper(t *testing.T, dir string) (wrapper, logFile string) {
	t.Helper()
	wrapper = filepath.Join(dir, "runtime-wrapper")
	logFile = filepath.Join(dir, "runtime-calls.log")
	script := fmt.Sprintf(`#!/bin/sh
caller=$(cat /proc/$PPID/comm 2>/dev/null)
%[2]q "$@"
rc=$?
printf '%%s\t%%s\t%%s\t%%d\n' "$caller" "$*" %[2]q "$rc" >> %[1]q
exit $rc
`, logFile, runtimePath())
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, logFile
}

// runtimeCall is one line of the wrapper's record.
type runtimeCall struct {
	caller string
	args   []string // as the wrapper saw them (split on blanks)
	binary string   // what the wrapper ran
	exit   int
	global []string // flag names before the subcommand
	sub    string
	flags  []string // the subcommand's flag names, in order
	id     string   // the last argument: the container id
}

func (c runtimeCall) String() string {
	return fmt.Sprintf("%s: %s (%s, exit %d)", c.caller, strings.Join(c.args, " "), c.binary, c.exit)
}

// readRuntimeCalls parses the wrapper's record.
func readRuntimeCalls(t *testing.T, logFile string) []runtimeCall {
	t.Helper()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("no record of runtime calls: %v", err)
	}
	var calls []runtimeCall
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Fatalf("malformed runtime-call record line %q", line)
		}
		c := runtimeCall{caller: f[0], args: strings.Fields(f[1]), binary: f[2]}
		c.exit, err = strconv.Atoi(f[3])
		if err != nil {
			t.Fatalf("malformed exit status in record line %q", line)
		}
		for _, a := range c.args {
			switch {
			case c.sub == "" && runtimeSubs[a]:
				c.sub = a
			case strings.HasPrefix(a, "-"):
				name, _, _ := strings.Cut(a, "=")
				if c.sub == "" {
					c.global = append(c.global, name)
				} else {
					c.flags = append(c.flags, name)
				}
			}
		}
		if len(c.args) > 0 {
			c.id = c.args[len(c.args)-1]
		}
		calls = append(calls, c)
	}
	return calls
}

// flagValue returns the value of flag (--name v or --name=v) in the call.
func (c runtimeCall) flagValue(name string) string {
	for i, a := range c.args {
		if a == name && i+1 < len(c.args) {
			return c.args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// requireServed checks, from the wrapper's record, that caller had the
// runtime under test serve a `sub` for container id, passing exactly the
// subcommand flags want (names, any order, repeats count), and that it
// succeeded. It returns that call.
func requireServed(t *testing.T, logFile, caller, sub, id string, want ...string) runtimeCall {
	t.Helper()
	exp := append([]string{}, want...)
	sort.Strings(exp)
	var seen []string
	for _, c := range readRuntimeCalls(t, logFile) {
		if c.sub != sub {
			continue
		}
		seen = append(seen, c.String())
		got := append([]string{}, c.flags...)
		sort.Strings(got)
		if c.caller != caller || c.id != id || strings.Join(got, " ") != strings.Join(exp, " ") {
			continue
		}
		if c.binary != runtimePath() {
			t.Fatalf("%s was run as %s, not the runtime under test %s: %s", sub, c.binary, runtimePath(), c)
		}
		if c.exit != 0 {
			t.Fatalf("the runtime under test failed %s (exit %d): %s", sub, c.exit, c)
		}
		t.Logf("served by the runtime under test: %s", c)
		return c
	}
	t.Fatalf("the runtime under test never served %s a %q of %s with flags %v; its %q calls:\n\t%s",
		caller, sub, id, want, sub, strings.Join(seen, "\n\t"))
	return runtimeCall{}
}

var (
	hexIDRe     = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	tmpNumRe    = regexp.MustCompile(`(/tmp/[A-Za-z_.-]*?)[0-9]{4,}`)
	pidFileRe   = regexp.MustCompile(`[0-9]+\.pid\b`)
	runtimeSubs = map[string]bool{"create": true, "start": true, "state": true, "kill": true, "delete": true,
		"exec": true, "run": true, "checkpoint": true, "restore": true, "pause": true, "resume": true,
		"update": true, "ps": true, "events": true, "features": true, "spec": true, "list": true}
)

// reportRuntimeCalls logs the distinct runtime invocations (normalized) and
// the distinct "caller: [global flags] subcommand flags" shapes.
func reportRuntimeCalls(t *testing.T, logFile string, replacements map[string]string) {
	if _, err := os.Stat(logFile); err != nil {
		t.Logf("no runtime calls logged: %v", err)
		return
	}
	lines := map[string]bool{}
	shapes := map[string]bool{}
	for _, c := range readRuntimeCalls(t, logFile) {
		line := c.caller + "\t" + strings.Join(c.args, " ")
		if c.exit != 0 {
			line += fmt.Sprintf("\t(exit %d)", c.exit)
		}
		for from, to := range replacements {
			line = strings.ReplaceAll(line, from, to)
		}
		line = hexIDRe.ReplaceAllString(line, "<ID>")
		line = tmpNumRe.ReplaceAllString(line, "${1}<N>")
		line = pidFileRe.ReplaceAllString(line, "<N>.pid")
		lines[line] = true
		shapes[fmt.Sprintf("%s: %s | %s %s", c.caller, strings.Join(c.global, " "), c.sub, strings.Join(c.flags, " "))] = true
	}
	t.Logf("distinct runtime invocations:\n\t%s", strings.Join(sortedKeys(lines), "\n\t"))
	t.Logf("runtime contract (caller: global flags | subcommand flags):\n\t%s", strings.Join(sortedKeys(shapes), "\n\t"))
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// buildRootfsTar writes a busybox-static rootfs tarball (busybox plus one
// symlink per applet) to dir and returns its path.
func buildRootfsTar(t *testing.T, dir string) string {
	t.Helper()
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "tmp", "data", "proc", "sys", "dev", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, 30*time.Second, nil, "/bin/busybox", "--list")
	for _, applet := range strings.Fields(out) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	mustRun(t, time.Minute, nil, "tar", "-C", rootfs, "--numeric-owner", "-cf", tarball, ".")
	return tarball
}

// counterScript prints "<token> <n>" every 100ms (to stdout and to file),
// n counting up from 1. The token is random per process start, so a restart
// shows up as a new token, and a restore as the same token continuing.
func counterScript(file string) string {
	return fmt.Sprintf(`t=$(cat /proc/sys/kernel/random/uuid); i=0; while :; do i=$((i+1)); echo "$t $i"; echo "$t $i" > %s.new; mv %s.new %s; sleep 0.1; done`,
		file, file, file)
}

type counterValue struct {
	token string
	n     int
}

func (c counterValue) String() string { return fmt.Sprintf("%s %d", c.token, c.n) }

// parseCounterLines parses "<token> <n>" lines, ignoring anything else.
func parseCounterLines(out string) []counterValue {
	var vals []counterValue
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || len(f[0]) != 36 {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(f[1], "%d", &n); err != nil {
			continue
		}
		vals = append(vals, counterValue{f[0], n})
	}
	return vals
}

// waitFor polls f until it returns true or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, state := f()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
