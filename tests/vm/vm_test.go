// Package vm runs the integration suite (./tests) in a QEMU guest that has
// Debian 12's own kernel (6.1, cgroup v2, soft-dirty tracking), a second
// kernel besides the host's. scripts/vm/run-guest.sh boots the guest; each
// test of the guest becomes a subtest here, passing, failing or skipping as
// it did there.
//
// The test binary, the workload and the runtime are built on the host
// (compiling under TCG is slow); the guest sees them, and CRIU, through its
// 9p view of the host's "/". It needs root, like the suite itself, and what
// scripts/install-vm-deps.sh installs: a missing tool fails the test.
//
//	CRIU_NS_RUNTIME=/path/to/criu-ns-runtime  test this binary instead of
//	                                          building one
//	VM_TEST_RUN=REGEXP                        run only the guest's tests
//	                                          that match (-test.run)
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
	"sync"
	"syscall"
	"testing"
	"time"
)

// probePrefix marks the lines the guest prints about itself before the
// suite starts.
const probePrefix = "cnr-vm-probe: "

// guestScript runs in the guest: it describes the guest, then becomes the
// test binary ("$@").
const guestScript = `
p='` + probePrefix + `'
echo "${p}kernel $(uname -r)"
echo "${p}cgroupfs $(stat -fc %T /sys/fs/cgroup)"
if out=$(criu check --feature mem_dirty_track 2>&1); then
	echo "${p}mem_dirty_track ok"
else
	echo "${p}mem_dirty_track failed: $(echo "$out" | tr '\n' ' ')"
fi
exec "$@"
`

// event is one line of `go tool test2json`.
type event struct {
	Time    time.Time
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

// node is one test of the guest, with its subtests.
type node struct {
	name     string
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
	probe  map[string]string // probe lines: first word -> the rest
	root   *node             // its children are the guest's top-level tests
	nodes  map[string]*node  // every test by its full name
	pkg    strings.Builder   // output outside any test (TestMain, summary)
	pkgEnd string            // the package's final action
	first  time.Time         // the first test's start, as test2json saw it
	last   time.Time         // the last event
	exit   error             // run-guest.sh's exit
	stderr string            // run-guest.sh's own messages
	wall   time.Duration
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
	args := []string{
		"-t", fmt.Sprint(int(timeout.Seconds())),
		// As under go test, the suite runs in its package's directory: the
		// RPC tests' clients (rpcclients/) are found from there.
		"-C", filepath.Join(repo, "tests"),
		"-e", "CRIU_NS_RUNTIME=" + runtimeBin,
		"-e", "CRIU_NS_RUNTIME_FAULTINJECT=" + faultBin,
		"-e", "CRIU_NS_WORKLOAD=" + workload,
		// The suite's --roots need a tmpfs: mkfifo fails on 9p.
		"-e", "CRIU_NS_TEST_TMPDIR=/tmp",
		// TCG is about 7 times slower than the host: the suite's bounds
		// on waits grow to match.
		"-e", "CRIU_NS_TEST_SLOWDOWN=8",
		"--", "bash", "-c", guestScript, "guest",
		testBin, "-test.v=test2json", "-test.count=1", "-test.timeout=" + (timeout - 2*time.Minute).String(),
	}
	if re := os.Getenv("VM_TEST_RUN"); re != "" {
		args = append(args, "-test.run="+re)
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

	// Whatever no guest test accounts for: the suite dying in TestMain, a
	// panic or timeout of the test binary, or the guest itself failing.
	switch {
	case len(g.root.children) == 0:
		t.Errorf("the guest ran no test (run-guest.sh: %v); its output:\n%s", g.exit, g.pkg.String())
	case fail == 0 && (g.pkgEnd != "pass" || g.exit != nil):
		t.Errorf("the guest's suite ended with %q (run-guest.sh: %v) although no test failed; its output:\n%s",
			g.pkgEnd, g.exit, g.pkg.String())
	}
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
			t.Logf("passed in the guest (%.2fs)", n.elapsed)
		case "skip":
			t.Skipf("skipped in the guest:\n%s", out)
		case "fail":
			t.Errorf("failed in the guest (%.2fs):\n%s", n.elapsed, out)
		default:
			t.Errorf("never finished in the guest (the suite or the guest died):\n%s", out)
		}
	})
}

// runGuest runs run-guest.sh with args; the guest's output goes through
// test2json as it comes.
func runGuest(t *testing.T, script string, args []string, limit time.Duration) *guestRun {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	g := &guestRun{probe: map[string]string{}, root: &node{byName: map[string]*node{}}, nodes: map[string]*node{}}

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

	conv := exec.Command(goBin(), "tool", "test2json", "-t", "-p", "tests")
	convIn, err := conv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	convOut, err := conv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var convErr bytes.Buffer
	conv.Stderr = &convErr
	if err := conv.Start(); err != nil {
		t.Fatalf("go tool test2json: %v", err)
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		conv.Process.Kill()
		t.Fatalf("%s: %v", script, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // guest lines: probe lines here, the rest to test2json
		defer wg.Done()
		defer convIn.Close()
		r := bufio.NewReader(guestOut)
		for {
			line, err := r.ReadString('\n')
			if rest, ok := strings.CutPrefix(line, probePrefix); ok {
				k, v, _ := strings.Cut(strings.TrimRight(rest, "\n"), " ")
				g.probe[k] = v
			} else if line != "" {
				io.WriteString(convIn, line)
			}
			if err != nil {
				return
			}
		}
	}()
	dec := json.NewDecoder(convOut)
	for {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("reading test2json's output: %v", err)
			}
			break
		}
		g.record(t, ev)
	}
	wg.Wait()
	g.exit = cmd.Wait()
	g.wall = time.Since(start)
	if err := conv.Wait(); err != nil {
		t.Errorf("go tool test2json: %v: %s", err, convErr.String())
	}
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
			g.pkgEnd = ev.Action
		}
		return
	}
	if g.first.IsZero() {
		g.first = ev.Time
	}
	n := g.node(ev.Test)
	switch ev.Action {
	case "output":
		n.output.WriteString(ev.Output)
	case "pass", "fail", "skip":
		n.action, n.elapsed = ev.Action, ev.Elapsed
		if !strings.Contains(ev.Test, "/") {
			// Progress while the guest runs (go test -v shows it at once).
			t.Logf("guest: %s %s (%.2fs)", strings.ToUpper(ev.Action), ev.Test, ev.Elapsed)
		}
	}
}

// node returns the test named name, creating it below the longest prefix
// of name that is a test already: a subtest's own name may hold a slash
// (TestBadIDs/"a/b"), and tests are always seen before their subtests.
func (g *guestRun) node(name string) *node {
	if n, ok := g.nodes[name]; ok {
		return n
	}
	parent, base := g.root, name
	for i := strings.LastIndex(name, "/"); i > 0; i = strings.LastIndex(name[:i], "/") {
		if p, ok := g.nodes[name[:i]]; ok {
			parent, base = p, name[i+1:]
			break
		}
	}
	n := parent.child(base)
	g.nodes[name] = n
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
