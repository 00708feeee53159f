package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/leftovers"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/ociarchive"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatecri"
	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatepodman"
)

// Managers: the same container checkpointed and restored through a
// container manager, by Debian's runc 1.1.5 and by our runtime, runc first
// in every pair:
//   - podman 4.3 with conmon (scripts/install-e2e-deps.sh): `podman
//     --runtime PATH container checkpoint NAME` (the container stops),
//     then `... container restore NAME`, of one container per runtime,
//     again in every pair;
//   - containerd 2.3.7's CRI driven by crictl, the kubelet's path
//     (scripts/install-cri-tools.sh): one containerd with a runtime handler
//     for each runtime; `crictl checkpoint --export=ARCHIVE ID` of a running
//     container (it keeps running), and its restore: `crictl create` of a
//     container from the archive in a second pod, then `crictl start`.
//
// Both keep their state in the run's scratch directory, use images made
// here from busybox (no registry), and are torn down right after their
// rows, so that no daemon runs during the other parts. A process, mount,
// cgroup or runtime state they leave behind fails the run.

const (
	mgrImage = "localhost/criu-ns-bench-busybox:latest"
	mgrPause = "localhost/criu-ns-bench-pause:latest"
	mgrLoop  = "while :; do sleep 1; done"
)

func (b *bench) podmanPeer() peer {
	path, err := exec.LookPath("podman")
	if err != nil {
		path = "podman"
	}
	return peer{name: "podman", path: path, needs: []string{"conmon", "busybox"}, install: "scripts/install-e2e-deps.sh"}
}

func (b *bench) criPeer() peer {
	return peer{name: "containerd " + privatecri.ContainerdVersion + " with crictl", path: filepath.Join(b.c.criBin, "containerd"),
		needs: []string{"busybox"}, install: "scripts/install-cri-tools.sh", check: b.criToolsMissing}
}

// criToolsMissing says which of the CRI tools are absent or of another
// version, or "".
func (b *bench) criToolsMissing() string {
	return strings.Join(privatecri.MissingTools(b.c.criBin), ", ")
}

// mgrPairs is how many measured pairs the managers' rows run: their
// start-ups make each pair cost seconds.
func (b *bench) mgrPairs() int {
	if b.c.smoke {
		return 1
	}
	return b.c.pairs
}

// managerPeers runs the podman and the CRI rows, each only if runc and
// its manager are there.
func (b *bench) managerPeers() error {
	rc, err := b.peerReady(b.runcPeer())
	if !rc || err != nil {
		return err
	}
	if ok, err := b.peerReady(b.podmanPeer()); err != nil {
		return err
	} else if ok {
		if err := b.podmanPeers(); err != nil {
			return err
		}
	}
	if ok, err := b.peerReady(b.criPeer()); err != nil {
		return err
	} else if ok {
		if err := b.criPeers(); err != nil {
			return err
		}
	}
	return nil
}

// closeManager tears a manager down after its rows, also when it did not
// come up: a teardown error becomes the rows' error if they had none, and
// is logged otherwise.
func (b *bench) closeManager(close func() error, err *error) {
	if cerr := close(); *err == nil {
		*err = cerr
	} else if cerr != nil {
		b.logf("%v", cerr)
	}
}

// mgrRuntime is one side of a manager's pair.
type mgrRuntime struct {
	name string // runc or ours
	path string
}

func (b *bench) mgrRuntimes() []mgrRuntime {
	return []mgrRuntime{{"runc", b.c.runc}, {"ours", b.c.runtime}}
}

