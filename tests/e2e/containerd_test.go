package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// containerdEnv is a private containerd daemon whose root, state, sockets
// and temp files all live in one temp dir.
type containerdEnv struct {
	t   *testing.T
	dir string
	ns  string
	ctr []string // ctr global args
	cmd *exec.Cmd
	// The directories of /run/containerd this test's containerd makes
	// wherever its state is (its shims' sockets and fifos, runc's root),
	// innermost first: removed at the end if they are empty.
	madeRunDirs []string
}

// containerdRunDirs are the directories containerd 1.6 and its shims make
// under /run/containerd whatever its state directory, innermost first.
var containerdRunDirs = []string{"/run/containerd/fifo", "/run/containerd/s", "/run/containerd/runc", "/run/containerd"}

func startContainerd(t *testing.T) *containerdEnv {
	t.Helper()
	dir := makeTempDir(t, "e2e-containerd-")
	c := &containerdEnv{t: t, dir: dir, ns: fmt.Sprintf("e2e-%d", os.Getpid())}
	for _, d := range containerdRunDirs {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			c.madeRunDirs = append(c.madeRunDirs, d)
		}
	}
	sock := filepath.Join(dir, "containerd.sock")
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	// CRI is disabled: it wants CNI and is not what we test. Cgroup v1
	// (hybrid) needs nothing special; the overlayfs snapshotter works on
	// this kernel (native is the fallback).
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = ""

[metrics]
  address = ""
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc")
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command("containerd", "--config", confPath)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Shims inherit this environment: keep their checkpoint temp dirs here.
	c.cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { c.stop(exited) })

	c.ctr = []string{"--address", sock, "--namespace", c.ns}
	waitFor(t, 30*time.Second, "containerd to listen on "+sock, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd exited: %v\n%s", err, tail(string(log), 30))
		default:
		}
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	})
	return c
}

func (c *containerdEnv) run(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	return run(c.t, timeout, nil, "ctr", append(append([]string{}, c.ctr...), args...)...)
}

func (c *containerdEnv) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return mustRun(c.t, timeout, nil, "ctr", append(append([]string{}, c.ctr...), args...)...)
}

// removeContainer kills and deletes the task and deletes the container.
func (c *containerdEnv) removeContainer(id string) {
	c.t.Helper()
	if out, err := c.run(30*time.Second, "task", "kill", "--signal", "SIGKILL", id); err == nil {
		waitFor(c.t, 20*time.Second, "task "+id+" to stop", func() (bool, string) {
			st := c.taskStatus(id)
			return st == "STOPPED" || st == "", st
		})
	} else {
		c.t.Logf("ctr task kill %s: %v: %s", id, err, strings.TrimSpace(out))
	}
	c.run(30*time.Second, "task", "delete", id)
	c.run(30*time.Second, "container", "delete", id)
}

