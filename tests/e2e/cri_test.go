package e2e

// The Kubernetes path: a private containerd 2.x with its CRI plugin drives
// the runtime through its runc shim, and crictl plays the kubelet. Pods use
// the host's network (no CNI) and local images only (no registry).

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	defaultCRIBinDir = "/var/cache/criu-ns-runtime/cri-containerd-v2.3.7-crictl-v1.34.0/bin"
	criContainerdVer = "2.3.7"
	criCrictlVer     = "v1.34.0"
	criPauseImage    = "localhost/e2e-pause:latest"
	criCounterImage  = "localhost/e2e-counter:latest"
	criNamespace     = "k8s.io" // containerd namespace of CRI objects
	criCounterFile   = "/counter"
)

// CRI's NamespaceMode.
const (
	nsPod       = 0 // shared by the pod's containers
	nsContainer = 1 // the container's own
	nsNode      = 2 // the host's
)

// criBinDir holds containerd 2.x, its runc shim, ctr and crictl, as
// scripts/install-cri-tools.sh builds them.
func criBinDir() string {
	if d := os.Getenv("E2E_CRI_BIN_DIR"); d != "" {
		return d
	}
	return defaultCRIBinDir
}

func criTool(name string) string { return filepath.Join(criBinDir(), name) }

// missingCRITools lists the CRI tools that are absent or of another version.
func missingCRITools() []string {
	var missing []string
	for _, tool := range []struct{ name, arg, want string }{
		{"containerd", "--version", " " + criContainerdVer + " "},
		{"containerd-shim-runc-v2", "-v", criContainerdVer},
		{"ctr", "--version", criContainerdVer},
		{"crictl", "--version", criCrictlVer},
	} {
		out, err := exec.Command(criTool(tool.name), tool.arg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), tool.want) {
			missing = append(missing, fmt.Sprintf("%s %s in %s", tool.name, strings.TrimSpace(tool.want), criBinDir()))
		}
	}
	return missing
}

// criEnv is a private containerd with CRI: its root, state, sockets, temp
// files, runtime root, pod logs and CNI dirs live in one temp dir, and all
// its pods' cgroups under one parent of their own.
type criEnv struct {
	t        *testing.T
	dir      string
	sock     string
	crictlY  string // crictl's config file
	rtRoot   string // the runc shim's Root: the runtime runs with --root <rtRoot>/k8s.io
	cgParent string // cgroup parent of every pod
	callLog  string
	cmd      *exec.Cmd
	exited   chan error
	pods     int
	ids      []string // every pod and container id: shims are named after them
	// state dirs of shims that did not exist before this daemon started
	newDirs []string
	// containerd's default cgroup parents that did not exist before
	newK8s []string
}

// cgroupHierarchies are the cgroup v1 hierarchies and the v2 root.
func cgroupHierarchies() []string {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	var dirs []string
	for _, h := range hs {
		if fi, err := os.Stat(h); err == nil && fi.IsDir() {
			dirs = append(dirs, h)
		}
	}
	return append(dirs, "/sys/fs/cgroup")
}