// podmanPeers: per runtime one container (`podman --runtime PATH run -d`,
// untimed), then per pair `container checkpoint` and `container restore`
// of it, timed, by runc and then by ours.
func (b *bench) podmanPeers() (err error) {
	p, err := b.newPodman()
	defer b.closeManager(p.close, &err)
	if err != nil {
		return err
	}
	ck := &Op{Name: "podman container checkpoint", Workload: "busybox sh",
		FloorCmd:   "podman --runtime /usr/sbin/runc (1.1.5) container checkpoint NAME",
		RuntimeCmd: "podman --runtime criu-ns-runtime container checkpoint NAME",
		Note:       fmt.Sprintf("%s with conmon; the same container checkpointed and restored again in every pair", p.version)}
	rs := &Op{Name: "podman container restore", Workload: "busybox sh",
		FloorCmd:   "podman --runtime /usr/sbin/runc (1.1.5) container restore NAME",
		RuntimeCmd: "podman --runtime criu-ns-runtime container restore NAME"}
	rts := b.mgrRuntimes()
	names := make([]string, len(rts))
	for i, rt := range rts {
		names[i] = b.id("podman-" + rt.name)
		p.ctrs = append(p.ctrs, [2]string{rt.path, names[i]})
		if r := p.podman(rt.path, "run", "--detach", "--name", names[i], "--cgroup-parent", p.cgParent,
			mgrImage, "sh", "-c", mgrLoop); r.Err != nil {
			return r.Err
		}
	}
	return b.peerPairs(ck, rs, b.mgrPairs(), [2]string{rts[0].name, rts[1].name}, func(i int) (time.Duration, time.Duration, error) {
		rt := rts[i]
		c := p.podman(rt.path, "container", "checkpoint", names[i])
		if c.Err != nil {
			return 0, 0, c.Err
		}
		r := p.podman(rt.path, "container", "restore", names[i])
		if r.Err != nil {
			return 0, 0, r.Err
		}
		if s := p.podman(rt.path, "inspect", "--format", "{{.State.Status}}", names[i]); s.Err != nil || strings.TrimSpace(s.Out) != "running" {
			return 0, 0, fmt.Errorf("%s after restore: %v %s", names[i], s.Err, s.Out)
		}
		return c.D, r.D, nil
	})
}

// podmanEnv is a podman whose whole state (storage, database, locks,
// events, temporary files) lives in one directory, and whose containers'
// cgroups live below one parent of their own.
type podmanEnv struct {
	b        *bench
	dir      string
	env      []string
	base     []string
	cgParent string
	version  string
	ctrs     [][2]string // runtime path, container name
	made     []string    // the runtimes' default roots that did not exist before
	once     sync.Once
	err      error
}

func (b *bench) newPodman() (*podmanEnv, error) {
	p := &podmanEnv{b: b, cgParent: "/" + b.prefix + "-podman"}
	b.cleanups = append(b.cleanups, func() { p.close() })
	// Not below the scratch directory: podman refuses a runroot longer
	// than 50 characters (conmon's socket paths lie below it).
	dir, err := os.MkdirTemp("/tmp", b.prefix+"-podman-")
	if err != nil {
		return p, err
	}
	p.dir = dir
	// podman 4.3 passes no --root to the runtime: runc and ours keep
	// their containers in their default roots.
	for _, d := range []string{"/run/runc", "/run/criu-ns-runtime"} {
		if _, err := os.Stat(d); err != nil {
			p.made = append(p.made, d)
		}
	}
	// No default runtime: every command names its own with --runtime PATH.
	pm, err := privatepodman.Setup(dir, privatepodman.Engine{SupportsJSON: []string{b.c.runc, b.c.runtime}, FileLocks: true})
	if err != nil {
		return p, err
	}
	p.env = pm.Env
	p.base = append([]string{b.podmanPeer().path}, pm.Args...)
	v := b.execCmd(p.env, nil, p.base[0], "--version")
	if v.Err != nil {
		return p, v.Err
	}
	p.version = strings.TrimSpace(strings.Replace(v.Out, " version ", " ", 1))
	layer, err := writeLayer(dir)
	if err != nil {
		return p, err
	}
	if r := p.podman(b.c.runc, "import", layer, mgrImage); r.Err != nil {
		return p, r.Err
	}
	return p, nil
}

// podman runs podman with runtime as its OCI runtime, and times it.
func (p *podmanEnv) podman(runtime string, args ...string) result {
	a := append(append([]string{}, p.base...), "--runtime", runtime)
	return p.b.execCmd(p.env, nil, append(a, args...)...)
}

// close removes the containers and the image, waits for conmon, and
// removes what podman leaves by design (its storage driver's bind mount,
// the conmon cgroup); anything else left is an error. Once only.
func (p *podmanEnv) close() error {
	p.once.Do(func() { p.err = p.teardown() })
	return p.err
}

