// Package vm runs the integration suite (./tests) in a QEMU guest that has
// Debian 12's own kernel (6.1, cgroup v2, soft-dirty tracking), a second
// kernel besides the host's, and the e2e tests that need that kernel
// (guestE2E). scripts/vm/run-guest.sh boots the guest; each test of the
// guest becomes a subtest here (the e2e ones below "e2e"), passing,
// failing or skipping as it did there.
//
// The guest runs what only it can test first (guestFirst, then guestE2E),
// then the rest of the integration suite: a CI that runs out of time
// still has the results that matter most. It runs with
// CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1, so a test that needs soft-dirty
// tracking fails there, instead of testing its absence, if it is missing.
//
// The test binaries, the workload and the runtime are built on the host
// (compiling under TCG is slow); the guest sees them, CRIU and podman
// through its 9p view of the host's "/". It needs root, like the suite
// itself, and what scripts/install-vm-deps.sh and install-e2e-deps.sh
// install: a missing tool fails the test.
//
//	CRIU_NS_RUNTIME=/path/to/criu-ns-runtime  test this binary instead of
//	                                          building one
//	VM_TEST_RUN=REGEXP                        run only the guest's tests
//	                                          that match (-test.run), in
//	                                          the suite's order
//	VM_TIMEOUT=DURATION                       the guest's time limit, boot
//	                                          included (default 45m)
package vm

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
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// guestFirst are the integration tests only a guest like this one tests
// for real: soft-dirty tracking (pre-dumps, incremental dumps, live
// migration), which the host's kernel lacks, and cgroup v2, where the host
// has v1 (the freezer of kill --all and of a failed dump, the cgroup
// parents that parallel restores and deletes make and remove).
var guestFirst = []string{
	"TestPreDump", "TestIncremental.*", "TestRPCGoCriuPreDumpLoop", "TestCheckAndVersion", ".*Migrat.*",
	"TestStateListPsKillDelete", "TestCheckpointFailureKeepsTreeRunning", "TestParallelOneID", "TestManyIDs",
}

// guestE2E are the e2e tests (./tests/e2e) the guest runs after
// guestFirst: podman's pre-checkpoints need soft-dirty tracking.
var guestE2E = []string{"TestPodmanPreCheckpoint"}

// anyOf is a -test.run pattern for exactly the top-level tests names match.
func anyOf(names []string) string { return "^(" + strings.Join(names, "|") + ")$" }

// probePrefix marks the lines the guest prints about itself before the
// suites start.
const probePrefix = "cnr-vm-probe: "

// guestProbe runs in the guest first: it describes the guest.
const guestProbe = `
p='` + probePrefix + `'
echo "${p}kernel $(uname -r)"
echo "${p}cgroupfs $(stat -fc %T /sys/fs/cgroup)"
if out=$(criu check --feature mem_dirty_track 2>&1); then
	echo "${p}mem_dirty_track ok"
else
	echo "${p}mem_dirty_track failed: $(echo "$out" | tr '\n' ' ')"
fi
status=0
`

// phase is one run of a test binary in the guest.
type phase struct {
	pkg  string   // test2json's package name for it: "tests", "e2e"
	dir  string   // where it runs: its package's directory, as with go test
	args []string // the test binary and its flags
}

