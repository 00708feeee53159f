package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatepodman"
)

// podmanEnv is a podman whose whole state lives in one temp dir (see
// privatepodman).
type podmanEnv struct {
	*privatepodman.Podman
	t *testing.T
}

// newPodman sets up containers.conf/storage.conf in a temp dir and imports
// the busybox test image. runtimeBin is what podman runs as runtimeName(),
// its default runtime.
func newPodman(t *testing.T, runtimeBin string) *podmanEnv {
	t.Helper()
	dir := makeTempDir(t, "e2e-podman-")
	name := runtimeName()
	pm, err := privatepodman.Setup(dir, privatepodman.Engine{Default: name,
		Runtimes: []privatepodman.Runtime{{Name: name, Path: runtimeBin}}, SupportsJSON: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	p := &podmanEnv{Podman: pm, t: t}
	t.Cleanup(p.cleanup)

	tarball := buildRootfsTar(t, dir)
	p.must(2*time.Minute, "import", tarball, imageRef)
	return p
}

func (p *podmanEnv) run(timeout time.Duration, args ...string) (string, error) {
	p.t.Helper()
	return run(p.t, timeout, p.Env, "podman", append(append([]string{}, p.Args...), args...)...)
}

func (p *podmanEnv) must(timeout time.Duration, args ...string) string {
	p.t.Helper()
	return mustRun(p.t, timeout, p.Env, "podman", append(append([]string{}, p.Args...), args...)...)
}

func (p *podmanEnv) cleanup() {
	if out, err := p.run(time.Minute, "rm", "--force", "--all", "--time", "0"); err != nil {
		p.t.Errorf("podman rm -f -a: %v\n%s", err, out)
	}
	if out, err := p.run(time.Minute, "rmi", "--force", "--all"); err != nil {
		p.t.Logf("podman rmi -a: %v\n%s", err, out)
	}
	// The overlay driver's own mounts below p.Dir are lazily unmounted by
	// makeTempDir's cleanup. (No "podman system reset": it also touches
	// machine-wide state such as the SHM lock and network configs.)
}

// status returns the container's libpod state (running, exited, ...).
func (p *podmanEnv) status(name string) string {
	out, err := p.run(30*time.Second, "inspect", "--format", "{{.State.Status}}", name)
	if err != nil {
		return "error: " + strings.TrimSpace(out)
	}
	return strings.TrimSpace(out)
}

// id returns the container's full id.
func (p *podmanEnv) id(name string) string {
	p.t.Helper()
	return strings.TrimSpace(p.must(30*time.Second, "inspect", "--format", "{{.Id}}", name))
}

// counter returns all counter lines the container printed so far.
func (p *podmanEnv) counter(name string) []counterValue {
	out, err := p.run(30*time.Second, "logs", name)
	if err != nil {
		p.t.Fatalf("podman logs %s: %v\n%s", name, err, out)
	}
	return parseCounterLines(out)
}

func (p *podmanEnv) last(name string) (counterValue, bool) {
	vals := p.counter(name)
	if len(vals) == 0 {
		return counterValue{}, false
	}
	return vals[len(vals)-1], true
}

// waitCounter waits until the container is running and has printed a line
// with the given token (any, if empty) and n > min.
func (p *podmanEnv) waitCounter(name, token string, min int) counterValue {
	p.t.Helper()
	var v counterValue
	waitFor(p.t, 20*time.Second, fmt.Sprintf("%s to count past %d", name, min), func() (bool, string) {
		last, ok := p.last(name)
		if !ok {
			return false, "no output; status " + p.status(name)
		}
		v = last
		return (token == "" || last.token == token) && last.n > min, last.String() + "; status " + p.status(name)
	})
	if s := p.status(name); s != "running" {
		p.t.Fatalf("%s: status %q, want running", name, s)
	}
	return v
}

// checkMonotonic checks that all lines carry one token and strictly increase:
// the process was never restarted from scratch.
func checkMonotonic(t *testing.T, name string, vals []counterValue) {
	t.Helper()
	for i := 1; i < len(vals); i++ {
		if vals[i].token != vals[0].token {
			t.Fatalf("%s: line %d has token %s, first line %s: the process was restarted, not restored",
				name, i+1, vals[i], vals[0])
		}
		if vals[i].n <= vals[i-1].n {
			t.Fatalf("%s: counter went from %d to %d at line %d: restarted, not restored",
				name, vals[i-1].n, vals[i].n, i+1)
		}
	}
}

// newReportedPodman is a podman whose runtime calls (callLog) the test
// reports once it ends, in a new temporary directory named with prefix.
func newReportedPodman(t *testing.T, prefix string) (p *podmanEnv, dir, callLog string) {
	t.Helper()
	dir = makeTempDir(t, prefix)
	var wrapper string
	wrapper, callLog = writeRuntimeWrapper(t, dir)
	// Registered before newPodman's cleanups, so it runs after them and
	// also reports the calls made by "podman rm -f".
	t.Cleanup(func() {
		if p != nil {
			reportRuntimeCalls(t, callLog, map[string]string{p.Dir: "<PODMAN>", dir: "<TMP>"})
		}
	})
	p = newPodman(t, wrapper)
	return p, dir, callLog
}

func TestPodmanCheckpointRestore(t *testing.T) {
	requireE2E(t)
	start := time.Now()
	p, dir, callLog := newReportedPodman(t, "e2e-podman-rt-")

	const name = "counter"
	p.must(time.Minute, "run", "--detach", "--name", name, "--runtime", runtimeName(),
		imageRef, "sh", "-c", counterScript("/tmp/counter"))
	before := p.waitCounter(name, "", 5)
	t.Logf("counting: %s", before)

	// Checkpoint: the container stops, its counter freezes.
	p.must(2*time.Minute, "container", "checkpoint", name)
	if s := p.status(name); s != "exited" {
		t.Fatalf("after checkpoint: status %q, want exited", s)
	}
	frozen, _ := p.last(name)
	time.Sleep(500 * time.Millisecond)
	if again, _ := p.last(name); again != frozen {
		t.Fatalf("counter moved after checkpoint: %s -> %s", frozen, again)
	}
	t.Logf("checkpointed at %s", frozen)

	// Restore: same process (same token) continues from where it was.
	p.must(2*time.Minute, "container", "restore", name)
	after := p.waitCounter(name, frozen.token, frozen.n+3)
	checkMonotonic(t, name, p.counter(name))
	t.Logf("restored and continued: %s -> %s", frozen, after)

	// Export a checkpoint, leaving the container running, and restore a copy.
	export := filepath.Join(dir, "checkpoint.tar.gz")
	p.must(2*time.Minute, "container", "checkpoint", "--leave-running", "--export", export, name)
	exported, _ := p.last(name)
	if fi, err := os.Stat(export); err != nil || fi.Size() == 0 {
		t.Fatalf("exported checkpoint %s missing or empty: %v", export, err)
	}
	p.waitCounter(name, frozen.token, exported.n+3) // original still running and counting

	const other = "other"
	p.must(2*time.Minute, "container", "restore", "--import", export, "--name", other)
	// The copy has the original's token and continues from the export point.
	// (Its log starts with a copy of the original's log, taken just after
	// the dump, so a line or two may repeat: no monotonicity check here; a
	// restart from scratch would show up as a new token.)
	copied := p.waitCounter(other, frozen.token, exported.n+3)
	orig := p.waitCounter(name, frozen.token, copied.n)
	if s := p.status(name); s != "running" {
		t.Fatalf("original %s: status %q after restoring the copy", name, s)
	}
	t.Logf("both running: %s=%s %s=%s", name, orig, other, copied)

	// podman and conmon asked the runtime under test for every
	// checkpoint and restore (podman 4.3 repeats --leave-running).
	id, otherID := p.id(name), p.id(other)
	restoreFlags := []string{"--bundle", "--pid-file", "--detach", "--image-path", "--work-path"}
	requireServed(t, callLog, "podman", "checkpoint", id, "--image-path", "--work-path")
	requireServed(t, callLog, "conmon", "restore", id, restoreFlags...)
	requireServed(t, callLog, "podman", "checkpoint", id, "--image-path", "--work-path", "--leave-running", "--leave-running")
	requireServed(t, callLog, "conmon", "restore", otherID, restoreFlags...)
	t.Logf("podman checkpoint/restore test took %.1fs", time.Since(start).Seconds())
}