func (p *podmanEnv) teardown() error {
	var left []string
	for _, c := range p.ctrs {
		if r := p.podman(c[0], "rm", "--force", "--ignore", "--time", "0", c[1]); r.Err != nil {
			left = append(left, r.Err.Error())
		}
	}
	if len(p.base) > 0 {
		p.podman(p.b.c.runc, "rmi", "--force", "--all")
	}
	if p.dir != "" {
		// conmon outlives `rm` a moment: it runs podman's cleanup last.
		left = append(left, endProcesses(p.dir, p.cgParent, 10*time.Second)...)
		// The overlay driver binds its own directory; it stays until unmounted.
		mounts, _ := leftovers.Unmount(p.dir)
		for _, m := range mounts {
			if m != filepath.Join(p.dir, "root", "overlay") {
				left = append(left, "mount "+m)
			}
		}
	}
	left = append(left, leftovers.RemoveCgroupParent(p.cgParent, "conmon")...)
	for _, d := range p.made {
		os.Remove(d) // only if empty
	}
	if p.dir != "" && !p.b.c.keep {
		safeRemoveAll(p.dir)
	}
	if len(left) > 0 {
		return fmt.Errorf("podman left behind: %s", strings.Join(left, "; "))
	}
	return nil
}

// criPeers: one containerd with a runtime handler for runc and one for
// ours; per handler a pod running the container (untimed) and a pod to
// restore into. Per pair, by runc and then by ours: `crictl checkpoint
// --export` of the running container, and its restore from the archive
// (`crictl create`, then `crictl start`), timed; the restored container is
// then checked and removed, untimed.
func (b *bench) criPeers() (err error) {
	c, err := b.startCRI()
	defer b.closeManager(c.close, &err)
	if err != nil {
		return err
	}
	ck := &Op{Name: "CRI checkpoint", Workload: "busybox sh",
		FloorCmd:   "crictl checkpoint --export=ARCHIVE ID (handler runc: runc 1.1.5)",
		RuntimeCmd: "crictl checkpoint --export=ARCHIVE ID (handler criu-ns-runtime)",
		Note:       "containerd " + privatecri.ContainerdVersion + " and its runc shim, crictl " + privatecri.CrictlVersion + "; the container keeps running"}
	rs := &Op{Name: "CRI restore", Workload: "busybox sh",
		FloorCmd:   "crictl create POD CTR.json(image: ARCHIVE) POD.json; crictl start ID (handler runc)",
		RuntimeCmd: "the same (handler criu-ns-runtime)",
		Note:       "create from the checkpoint archive, then start: both timed"}
	type side struct {
		orig   string
		target criPod
	}
	rts := b.mgrRuntimes()
	sides := make([]side, len(rts))
	for i, rt := range rts {
		a, err := c.runPod("a-"+rt.name, c.handler(rt))
		if err != nil {
			return fmt.Errorf("%s: %w", rt.name, err)
		}
		orig, err := c.createContainer(a, "orig", mgrImage)
		if err != nil {
			return fmt.Errorf("%s: %w", rt.name, err)
		}
		if r := c.crictl("start", orig); r.Err != nil {
			return fmt.Errorf("%s: %w", rt.name, r.Err)
		}
		target, err := c.runPod("b-"+rt.name, c.handler(rt))
		if err != nil {
			return fmt.Errorf("%s: %w", rt.name, err)
		}
		sides[i] = side{orig, target}
	}
	n := 0
	// one checkpoints side i's container and restores the archive into its
	// second pod, then removes the restored container.
	one := func(i int) (cd, rd time.Duration, err error) {
		s := sides[i]
		defer func() {
			if err != nil {
				err = fmt.Errorf("%w\ncontainerd log:\n%s", err, tail(c.Log(), 1500))
			}
		}()
		n++
		archive := filepath.Join(c.Dir, fmt.Sprintf("ck-%d.tar", n))
		defer os.Remove(archive)
		k := c.crictl("checkpoint", "--export="+archive, s.orig)
		if k.Err != nil {
			return 0, 0, k.Err
		}
		cfg, err := c.containerConfig(s.target, fmt.Sprintf("restored-%d", n), archive)
		if err != nil {
			return 0, 0, err
		}
		cr := c.crictl("create", "--no-pull", s.target.id, cfg, s.target.config)
		if cr.Err != nil {
			return 0, 0, cr.Err
		}
		id := lastField(cr.Out)
		c.ids = append(c.ids, id)
		st := c.crictl("start", id)
		if st.Err != nil {
			return 0, 0, st.Err
		}
		if state, err := c.state(id); err != nil || state != "CONTAINER_RUNNING" {
			return 0, 0, fmt.Errorf("restored container %s: %s %v", id, state, err)
		}
		if state, err := c.state(s.orig); err != nil || state != "CONTAINER_RUNNING" {
			return 0, 0, fmt.Errorf("checkpointed container %s: %s %v", s.orig, state, err)
		}
		if r := c.crictl("rm", "--force", id); r.Err != nil {
			return 0, 0, r.Err
		}
		return k.D, cr.D + st.D, nil
	}
	return b.peerPairs(ck, rs, b.mgrPairs(), [2]string{rts[0].name, rts[1].name}, one)
}