// taskStatus returns the task's status column from "ctr task ls" ("" if none).
func (c *containerdEnv) taskStatus(id string) string {
	out, err := c.run(30*time.Second, "task", "ls")
	if err != nil {
		return "error: " + out
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

// readCounter reads the counter file inside the running container.
func (c *containerdEnv) readCounter(id, file string, seq *int) (counterValue, error) {
	*seq++
	out, err := c.run(30*time.Second, "task", "exec", "--exec-id", fmt.Sprintf("read%d", *seq), id, "cat", file)
	if err != nil {
		return counterValue{}, fmt.Errorf("%v: %s", err, out)
	}
	vals := parseCounterLines(out)
	if len(vals) != 1 {
		return counterValue{}, fmt.Errorf("unexpected counter file content %q", out)
	}
	return vals[0], nil
}

func (c *containerdEnv) stop(exited chan error) {
	t := c.t
	// Remove whatever is left in our namespace.
	if out, err := c.run(30*time.Second, "task", "ls", "--quiet"); err == nil {
		for _, id := range strings.Fields(out) {
			c.removeContainer(id)
		}
	}
	if out, err := c.run(30*time.Second, "container", "ls", "--quiet"); err == nil {
		for _, id := range strings.Fields(out) {
			c.run(30*time.Second, "container", "delete", id)
		}
	}
	if out, err := c.run(30*time.Second, "image", "ls", "--quiet"); err == nil {
		for _, ref := range strings.Fields(out) {
			c.run(30*time.Second, "image", "remove", ref)
		}
	}
	c.run(30*time.Second, "namespace", "remove", c.ns)
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Errorf("containerd did not exit on SIGTERM; killing it")
		c.cmd.Process.Kill()
		<-exited
	}
	// The runc shim keeps the runtime's --root in /run/containerd/runc/<ns>.
	os.RemoveAll(filepath.Join("/run/containerd/runc", c.ns))
	for _, d := range c.madeRunDirs {
		os.Remove(d) // only if empty: another containerd may use it
	}
	// And the shim's (now empty) per-namespace cgroups.
	if dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", c.ns)); dirs != nil {
		for _, d := range dirs {
			os.Remove(d)
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestContainerdCheckpointRestore(t *testing.T) {
	requireE2E(t)
	start := time.Now()
	dir := makeTempDir(t, "e2e-containerd-rt-")
	wrapper, callLog := writeRuntimeWrapper(t, dir)

	// Image: built by podman, moved over as an OCI archive.
	p := newPodman(t, wrapper)
	archive := filepath.Join(dir, "image.tar")
	p.must(2*time.Minute, "save", "--format", "oci-archive", "--output", archive, imageRef)

	var c *containerdEnv
	t.Cleanup(func() {
		repl := map[string]string{dir: "<TMP>"}
		if c != nil {
			repl[c.dir] = "<CONTAINERD>"
			repl[c.ns] = "<NS>"
		}
		reportRuntimeCalls(t, callLog, repl)
	})
	c = startContainerd(t)
	c.must(2*time.Minute, "image", "import", "--base-name", strings.TrimSuffix(imageRef, ":latest"), archive)
	if out := c.must(30*time.Second, "image", "ls", "--quiet"); !strings.Contains(out, imageRef) {
		t.Fatalf("image %s not imported; images:\n%s", imageRef, out)
	}

	const id = "counter"
	const file = "/counter"
	c.must(time.Minute, "run", "--detach", "--runc-binary", wrapper, imageRef, id, "sh", "-c", counterScript(file))
	seq := 0
	var before counterValue
	waitFor(t, 20*time.Second, "the counter to pass 5", func() (bool, string) {
		v, err := c.readCounter(id, file, &seq)
		if err != nil {
			return false, err.Error()
		}
		before = v
		return v.n > 5, v.String()
	})
	t.Logf("counting: %s", before)

	const ref = "localhost/e2e-checkpoint:latest"
	c.must(2*time.Minute, "container", "checkpoint", "--task", "--image", "--rw", id, ref)
	c.removeContainer(id)
	if st := c.taskStatus(id); st != "" {
		t.Fatalf("task %s still listed (%s) after delete", id, st)
	}

	c.must(2*time.Minute, "container", "restore", "--live", "--rw", id, ref)
	if st := c.taskStatus(id); st != "RUNNING" {
		t.Fatalf("restored task status %q, want RUNNING", st)
	}
	var after counterValue
	waitFor(t, 20*time.Second, "the restored counter to advance", func() (bool, string) {
		v, err := c.readCounter(id, file, &seq)
		if err != nil {
			return false, err.Error()
		}
		after = v
		if v.token != before.token {
			t.Fatalf("restored counter %s has a new token (before %s): the process was restarted, not restored", v, before)
		}
		return v.n > before.n+3, v.String()
	})
	t.Logf("restored and continued: %s -> %s", before, after)
	// ctr asked the runtime under test (not Debian's runc) for both.
	requireServed(t, callLog, "containerd-shim", "checkpoint", id, "--image-path", "--work-path", "--file-locks", "--leave-running")
	requireServed(t, callLog, "containerd-shim", "restore", id,
		"--image-path", "--work-path", "--detach", "--pid-file", "-no-subreaper", "--bundle")
	c.removeContainer(id)
	t.Logf("containerd checkpoint/restore test took %.1fs", time.Since(start).Seconds())
}