// guestScript is the guest's command: the probe, then each phase through
// test2json (in the guest, so each event names its phase's package), and
// the first failing phase's exit status.
func guestScript(test2json string, phases []phase) string {
	var b strings.Builder
	b.WriteString(guestProbe)
	for _, ph := range phases {
		var cmd []string
		for _, a := range ph.args {
			cmd = append(cmd, shellQuote(a))
		}
		fmt.Fprintf(&b, "(cd %s && %s 2>&1) | %s -t -p %s\n",
			shellQuote(ph.dir), strings.Join(cmd, " "), shellQuote(test2json), shellQuote(ph.pkg))
		b.WriteString("rc=${PIPESTATUS[0]}; [ $status != 0 ] || status=$rc\n")
	}
	b.WriteString("exit $status\n")
	return b.String()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// event is one line of `go tool test2json`.
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// node is one test of the guest, with its subtests.
type node struct {
	name     string // a top-level e2e test's is "e2e/TestX"
	action   string // pass, fail, skip; "" if it never ended
	elapsed  float64
	output   strings.Builder
	children []*node
	byName   map[string]*node
}

func (n *node) child(name string) *node {
	if c, ok := n.byName[name]; ok {
		return c
	}
	c := &node{name: name, byName: map[string]*node{}}
	n.byName[name] = c
	n.children = append(n.children, c)
	return c
}

// guestRun is what came back from the guest.
type guestRun struct {
	probe   map[string]string           // probe lines: first word -> the rest
	root    *node                       // its children are the guest's top-level tests, in the order they ran
	nodes   map[string]map[string]*node // every test by package and full name
	pkg     strings.Builder             // output outside any test (TestMain, summaries, the shell)
	pkgEnds []string                    // each phase's final action, in order
	first   time.Time                   // the first test's start, as test2json saw it
	last    time.Time                   // the last event
	exit    error                       // run-guest.sh's exit
	stderr  string                      // run-guest.sh's own messages
	wall    time.Duration
}

func TestIntegrationInGuest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("the guest runs the integration suite as root; run this as root (euid %d)", os.Geteuid())
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"qemu-system-x86_64", "cpio", "depmod", "dpkg-deb", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run scripts/install-vm-deps.sh (make test-vm does)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatalf("/bin/busybox (busybox-static) is missing: run scripts/install-vm-deps.sh (make test-vm does)")
	}
	if _, err := exec.LookPath("criu"); err != nil {
		if _, err := os.Stat("/usr/local/sbin/criu"); err != nil {
			t.Fatalf("criu is neither on PATH nor at /usr/local/sbin/criu: make deps installs it")
		}
	}

	for _, tool := range []string{"podman", "conmon"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (the guest runs %v): run scripts/install-e2e-deps.sh (make test-vm does)", tool, guestE2E)
		}
	}

	// Not t.TempDir(): the guest mounts its own tmpfs on /tmp and would not
	// see the host's.
	work, err := os.MkdirTemp("/var/tmp", "cnrvm.")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })

	runtimeBin := os.Getenv("CRIU_NS_RUNTIME")
	if runtimeBin != "" {
		if runtimeBin, err = filepath.Abs(runtimeBin); err != nil {
			t.Fatal(err)
		}
	} else {
		runtimeBin = filepath.Join(work, "criu-ns-runtime")
		goCmd(t, repo, []string{"CGO_ENABLED=1"}, "build", "-tags", "seccomp", "-o", runtimeBin, "./cmd/criu-ns-runtime")
	}
	faultBin := os.Getenv("CRIU_NS_RUNTIME_FAULTINJECT")
	if faultBin != "" {
		if faultBin, err = filepath.Abs(faultBin); err != nil {
			t.Fatal(err)
		}
	} else {
		faultBin = filepath.Join(work, "criu-ns-runtime-faultinject")
		goCmd(t, repo, []string{"CGO_ENABLED=1"}, "build", "-tags", "seccomp,faultinject", "-o", faultBin, "./cmd/criu-ns-runtime")
	}
	workload := filepath.Join(work, "workload")
	goCmd(t, repo, []string{"CGO_ENABLED=0"}, "build", "-o", workload, "./tests/workload")
	testBin := filepath.Join(work, "tests.test")
	goCmd(t, repo, nil, "test", "-c", "-o", testBin, "./tests/")
	e2eBin := filepath.Join(work, "e2e.test")
	goCmd(t, repo, nil, "test", "-c", "-o", e2eBin, "./tests/e2e/")
	// The guest turns the binaries' output into events itself.
	test2json := filepath.Join(work, "test2json")
	goCmd(t, repo, nil, "build", "-o", test2json, "cmd/test2json")

	timeout := 45 * time.Minute
	if s := os.Getenv("VM_TIMEOUT"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil {
			t.Fatalf("VM_TIMEOUT=%s: %v", s, err)
		}
	}
	// The guest must be gone before go test's own -timeout kills us.
	if dl, ok := t.Deadline(); ok && time.Until(dl)-3*time.Minute < timeout {
		timeout = time.Until(dl) - 3*time.Minute
	}
	if timeout < time.Minute {
		t.Fatalf("the guest needs minutes; give go test a -timeout of 60m (make test-vm does)")
	}
	phases, err := guestPhases(repo, testBin, e2eBin, "-test.v=test2json", "-test.count=1", "-test.timeout="+(timeout-2*time.Minute).String())
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"-t", fmt.Sprint(int(timeout.Seconds())),
		"-e", "CRIU_NS_RUNTIME=" + runtimeBin,
		"-e", "CRIU_NS_RUNTIME_FAULTINJECT=" + faultBin,
		"-e", "CRIU_NS_WORKLOAD=" + workload,
		// The suite's --roots need a tmpfs: mkfifo fails on 9p.
		"-e", "CRIU_NS_TEST_TMPDIR=/tmp",
		// TCG is about 7 times slower than the host: the suite's bounds
		// on waits grow to match.
		"-e", "CRIU_NS_TEST_SLOWDOWN=8",
		// This kernel has soft-dirty tracking: tests that need it must
		// fail if it is missing.
		"-e", "CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1",
		// The e2e tests: the runtime under test, nothing to install (the
		// guest has no network; its "/" is the host's, where make
		// test-vm installed it all), podman's storage on the guest's
		// tmpfs.
		"-e", "E2E_RUNTIME=" + runtimeBin,
		"-e", "E2E_NO_INSTALL=1",
		"-e", "TMPDIR=/tmp",
		"--", "bash", "-c", guestScript(test2json, phases),
	}
	if u, err := exec.Command("uname", "-r").Output(); err == nil {
		t.Logf("host kernel %s; booting Debian 12's kernel under TCG (this takes minutes)", bytes.TrimSpace(u))
	}
	g := runGuest(t, filepath.Join(repo, "scripts", "vm", "run-guest.sh"), args, timeout+2*time.Minute)
	t.Logf("run-guest.sh:\n%s", strings.TrimRight(g.stderr, "\n"))

	t.Run("guest_is_debian12_kernel", func(t *testing.T) {
		if len(g.probe) == 0 {
			t.Fatalf("the guest said nothing about itself (run-guest.sh: %v)", g.exit)
		}
		if k := g.probe["kernel"]; !regexp.MustCompile(`^6\.1\.`).MatchString(k) {
			t.Errorf("guest kernel is %q, want Debian 12's 6.1.x", k)
		}
		if fs := g.probe["cgroupfs"]; fs != "cgroup2fs" {
			t.Errorf("/sys/fs/cgroup in the guest is %q, want cgroup2fs (cgroup v2)", fs)
		}
		if d := g.probe["mem_dirty_track"]; d != "ok" {
			t.Errorf("criu check --feature mem_dirty_track in the guest: %s", d)
		}
		t.Logf("guest: kernel %s, /sys/fs/cgroup %s, mem_dirty_track %s",
			g.probe["kernel"], g.probe["cgroupfs"], g.probe["mem_dirty_track"])
	})

	var pass, fail, skip int
	for _, n := range g.root.children {
		replay(t, n)
		switch n.action {
		case "pass":
			pass++
		case "skip":
			skip++
		default:
			fail++
		}
	}
	t.Logf("guest: %d passed, %d failed, %d skipped; the tests took %.1f s, boot and all %s",
		pass, fail, skip, g.last.Sub(g.first).Seconds(), g.wall.Round(time.Second))

	// Whatever no guest test accounts for: a suite dying in TestMain, a
	// panic or timeout of a test binary, or the guest itself failing.
	allPassed := len(g.pkgEnds) == len(phases)
	for _, end := range g.pkgEnds {
		allPassed = allPassed && end == "pass"
	}
	switch {
	case len(g.root.children) == 0:
		t.Errorf("the guest ran no test (run-guest.sh: %v); its output:\n%s", g.exit, g.pkg.String())
	case fail == 0 && (!allPassed || g.exit != nil):
		t.Errorf("the guest's %d runs of test binaries ended with %q (run-guest.sh: %v) although no test failed; its output:\n%s",
			len(phases), g.pkgEnds, g.exit, g.pkg.String())
	}
}