// criEnv is a private containerd with CRI in the run's scratch directory
// (see privatecri), with a handler per runtime, and all its pods' cgroups
// below one parent of their own.
type criEnv struct {
	*privatecri.Daemon
	b        *bench
	cgParent string
	ids      []string // every pod and container id: shims are named after them
	once     sync.Once
	err      error
}

// handler is the CRI runtime handler that runs rt.
func (c *criEnv) handler(rt mgrRuntime) string {
	if rt.name == "runc" {
		return "runc"
	}
	return "criu-ns-runtime"
}

func (b *bench) startCRI() (*criEnv, error) {
	c := &criEnv{b: b, cgParent: "/" + b.prefix + "-cri"}
	b.cleanups = append(b.cleanups, func() { c.close() })
	dir := filepath.Join(b.dir, "cri")
	var handlers []privatecri.Handler
	for _, rt := range b.mgrRuntimes() {
		handlers = append(handlers, privatecri.Handler{Name: c.handler(rt), Binary: rt.path, Root: filepath.Join(dir, "rt-"+rt.name)})
	}
	d, err := privatecri.New(privatecri.Config{Dir: dir, BinDir: b.c.criBin, PauseImage: mgrPause, Handlers: handlers})
	if err != nil {
		return c, err
	}
	c.Daemon = d
	if err := c.Start(); err != nil {
		return c, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if exited, err := c.Exited(); exited {
			return c, fmt.Errorf("containerd exited: %v\n%s", err, tail(c.Log(), 1500))
		}
		if conn, err := net.Dial("unix", c.Sock); err == nil {
			conn.Close()
			if c.crictl("info").Err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("containerd: CRI not answering on %s after 30 s\n%s", c.Sock, tail(c.Log(), 1500))
		}
	}
	layer, err := writeLayer(dir)
	if err != nil {
		return c, err
	}
	archive, err := ociarchive.Write(dir, layer, []ociarchive.Image{
		// The pods' pause: a shell sleeping in a loop.
		{Name: mgrPause, Entrypoint: []string{"/bin/sh", "-c", mgrLoop}},
		{Name: mgrImage, Cmd: []string{"/bin/sh", "-c", mgrLoop}},
	})
	if err != nil {
		return c, err
	}
	return c, c.ImportImages(archive, cmdTimeout, mgrPause, mgrImage)
}

// crictl runs crictl against this containerd, and times it.
func (c *criEnv) crictl(args ...string) result {
	return c.b.exec(append([]string{c.Tool("crictl"), "--config", c.CrictlConfig}, args...)...)
}

func (c *criEnv) writeJSON(name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.Dir, name)
	return path, os.WriteFile(path, data, 0o644)
}

// criPod is a running pod sandbox.
type criPod struct {
	id     string
	config string // its PodSandboxConfig
}

// runPod starts a pod on the host's network under the runtime handler,
// each container in a pid namespace of its own (Kubernetes' default).
func (c *criEnv) runPod(name, handler string) (criPod, error) {
	cfg := c.PodConfig(name, "bench", c.cgParent, privatecri.NamespaceContainer)
	path, err := c.writeJSON("pod-"+name+".json", cfg)
	if err != nil {
		return criPod{}, err
	}
	r := c.crictl("runp", "--runtime", handler, path)
	if r.Err != nil {
		return criPod{}, r.Err
	}
	id := lastField(r.Out)
	c.ids = append(c.ids, id)
	return criPod{id: id, config: path}, nil
}

// containerConfig writes a ContainerConfig for pod: a container named
// name from image (an image or a checkpoint archive), running the image's
// command.
func (c *criEnv) containerConfig(pod criPod, name, image string) (string, error) {
	cfg := privatecri.ContainerConfig(name, image, privatecri.NamespaceContainer)
	return c.writeJSON(fmt.Sprintf("ctr-%s-%s.json", pod.id[:12], name), cfg)
}