// startCRI starts containerd with CRI, its runc handler running the
// runtime under test through the recording wrapper, and imports the pause
// and counter images.
func startCRI(t *testing.T) *criEnv {
	t.Helper()
	dir := makeTempDir(t, "e2e-cri-")
	wrapper, callLog := writeRuntimeWrapper(t, dir)
	c := &criEnv{
		t: t, dir: dir, sock: filepath.Join(dir, "containerd.sock"),
		crictlY: filepath.Join(dir, "crictl.yaml"), rtRoot: filepath.Join(dir, "rt"),
		cgParent: fmt.Sprintf("/criu-ns-e2e-cri-%d-%d", os.Getpid(), time.Now().UnixNano()%1000000),
		callLog:  callLog,
	}
	for _, d := range []string{"/run/containerd/s", "/run/containerd"} {
		if _, err := os.Stat(d); err != nil {
			c.newDirs = append(c.newDirs, d)
		}
	}
	for _, h := range cgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, "k8s.io")); err != nil {
			c.newK8s = append(c.newK8s, filepath.Join(h, "k8s.io"))
		}
	}
	for _, d := range []string{"tmp", "opt", "cni/bin", "cni/conf", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`version = 3
root = %[1]q
state = %[2]q
temp = %[3]q
# NRI would listen on /var/run/nri/nri.sock, shared with any other containerd.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = %[4]q

[ttrpc]
  address = "%[4]s.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins.'io.containerd.internal.v1.opt']
  path = %[5]q

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = %[6]q

[plugins.'io.containerd.cri.v1.runtime']
  enable_criu = true
  enable_experimental_restore_via_create = true
  # root here lacks CAP_SYS_RESOURCE: without this no pod starts
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [%[7]q]
    conf_dir = %[8]q
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = %[9]q
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = %[10]q
        Root = %[11]q
        # no systemd here
        SystemdCgroup = false

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "tmp"), c.sock,
		filepath.Join(dir, "opt"), criPauseImage, filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf"),
		criTool("containerd-shim-runc-v2"), wrapper, c.rtRoot)
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	crictlConf := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 120\n", c.sock)
	if err := os.WriteFile(c.crictlY, []byte(crictlConf), 0o644); err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	c.cmd = exec.Command(criTool("containerd"), "--config", confPath, "--log-level", "debug")
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Shims inherit the environment: their temp files stay here too, and
	// they find this ctr/containerd before Debian's.
	c.cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"),
		"PATH="+criBinDir()+":"+os.Getenv("PATH"))
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	c.exited = make(chan error, 1)
	go func() { c.exited <- c.cmd.Wait(); logf.Close() }()
	t.Cleanup(c.stop)
	waitFor(t, 30*time.Second, "containerd to listen on "+c.sock, func() (bool, string) {
		select {
		case err := <-c.exited:
			c.exited <- err
			t.Fatalf("containerd exited: %v\n%s", err, tail(c.log(), 30))
		default:
		}
		conn, err := net.Dial("unix", c.sock)
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
	archive := writeOCIArchive(t, dir, rootfs, []ociImage{
		// The pod's pause: a shell sleeping in a loop, forking a sleep a second.
		{name: criPauseImage, entrypoint: []string{"/bin/sh", "-c", "while :; do sleep 1; done"}},
		{name: criCounterImage, cmd: []string{"/bin/sh"}},
	})
	c.ctr(2*time.Minute, "images", "import", archive)
	images := c.must(30*time.Second, "images", "--output", "json")
	for _, ref := range []string{criPauseImage, criCounterImage} {
		if !strings.Contains(images, ref) {
			t.Fatalf("image %s not imported; CRI images:\n%s", ref, images)
		}
	}
	return c
}

func (c *criEnv) log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
	return string(b)
}

// crictl runs crictl against this daemon.
func (c *criEnv) crictl(timeout time.Duration, args ...string) (string, error) {
	c.t.Helper()
	return run(c.t, timeout, nil, criTool("crictl"), append([]string{"--config", c.crictlY}, args...)...)
}

// must runs crictl and fails the test on error.
func (c *criEnv) must(timeout time.Duration, args ...string) string {
	c.t.Helper()
	out, err := c.crictl(timeout, args...)
	if err != nil {
		c.t.Fatalf("crictl %s: %v\n%s\ncontainerd log:\n%s", strings.Join(args, " "), err, out, tail(c.log(), 40))
	}
	return strings.TrimSpace(out)
}

// ctr runs this containerd's ctr in the CRI namespace and fails on error.
func (c *criEnv) ctr(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return mustRun(c.t, timeout, nil, criTool("ctr"),
		append([]string{"--address", c.sock, "--namespace", criNamespace}, args...)...)
}

// writeJSON writes v as a config file for crictl and returns its path.
func (c *criEnv) writeJSON(name string, v any) string {
	c.t.Helper()
	path := filepath.Join(c.dir, name)
	if err := os.WriteFile(path, mustJSON(c.t, v), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return path
}

// criPod is a running pod sandbox.
type criPod struct {
	id     string
	config string // path of its PodSandboxConfig
	pid    int    // its pid namespace mode
}

// runPod starts a host-network pod whose pid namespace mode is pid.
func (c *criEnv) runPod(name string, pid int) criPod {
	c.t.Helper()
	c.pods++
	logDir := filepath.Join(c.dir, "logs", name)
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "e2e", "uid": fmt.Sprintf("uid-%s-%d", name, c.pods), "attempt": 0},
		"log_directory": logDir,
		"linux": map[string]any{
			"cgroup_parent": c.cgParent,
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": nsNode, "pid": pid},
			},
		},
	}
	path := c.writeJSON(fmt.Sprintf("pod-%s.json", name), cfg)
	id := c.must(2*time.Minute, "runp", path)
	c.ids = append(c.ids, id)
	return criPod{id: id, config: path, pid: pid}
}

// createContainer creates a container in pod from image (an image name or
// a checkpoint archive) and returns its id. args empty: the image's own.
func (c *criEnv) createContainer(pod criPod, name, image string, args ...string) string {
	c.t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"log_path": name + ".log",
		"linux": map[string]any{
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": nsNode, "pid": pod.pid},
			},
		},
	}
	if len(args) > 0 {
		cfg["command"] = args
	}
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
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("containerd did not exit on SIGTERM; killing it")
		c.cmd.Process.Kill()
		<-c.exited
	}
	if t.Failed() {
		t.Logf("containerd log (tail):\n%s", tail(c.log(), 60))
	}
	c.checkLeftovers()
	reportRuntimeCalls(t, c.callLog, map[string]string{c.dir: "<CRI>"})
	if strings.Contains(c.log(), "failed to kill init's children") {
		t.Errorf("the shim could not kill a container's remaining processes (containerd log: \"failed to kill init's children\")")
	}
}

// checkLeftovers fails the test for any process, mount, cgroup or file the
// daemon, its shims or the runtime left behind, and removes them.
func (c *criEnv) checkLeftovers() {
	t := c.t
	// Processes: shims name our socket; containers sit in our cgroups.
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		cg, _ := os.ReadFile(p + "/cgroup")
		if strings.Contains(string(cmdline), c.dir) || strings.Contains(string(cg), c.cgParent) {
			t.Errorf("teardown left process %d (%s) running", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// Mounts below our dir (snapshots, shm, rootfs).
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				if p := unescapeMountinfo(f[4]); p == c.dir || strings.HasPrefix(p, c.dir+"/") {
					t.Errorf("teardown left mount %s", p)
				}
			}
		}
	}
	// Cgroups: the pods' parent, in every hierarchy, must be gone or empty
	// (the runtime removes the containers' own cgroups; nobody removes the
	// parent, so we do, and only after checking it is empty).
	for _, h := range cgroupHierarchies() {
		parent := filepath.Join(h, c.cgParent)
		if _, err := os.Stat(parent); err != nil {
			continue
		}
		subs, _ := os.ReadDir(parent)
		for _, s := range subs {
			if s.IsDir() {
				t.Errorf("teardown left cgroup %s", filepath.Join(parent, s.Name()))
				os.Remove(filepath.Join(parent, s.Name()))
			}
		}
		if err := os.Remove(parent); err != nil {
			t.Errorf("removing pods' cgroup parent %s: %v", parent, err)
		}
	}
	// Nor anywhere else: containerd puts containers without a cgroup
	// parent under /k8s.io/<id>, and leaves that parent behind.
	for _, k := range c.newK8s {
		if _, err := os.Stat(k); err == nil {
			t.Errorf("teardown left cgroup %s", k)
			os.Remove(k)
		}
	}
	for _, id := range c.ids {
		for _, pattern := range []string{"/sys/fs/cgroup/*/" + id, "/sys/fs/cgroup/*/*/" + id, "/sys/fs/cgroup/*/*/*/" + id} {
			left, _ := filepath.Glob(pattern)
			for _, l := range left {
				t.Errorf("teardown left cgroup %s", l)
			}
		}
	}
	// Files: the shims' sockets live in /run/containerd/s, named by a hash
	// of our address; the runtime's state lives below c.rtRoot.
	if entries, err := os.ReadDir(filepath.Join(c.rtRoot, criNamespace)); err == nil && len(entries) > 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("teardown left runtime state in %s: %s", c.rtRoot, strings.Join(names, " "))
	}
	for _, s := range c.shimSockets() {
		if _, err := os.Lstat(s); err == nil {
			t.Errorf("teardown left shim socket %s", s)
			os.Remove(s)
		}
	}
	// Directories the shims made because they were missing (another
	// engineer's daemon may use them by now: only ever remove them empty).
	for _, d := range c.newDirs {
		os.Remove(d)
	}
}

// shimSockets are the sockets shims for our pods and containers would
// have: /run/containerd/s/<sha256 of address/namespace/id[/debug]>.
func (c *criEnv) shimSockets() []string {
	var socks []string
	for _, id := range c.ids {
		for _, p := range []string{filepath.Join(c.sock, criNamespace, id), filepath.Join(c.sock, criNamespace, id, "debug")} {
			socks = append(socks, fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(p))))
		}
	}
	return socks
}

// criCheckpoint checkpoints container id through CRI into an archive and
// checks that it keeps running and counting (CRI dumps with --leave-running).
func (c *criEnv) checkpoint(id, name string) (string, counterValue) {
	c.t.Helper()
	before := c.waitCounter(id, "", 5)
	archive := filepath.Join(c.dir, name)
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
		pid  int
	}{{"pid=CONTAINER", nsContainer}, {"pid=POD", nsPod}} {
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
			case mode.pid == nsContainer && where != pidnsOwn:
				t.Fatalf("restored container lives in %s, want %s", where, pidnsOwn)
			case mode.pid == nsPod && where == pidnsOwn:
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