// guestPhases are the test binaries' runs in the guest: guestFirst,
// guestE2E, the rest; or, with VM_TEST_RUN, the integration tests that
// match it, and the e2e tests of guestE2E that match it.
func guestPhases(repo, testBin, e2eBin string, flags ...string) ([]phase, error) {
	run := func(pkg, bin string, extra ...string) phase {
		dir := filepath.Join(repo, "tests")
		if pkg != "tests" {
			dir = filepath.Join(dir, pkg)
		}
		return phase{pkg, dir, append(append([]string{bin}, flags...), extra...)}
	}
	re := os.Getenv("VM_TEST_RUN")
	if re == "" {
		return []phase{
			run("tests", testBin, "-test.run="+anyOf(guestFirst)),
			run("e2e", e2eBin, "-test.run="+anyOf(guestE2E)),
			run("tests", testBin, "-test.skip="+anyOf(guestFirst)),
		}, nil
	}
	match, err := regexp.Compile(re)
	if err != nil {
		return nil, fmt.Errorf("VM_TEST_RUN=%s: %v", re, err)
	}
	phases := []phase{run("tests", testBin, "-test.run="+re)}
	var e2e []string
	for _, name := range guestE2E {
		if match.MatchString(name) {
			e2e = append(e2e, name)
		}
	}
	if len(e2e) > 0 {
		phases = append(phases, run("e2e", e2eBin, "-test.run="+anyOf(e2e)))
	}
	return phases, nil
}

