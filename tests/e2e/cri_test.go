package e2e

// The Kubernetes path: a private containerd 2.x with its CRI plugin drives
// the runtime through its runc shim, and crictl plays the kubelet. Pods use
// the host's network (no CNI) and local images only (no registry).

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/leftovers"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/ociarchive"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatecri"
)

const (
	criPauseImage   = "localhost/e2e-pause:latest"
	criCounterImage = "localhost/e2e-counter:latest"
	criCounterFile  = "/counter"
)

// criBinDir holds containerd 2.x, its runc shim, ctr and crictl, as
// scripts/install-cri-tools.sh builds them.
func criBinDir() string {
	if d := os.Getenv("E2E_CRI_BIN_DIR"); d != "" {
		return d
	}
	return privatecri.DefaultBinDir
}

// criEnv is a private containerd with CRI in a temp dir (see privatecri),
// all its pods' cgroups under one parent of their own.
type criEnv struct {
	*privatecri.Daemon
	t        *testing.T
	rtRoot   string // the runc shim's Root: the runtime runs with --root <rtRoot>/k8s.io
	cgParent string // cgroup parent of every pod
	callLog  string
	ids      []string // every pod and container id: shims are named after them
}

// startCRI starts containerd with CRI, its runc handler running the
// runtime under test through the recording wrapper, and imports the pause
// and counter images.
func startCRI(t *testing.T) *criEnv {
	t.Helper()
	dir := makeTempDir(t, "e2e-cri-")
	wrapper, callLog := writeRuntimeWrapper(t, dir)
	c := &criEnv{
		t: t, rtRoot: filepath.Join(dir, "rt"),
		cgParent: fmt.Sprintf("/criu-ns-e2e-cri-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000),
		callLog:  callLog,
	}
	d, err := privatecri.New(privatecri.Config{Dir: dir, BinDir: criBinDir(), PauseImage: criPauseImage,
		Handlers: []privatecri.Handler{{Name: "runc", Binary: wrapper, Root: c.rtRoot}}})
	if err != nil {
		t.Fatal(err)
	}
	c.Daemon = d
	if err := c.Start("--log-level", "debug"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	waitFor(t, 30*time.Second, "containerd to listen on "+c.Sock, func() (bool, string) {
		if exited, err := c.Exited(); exited {
			t.Fatalf("containerd exited: %v\n%s", err, tail(c.Log(), 30))
		}
		conn, err := net.Dial("unix", c.Sock)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	})
	waitFor(t, 30*time.Second, "CRI to answer", func() (bool, string) {
		out, err := c.crictl(30*time.Second, "info")
		return err == nil, out
	})

	rootfs := buildRootfsTar(t, dir)
	archive, err := ociarchive.Write(dir, rootfs, []ociarchive.Image{
		// The pod's pause: a shell sleeping in a loop, forking a sleep a second.
		{Name: criPauseImage, Entrypoint: []string{"/bin/sh", "-c", "while :; do sleep 1; done"}},
		{Name: criCounterImage, Cmd: []string{"/bin/sh"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ImportImages(archive, 2*time.Minute, criPauseImage, criCounterImage); err != nil {
		t.Fatalf("%v\ncontainerd log:\n%s", err, tail(c.Log(), 40))
	}
	return c
}

// crictl runs crictl against this daemon.
func (c *criEnv) crictl(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	return run(c.t, timeout, nil, c.Tool("crictl"), append([]string{"--config", c.CrictlConfig}, args...)...)
}

// must runs crictl and fails the test on error.
func (c *criEnv) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.crictl(timeout, args...)
	if err != nil {
		c.t.Fatalf("crictl %s: %v\n%s\ncontainerd log:\n%s", strings.Join(args, " "), err, out, tail(c.Log(), 40))
	}
	return strings.TrimSpace(out)
}

// writeJSON writes v as a config file for crictl and returns its path.
func (c *criEnv) writeJSON(name string, v any) string {
	c.t.Helper()
	path := filepath.Join(c.Dir, name)
	if err := os.WriteFile(path, mustJSON(c.t, v), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// criPod is a running pod sandbox.
type criPod struct {
	id     string
	config string                   // path of its PodSandboxConfig
	pid    privatecri.NamespaceMode // its containers' pid namespace mode
}

// runPod starts a host-network pod whose pid namespace mode is pid.
func (c *criEnv) runPod(name string, pid privatecri.NamespaceMode) criPod {
	c.t.Helper()
	cfg := c.PodConfig(name, "e2e", c.cgParent, pid)
	path := c.writeJSON(fmt.Sprintf("pod-%s.json", name), cfg)
	id := c.must(2*time.Minute, "runp", path)
	c.ids = append(c.ids, id)
	return criPod{id: id, config: path, pid: pid}
}

// createContainer creates a container in pod from image (an image name or
// a checkpoint archive) and returns its id. args empty: the image's own.
func (c *criEnv) createContainer(pod criPod, name, image string, args ...string) string {
	c.t.Helper()
	cfg := privatecri.ContainerConfig(name, image, pod.pid, args...)
	path := c.writeJSON(fmt.Sprintf("ctr-%s-%s.json", pod.id[:12], name), cfg)
	id := c.must(2*time.Minute, "create", "--no-pull", pod.id, path, pod.config)
	c.ids = append(c.ids, id)
	return id
}

// runCounter creates and starts a counter container in pod.
func (c *criEnv) runCounter(pod criPod, name string) string {
	c.t.Helper()
	id := c.createContainer(pod, name, criCounterImage, "/bin/sh", "-c", counterScript(criCounterFile))
	c.must(time.Minute, "start", id)
	return id
}

// restore creates a container in pod from a checkpoint archive and starts it.
func (c *criEnv) restore(pod criPod, name, archive string) string {
	c.t.Helper()
	id := c.createContainer(pod, name, archive)
	c.must(2*time.Minute, "start", id)
	return id
}

// counter reads the counter file inside a running container (exec).
func (c *criEnv) counter(id string) (counterValue, error) {
	c.t.Helper()
	out, err := c.crictl(30*time.Second, "exec", id, "cat", criCounterFile)
	if err != nil {
		return counterValue{}, fmt.Errorf("%v: %s", err, strings.TrimSpace(out))
	}
	vals := parseCounterLines(out)
	if len(vals) != 1 {
		return counterValue{}, fmt.Errorf("counter file holds %q", out)
	}
	return vals[0], nil
}

// waitCounter waits until container id counts past min with token (any,
// if empty); a different token fails at once: a restart, not a restore.
func (c *criEnv) waitCounter(id, token string, min int) counterValue {
	c.t.Helper()
	var v counterValue
	waitFor(c.t, 30*time.Second, fmt.Sprintf("%s to count past %d", id[:12], min), func() (bool, string) {
		got, err := c.counter(id)
		if err != nil {
			return false, err.Error()
		}
		if token != "" && got.token != token {
			c.t.Fatalf("container %s counts with token %s, want %s: it started afresh instead of being restored", id[:12], got, token)
		}
		v = got
		return got.n > min, got.String()
	})
	return v
}

// inspect returns crictl inspect's info.pid (the container's host pid)
// and status.state.
func (c *criEnv) inspect(id string) (pid int, state string) {
	c.t.Helper()
	var info struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	out := c.must(30*time.Second, "inspect", "--output", "json", id)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		c.t.Fatalf("crictl inspect %s: %v\n%s", id, err, out)
	}
	return info.Info.Pid, info.Status.State
}

// removePod stops and removes a pod with its containers.
func (c *criEnv) removePod(pod criPod) {
	c.t.Helper()
	c.must(2*time.Minute, "stopp", pod.id)
	c.must(2*time.Minute, "rmp", pod.id)
}

// stop removes every pod, stops containerd and checks that nothing it or
// the runtime made is left: no process, mount, cgroup or file.
func (c *criEnv) stop() {
	t := c.t
	if out, err := c.crictl(time.Minute, "pods", "--quiet"); err == nil {
		for _, id := range strings.Fields(out) {
			if out, err := c.crictl(2*time.Minute, "stopp", id); err != nil {
				t.Errorf("teardown: crictl stopp %s: %v\n%s", id, err, out)
			}
			if out, err := c.crictl(2*time.Minute, "rmp", "--force", id); err != nil {
				t.Errorf("teardown: crictl rmp %s: %v\n%s", id, err, out)
			}
		}
	} else {
		t.Errorf("teardown: crictl pods: %v\n%s", err, out)
	}
	// Images: removing them through CRI lets containerd drop their
	// snapshots (and overlay mounts) itself.
	if out, err := c.crictl(time.Minute, "images", "--quiet"); err == nil {
		for _, id := range strings.Fields(out) {
			c.crictl(time.Minute, "rmi", id)
		}
	}
	if err := c.Stop(30 * time.Second); err != nil {
		t.Errorf("%v", err)
	}
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", tail(c.Log(), 60))
	}
	c.checkLeftovers()
	reportRuntimeCalls(t, c.callLog, map[string]string{c.Dir: "<CRI>"})
	if strings.Contains(c.Log(), "failed to kill init's children") {
		t.Errorf("the shim could not kill a container's remaining processes (containerd log: \"failed to kill init's children\")")
	}
}

// checkLeftovers fails the test for any process, mount, cgroup or file the
// daemon, its shims or the runtime left behind, and removes them.
func (c *criEnv) checkLeftovers() {
	t := c.t
	// Processes: shims name our socket; containers sit in our cgroups.
	for pid, cmdline := range leftovers.Processes(c.Dir, c.cgParent) {
		t.Errorf("teardown left process %d (%s) running", pid, cmdline)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Mounts below our dir (snapshots, shm, rootfs).
	for _, m := range leftovers.Mounts(c.Dir) {
		t.Errorf("teardown left mount %s", m)
	}
	// The pods' cgroup parent must be gone or empty in every hierarchy
	// (nobody else removes it, so we do); and what the shims and the
	// runtime leave outside c.Dir: the shims' sockets, containerd's
	// /k8s.io cgroup parent, the runtime's state below c.rtRoot.
	for _, l := range append(leftovers.RemoveCgroupParent(c.cgParent), c.Cleanup(c.ids)...) {
		t.Errorf("teardown left %s", l)
	}
	// Nor a container's cgroup anywhere else.
	for _, id := range c.ids {
		for _, pattern := range []string{"/sys/fs/cgroup/*/" + id, "/sys/fs/cgroup/*/*/" + id, "/sys/fs/cgroup/*/*/*/" + id} {
			left, _ := filepath.Glob(pattern)
			for _, l := range left {
				t.Errorf("teardown left cgroup %s", l)
			}
		}
	}
}

// criCheckpoint checkpoints container id through CRI into an archive and
// checks that it keeps running and counting (CRI dumps with --leave-running).
func (c *criEnv) checkpoint(id, name string) (string, counterValue) {
	c.t.Helper()
	before := c.waitCounter(id, "", 5)
	archive := filepath.Join(c.Dir, name)
	c.must(2*time.Minute, "checkpoint", "--export="+archive, id)
	if fi, err := os.Stat(archive); err != nil || fi.Size() == 0 {
		c.t.Fatalf("checkpoint archive %s missing or empty: %v", archive, err)
	}
	c.waitCounter(id, before.token, before.n+3)
	return archive, before
}

// podPid is the host pid of the pod's pause process.
func (c *criEnv) podPid(pod criPod) int {
	c.t.Helper()
	var info struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	out := c.must(30*time.Second, "inspectp", "--output", "json", pod.id)
	if err := json.Unmarshal([]byte(out), &info); err != nil || info.Info.Pid <= 0 {
		c.t.Fatalf("crictl inspectp %s: no pid (%v)\n%s", pod.id, err, out)
	}
	return info.Info.Pid
}

// Where a container's processes live, relative to its pod's pid namespace.
const (
	pidnsOwn    = "its own pid namespace"
	pidnsPod    = "the pod's pid namespace"
	pidnsNested = "a pid namespace nested in the pod's"
)

// pidNamespaceOf says where container id's root process lives, relative
// to pod's pid namespace, and returns the root's host pid.
func (c *criEnv) pidNamespaceOf(id string, pod criPod) (string, int) {
	c.t.Helper()
	root, state := c.inspect(id)
	if state != "CONTAINER_RUNNING" || root <= 0 {
		c.t.Fatalf("container %s: state %s, pid %d; want it running", id[:12], state, root)
	}
	podNs := nsInode(c.t, fmt.Sprintf("/proc/%d/ns/pid", c.podPid(pod)))
	rootNs := fmt.Sprintf("/proc/%d/ns/pid", root)
	switch {
	case nsInode(c.t, rootNs) == podNs:
		return pidnsPod, root
	case nsParentInode(c.t, rootNs) == podNs:
		return pidnsNested, root
	}
	return pidnsOwn, root
}

// nsInode is the inode of a namespace file.
func nsInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Ino
}

// nsGetParent is NS_GET_PARENT, _IO(0xb7, 0x2), from linux/nsfs.h.
const nsGetParent = 0xb702

// nsParentInode is the inode of the parent of the pid namespace at path
// (0 if it has none we may see).
func nsParentInode(t *testing.T, path string) uint64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd, err := unix.IoctlRetInt(int(f.Fd()), nsGetParent)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	return fields
}

// nsPid is pid's pid in its own (innermost) pid namespace.
func nsPid(t *testing.T, pid int) int {
	t.Helper()
	f := strings.Fields(procStatus(t, pid)["NSpid"])
	n, err := strconv.Atoi(f[len(f)-1])
	if err != nil {
		t.Fatalf("process %d: NSpid %q", pid, f)
	}
	return n
}

// TestCRICheckpointRestore is the Kubernetes checkpoint path: a counter
// runs in a pod, `crictl checkpoint --export` dumps it (it keeps running),
// and `crictl create` in a second pod with the archive as its image,
// then `crictl start`, restores it: the same process counts on. Both pid
// modes: the container's own pid namespace, and the pod's shared one.
// The wrapper's record shows the runtime under test served both steps.
func TestCRICheckpointRestore(t *testing.T) {
	requireE2E(t)
	for _, mode := range []struct {
		name string
		pid  privatecri.NamespaceMode
	}{{"pid=CONTAINER", privatecri.NamespaceContainer}, {"pid=POD", privatecri.NamespacePod}} {
		t.Run(mode.name, func(t *testing.T) {
			start := time.Now()
			c := startCRI(t)
			a := c.runPod("a", mode.pid)
			orig := c.runCounter(a, "counter")
			origPid, _ := c.inspect(orig)
			ck, before := c.checkpoint(orig, "ck.tar")

			b := c.runPod("b", mode.pid)
			restored := c.restore(b, "counter", ck)
			after := c.waitCounter(restored, before.token, before.n+3)
			c.waitCounter(orig, before.token, after.n) // the original counts on too
			where, root := c.pidNamespaceOf(restored, b)
			switch {
			case mode.pid == privatecri.NamespaceContainer && where != pidnsOwn:
				t.Fatalf("restored container lives in %s, want %s", where, pidnsOwn)
			case mode.pid == privatecri.NamespacePod && where == pidnsOwn:
				t.Fatalf("restored container lives in %s, want the pod's or one nested in it", where)
			}
			if got, want := nsPid(t, root), nsPid(t, origPid); got != want {
				t.Fatalf("restored root has pid %d in %s, the original had %d", got, where, want)
			}
			t.Logf("restored in %s, root pid %d there as before: %s -> %s", where, nsPid(t, root), before, after)

			requireServed(t, c.callLog, "containerd-shim", "checkpoint", orig, "--image-path", "--work-path", "--leave-running")
			requireServed(t, c.callLog, "containerd-shim", "restore", restored,
				"--image-path", "--work-path", "--detach", "--pid-file", "-no-subreaper", "--bundle")
			c.removePod(b)
			c.removePod(a)
			t.Logf("CRI checkpoint/restore (%s) took %.1fs", mode.name, time.Since(start).Seconds())
		})
	}
}