// createContainer creates (does not start) a container in pod.
func (c *criEnv) createContainer(pod criPod, name, image string) (string, error) {
	cfg, err := c.containerConfig(pod, name, image)
	if err != nil {
		return "", err
	}
	r := c.crictl("create", "--no-pull", pod.id, cfg, pod.config)
	if r.Err != nil {
		return "", r.Err
	}
	id := lastField(r.Out)
	c.ids = append(c.ids, id)
	return id, nil
}

// state is a container's status.state (CONTAINER_RUNNING, ...).
func (c *criEnv) state(id string) (string, error) {
	r := c.crictl("inspect", "--output", "json", id)
	if r.Err != nil {
		return "", r.Err
	}
	var info struct {
		Status struct {
			State string `json:"state"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.Out), &info); err != nil {
		return "", fmt.Errorf("crictl inspect %s: %v: %s", id, err, tail(r.Out, 300))
	}
	return info.Status.State, nil
}

// close removes every pod and image, stops containerd and checks that
// nothing it, its shims or the runtimes made is left: no process, mount,
// cgroup, runtime state or shim socket. Once only.
func (c *criEnv) close() error {
	c.once.Do(func() { c.err = c.teardown() })
	return c.err
}

func (c *criEnv) teardown() error {
	if c.Daemon == nil {
		return nil // nothing was made
	}
	var left []string
	if c.Started() {
		if r := c.crictl("pods", "--quiet"); r.Err == nil {
			for _, id := range strings.Fields(r.Out) {
				if s := c.crictl("stopp", id); s.Err != nil {
					left = append(left, s.Err.Error())
				}
				if s := c.crictl("rmp", "--force", id); s.Err != nil {
					left = append(left, s.Err.Error())
				}
			}
		} else {
			left = append(left, r.Err.Error())
		}
		// Through CRI, so that containerd drops the snapshots (and their
		// mounts) itself.
		if r := c.crictl("images", "--quiet"); r.Err == nil {
			for _, id := range strings.Fields(r.Out) {
				c.crictl("rmi", id)
			}
		}
		if err := c.Stop(30 * time.Second); err != nil {
			left = append(left, err.Error())
		}
	}
	// Shims exit once their last container is gone: give them a moment.
	left = append(left, endProcesses(c.Dir, c.cgParent, 5*time.Second)...)
	mounts, _ := leftovers.Unmount(c.Dir)
	for _, m := range mounts {
		left = append(left, "mount "+m)
	}
	left = append(left, leftovers.RemoveCgroupParent(c.cgParent)...)
	left = append(left, c.Cleanup(c.ids)...)
	if len(left) > 0 {
		return fmt.Errorf("CRI left behind: %s", strings.Join(left, "; "))
	}
	return nil
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// endProcesses waits up to grace for every process whose command line
// names dir or whose cgroup is or lies below cgParent to exit, then kills
// those left and names them.
func endProcesses(dir, cgParent string, grace time.Duration) []string {
	found := leftovers.Processes(dir, cgParent)
	for deadline := time.Now().Add(grace); len(found) > 0 && time.Now().Before(deadline); found = leftovers.Processes(dir, cgParent) {
		time.Sleep(50 * time.Millisecond)
	}
	var left []string
	for pid, cmd := range found {
		syscall.Kill(pid, syscall.SIGKILL)
		left = append(left, fmt.Sprintf("process %d (%s)", pid, tail(cmd, 120)))
	}
	sort.Strings(left)
	return left
}

// writeLayer writes the managers' image layer into dir, an uncompressed
// tar: busybox (static) with sh and sleep, /etc/passwd and /etc/group.
func writeLayer(dir string) (string, error) {
	bb, err := readBusybox()
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(h *tar.Header, data []byte) error {
		h.ModTime, h.Size = mtime, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	entries := []struct {
		h    tar.Header
		data []byte
	}{
		{tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, bb},
		{tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil},
		{tar.Header{Name: "bin/sleep", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil},
		{tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:\n")},
		{tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil},
		{tar.Header{Name: "root/", Typeflag: tar.TypeDir, Mode: 0o700}, nil},
		{tar.Header{Name: "proc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "sys/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		{tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
	}
	for _, e := range entries {
		if err := add(&e.h, e.data); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "layer.tar")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