// replay mirrors the guest's test n (and its subtests) as a subtest of t.
func replay(t *testing.T, n *node) {
	t.Helper()
	t.Run(n.name, func(t *testing.T) {
		for _, c := range n.children {
			replay(t, c)
		}
		out := strings.TrimRight(n.output.String(), "\n")
		switch n.action {
		case "pass":
			// What it logged, as go test -v shows it for a passing test.
			t.Logf("passed in the guest (%.2fs):\n%s", n.elapsed, out)
		case "skip":
			t.Skipf("skipped in the guest:\n%s", out)
		case "fail":
			t.Errorf("failed in the guest (%.2fs):\n%s", n.elapsed, out)
		default:
			t.Errorf("never finished in the guest (the suite or the guest died):\n%s", out)
		}
	})
}

// runGuest runs run-guest.sh with args; the guest's output (test2json
// events, the probe's lines) is read as it comes.
func runGuest(t *testing.T, script string, args []string, limit time.Duration) *guestRun {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	g := &guestRun{probe: map[string]string{}, root: &node{byName: map[string]*node{}}, nodes: map[string]map[string]*node{}}

	cmd := exec.CommandContext(ctx, script, args...)
	// SIGTERM lets run-guest.sh kill QEMU before it goes.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	guestOut, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	r := bufio.NewReader(guestOut)
	for {
		line, err := r.ReadString('\n')
		var ev event
		if rest, ok := strings.CutPrefix(line, probePrefix); ok {
			k, v, _ := strings.Cut(strings.TrimRight(rest, "\n"), " ")
			g.probe[k] = v
		} else if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &ev) == nil {
			g.record(t, ev)
		} else {
			g.pkg.WriteString(line)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("reading the guest's output: %v", err)
			}
			break
		}
	}
	g.exit = cmd.Wait()
	g.wall = time.Since(start)
	g.stderr = stderr.String()
	if ctx.Err() != nil {
		g.stderr += fmt.Sprintf("(run-guest.sh was stopped after %v)\n", limit)
	}
	return g
}

// record files one test2json event.
func (g *guestRun) record(t *testing.T, ev event) {
	g.last = ev.Time
	if ev.Test == "" {
		switch ev.Action {
		case "output":
			g.pkg.WriteString(ev.Output)
		case "pass", "fail", "skip":
			g.pkgEnds = append(g.pkgEnds, ev.Action)
		}
		return
	}
	if g.first.IsZero() {
		g.first = ev.Time
	}
	n := g.node(ev.Package, ev.Test)
	switch ev.Action {
	case "output":
		n.output.WriteString(ev.Output)
	case "pass", "fail", "skip":
		n.action, n.elapsed = ev.Action, ev.Elapsed
		if !strings.Contains(ev.Test, "/") {
			// Progress while the guest runs (go test -v shows it at once).
			t.Logf("guest: %s %s (%.2fs)", strings.ToUpper(ev.Action), n.name, ev.Elapsed)
		}
	}
}

// node returns the test of package pkg named name, creating it below the
// longest prefix of name that is a test already: a subtest's own name may
// hold a slash (TestBadIDs/"a/b"), and tests are always seen before their
// subtests. A top-level test of a package other than the integration
// suite's is named after its package too ("e2e/TestX").
func (g *guestRun) node(pkg, name string) *node {
	nodes := g.nodes[pkg]
	if nodes == nil {
		nodes = map[string]*node{}
		g.nodes[pkg] = nodes
	}
	if n, ok := nodes[name]; ok {
		return n
	}
	parent, base := g.root, name
	if pkg != "tests" {
		base = pkg + "/" + name
	}
	for i := strings.LastIndex(name, "/"); i > 0; i = strings.LastIndex(name[:i], "/") {
		if p, ok := nodes[name[:i]]; ok {
			parent, base = p, name[i+1:]
			break
		}
	}
	n := parent.child(base)
	nodes[name] = n
	return n
}

func goBin() string {
	if b := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(b) {
		return b
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// goCmd runs the go command in dir, failing the test on error.
func goCmd(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(goBin(), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
