package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
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
	// The versions scripts/install-cri-tools.sh builds.
	criContainerdVer = "2.3.7"
	criCrictlVer     = "v1.34.0"
	criNamespace     = "k8s.io" // containerd's namespace of CRI objects
)

func (b *bench) podmanPeer() peer {
	path, err := exec.LookPath("podman")
	if err != nil {
		path = "podman"
	}
	return peer{name: "podman", path: path, needs: []string{"conmon", "busybox"}, install: "scripts/install-e2e-deps.sh"}
}

func (b *bench) criPeer() peer {
	return peer{name: "containerd " + criContainerdVer + " with crictl", path: filepath.Join(b.c.criBin, "containerd"),
		needs: []string{"busybox"}, install: "scripts/install-cri-tools.sh", check: b.criToolsMissing}
}

// criToolsMissing says which of the CRI tools is absent or of another
// version, or "".
func (b *bench) criToolsMissing() string {
	for _, t := range []struct{ name, arg, want string }{
		{"containerd", "--version", " " + criContainerdVer + " "},
		{"containerd-shim-runc-v2", "-v", criContainerdVer},
		{"ctr", "--version", criContainerdVer},
		{"crictl", "--version", criCrictlVer},
	} {
		out, err := exec.Command(filepath.Join(b.c.criBin, t.name), t.arg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), t.want) {
			return fmt.Sprintf("%s %s not in %s", t.name, strings.TrimSpace(t.want), b.c.criBin)
		}
	}
	return ""
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
	if err != nil {
		if cerr := p.close(); cerr != nil {
			b.logf("%v", cerr)
		}
		return err
	}
	defer func() {
		if cerr := p.close(); err == nil {
			err = cerr
		} else if cerr != nil {
			b.logf("%v", cerr)
		}
	}()
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
	var restores [][2]time.Duration
	err = b.pairsN(ck, b.mgrPairs(), func(measured bool) (time.Duration, time.Duration, error) {
		var cds, rds [2]time.Duration
		for i, rt := range rts {
			c := p.podman(rt.path, "container", "checkpoint", names[i])
			if c.Err != nil {
				return 0, 0, fmt.Errorf("%s: %w", rt.name, c.Err)
			}
			r := p.podman(rt.path, "container", "restore", names[i])
			if r.Err != nil {
				return 0, 0, fmt.Errorf("%s: %w", rt.name, r.Err)
			}
			if s := p.podman(rt.path, "inspect", "--format", "{{.State.Status}}", names[i]); s.Err != nil || strings.TrimSpace(s.Out) != "running" {
				return 0, 0, fmt.Errorf("%s: %s after restore: %v %s", rt.name, names[i], s.Err, s.Out)
			}
			cds[i], rds[i] = c.D, r.D
		}
		if measured {
			restores = append(restores, rds)
		}
		return cds[0], cds[1], nil
	})
	if err != nil {
		return err
	}
	for _, r := range restores {
		rs.add(r[0], r[1])
	}
	b.logf("%-26s %-7s peer %8.1f ms  ours %8.1f ms  ratio %.3f", rs.Name, rs.Workload, rs.FloorMed, rs.RuntimeMed, rs.RatioMed)
	b.res.Peers = append(b.res.Peers, ck, rs)
	return nil
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
	for _, d := range []string{"root", "runroot", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return p, err
		}
	}
	// No default runtime: every command names its own with --runtime.
	conf := fmt.Sprintf(`[containers]
netns = "none"
cgroupns = "host"
log_driver = "k8s-file"
# root here lacks CAP_SYS_RESOURCE: keep rlimits at or below the current hard limits
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %[1]q
# file locks in tmp_dir, not the machine-wide /dev/shm/libpod_lock
lock_type = "file"
runtime_supports_json = [%[2]q, %[3]q]
tmp_dir = %[4]q
static_dir = %[5]q
volume_path = %[6]q
`, filepath.Join(dir, "events.log"), b.c.runc, b.c.runtime, filepath.Join(dir, "tmp"),
		filepath.Join(dir, "root", "libpod"), filepath.Join(dir, "root", "volumes"))
	storage := fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n",
		filepath.Join(dir, "root"), filepath.Join(dir, "runroot"))
	confPath, storagePath := filepath.Join(dir, "containers.conf"), filepath.Join(dir, "storage.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return p, err
	}
	if err := os.WriteFile(storagePath, []byte(storage), 0o644); err != nil {
		return p, err
	}
	p.env = append(os.Environ(), "CONTAINERS_CONF="+confPath, "CONTAINERS_STORAGE_CONF="+storagePath,
		"TMPDIR="+filepath.Join(dir, "tmp"), "XDG_RUNTIME_DIR="+filepath.Join(dir, "runroot"))
	p.base = []string{b.podmanPeer().path, "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--cgroup-manager", "cgroupfs", "--events-backend", "file"}
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
		for _, m := range unmountBelow(p.dir) {
			if m != filepath.Join(p.dir, "root", "overlay") {
				left = append(left, "mount "+m)
			}
		}
	}
	left = append(left, removeCgroup(p.cgParent, "conmon")...)
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
	if err != nil {
		if cerr := c.close(); cerr != nil {
			b.logf("%v", cerr)
		}
		return err
	}
	defer func() {
		if cerr := c.close(); err == nil {
			err = cerr
		} else if cerr != nil {
			b.logf("%v", cerr)
		}
	}()
	ck := &Op{Name: "CRI checkpoint", Workload: "busybox sh",
		FloorCmd:   "crictl checkpoint --export=ARCHIVE ID (handler runc: runc 1.1.5)",
		RuntimeCmd: "crictl checkpoint --export=ARCHIVE ID (handler criu-ns-runtime)",
		Note:       "containerd " + criContainerdVer + " and its runc shim, crictl " + criCrictlVer + "; the container keeps running"}
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
	// one checkpoints side s's container and restores the archive into its
	// second pod, then removes the restored container.
	one := func(s side) (cd, rd time.Duration, err error) {
		n++
		archive := filepath.Join(c.dir, fmt.Sprintf("ck-%d.tar", n))
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
	var restores [][2]time.Duration
	err = b.pairsN(ck, b.mgrPairs(), func(measured bool) (time.Duration, time.Duration, error) {
		var cds, rds [2]time.Duration
		for i, rt := range rts {
			cd, rd, err := one(sides[i])
			if err != nil {
				return 0, 0, fmt.Errorf("%s: %w\ncontainerd log:\n%s", rt.name, err, tail(c.log(), 1500))
			}
			cds[i], rds[i] = cd, rd
		}
		if measured {
			restores = append(restores, rds)
		}
		return cds[0], cds[1], nil
	})
	if err != nil {
		return err
	}
	for _, r := range restores {
		rs.add(r[0], r[1])
	}
	b.logf("%-26s %-7s peer %8.1f ms  ours %8.1f ms  ratio %.3f", rs.Name, rs.Workload, rs.FloorMed, rs.RuntimeMed, rs.RatioMed)
	b.res.Peers = append(b.res.Peers, ck, rs)
	return nil
}

// criEnv is a private containerd with CRI: its root, state, sockets,
// temporary files, the runtimes' roots and pod logs live in one directory,
// and all its pods' cgroups below one parent of their own.
type criEnv struct {
	b        *bench
	dir      string
	sock     string
	crictlY  string
	cgParent string
	cmd      *exec.Cmd
	exited   chan error
	pods     int
	ids      []string // every pod and container id: shims are named after them
	newDirs  []string // shims' directories that did not exist before
	newK8s   []string // containerd's default cgroup parents that did not exist before
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
	dir := filepath.Join(b.dir, "cri")
	c := &criEnv{b: b, dir: dir, sock: filepath.Join(dir, "containerd.sock"),
		crictlY: filepath.Join(dir, "crictl.yaml"), cgParent: "/" + b.prefix + "-cri"}
	b.cleanups = append(b.cleanups, func() { c.close() })
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
			return c, err
		}
	}
	cri := "plugins.'io.containerd.cri.v1.runtime'"
	handler := func(name, binary, root string) string {
		return fmt.Sprintf(`    [%[1]s.containerd.runtimes.%[2]s]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = %[3]q
      [%[1]s.containerd.runtimes.%[2]s.options]
        BinaryName = %[4]q
        Root = %[5]q
        SystemdCgroup = false
`, cri, name, filepath.Join(b.c.criBin, "containerd-shim-runc-v2"), binary, filepath.Join(dir, root))
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

[%[7]s]
  enable_criu = true
  enable_experimental_restore_via_create = true
  # root here lacks CAP_SYS_RESOURCE: without this no pod starts
  restrict_oom_score_adj = true
  cdi_spec_dirs = []
  [%[7]s.cni]
    bin_dirs = [%[8]q]
    conf_dir = %[9]q
  [%[7]s.containerd]
    default_runtime_name = "runc"
%[10]s%[11]s
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), filepath.Join(dir, "tmp"), c.sock,
		filepath.Join(dir, "opt"), mgrPause, cri, filepath.Join(dir, "cni/bin"), filepath.Join(dir, "cni/conf"),
		handler("runc", b.c.runc, "rt-runc"), handler("criu-ns-runtime", b.c.runtime, "rt-ours"))
	confPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return c, err
	}
	crictlConf := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 120\n", c.sock)
	if err := os.WriteFile(c.crictlY, []byte(crictlConf), 0o644); err != nil {
		return c, err
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		return c, err
	}
	c.cmd = exec.Command(filepath.Join(b.c.criBin, "containerd"), "--config", confPath)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	// Shims inherit the environment: their temporary files stay here too,
	// and they find this containerd's tools before Debian's.
	c.cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(dir, "tmp"), "PATH="+b.c.criBin+":"+os.Getenv("PATH"))
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.cmd.Start(); err != nil {
		logf.Close()
		c.cmd = nil
		return c, fmt.Errorf("starting containerd: %w", err)
	}
	c.exited = make(chan error, 1)
	go func() { c.exited <- c.cmd.Wait(); logf.Close() }()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		select {
		case err := <-c.exited:
			c.exited <- err
			return c, fmt.Errorf("containerd exited: %v\n%s", err, tail(c.log(), 1500))
		default:
		}
		if conn, err := net.Dial("unix", c.sock); err == nil {
			conn.Close()
			if c.crictl("info").Err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("containerd: CRI not answering on %s after 30 s\n%s", c.sock, tail(c.log(), 1500))
		}
	}
	layer, err := writeLayer(dir)
	if err != nil {
		return c, err
	}
	archive, err := writeOCIArchive(dir, layer, []ociImage{
		// The pods' pause: a shell sleeping in a loop.
		{name: mgrPause, entrypoint: []string{"/bin/sh", "-c", mgrLoop}},
		{name: mgrImage, cmd: []string{"/bin/sh", "-c", mgrLoop}},
	})
	if err != nil {
		return c, err
	}
	if r := b.exec(filepath.Join(b.c.criBin, "ctr"), "--address", c.sock, "--namespace", criNamespace, "images", "import", archive); r.Err != nil {
		return c, r.Err
	}
	return c, nil
}

func (c *criEnv) log() string {
	data, _ := os.ReadFile(filepath.Join(c.dir, "containerd.log"))
	return string(data)
}

// crictl runs crictl against this containerd, and times it.
func (c *criEnv) crictl(args ...string) result {
	return c.b.exec(append([]string{filepath.Join(c.b.c.criBin, "crictl"), "--config", c.crictlY}, args...)...)
}

func (c *criEnv) writeJSON(name string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	path := filepath.Join(c.dir, name)
	return path, os.WriteFile(path, data, 0o644)
}

// criPod is a running pod sandbox.
type criPod struct {
	id     string
	config string // its PodSandboxConfig
}

// CRI's NamespaceMode.
const (
	criNsContainer = 1 // the container's own
	criNsNode      = 2 // the host's
)

// runPod starts a pod on the host's network under the runtime handler,
// each container in a pid namespace of its own (Kubernetes' default).
func (c *criEnv) runPod(name, handler string) (criPod, error) {
	c.pods++
	cfg := map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": "bench", "uid": fmt.Sprintf("uid-%s-%d", name, c.pods), "attempt": 0},
		"log_directory": filepath.Join(c.dir, "logs", name),
		"linux": map[string]any{
			"cgroup_parent": c.cgParent,
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": criNsNode, "pid": criNsContainer},
			},
		},
	}
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
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"log_path": name + ".log",
		"linux": map[string]any{
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": criNsNode, "pid": criNsContainer},
			},
		},
	}
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
	var left []string
	if c.cmd != nil {
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
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(30 * time.Second):
			left = append(left, "containerd (no exit on SIGTERM in 30 s; killed)")
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	// Shims exit once their last container is gone: give them a moment.
	left = append(left, endProcesses(c.dir, c.cgParent, 5*time.Second)...)
	for _, m := range unmountBelow(c.dir) {
		left = append(left, "mount "+m)
	}
	left = append(left, removeCgroup(c.cgParent)...)
	// containerd puts containers without a cgroup parent under /k8s.io.
	for _, k := range c.newK8s {
		if _, err := os.Stat(k); err == nil {
			left = append(left, "cgroup "+k)
			os.Remove(k)
		}
	}
	for _, root := range []string{"rt-runc", "rt-ours"} {
		if ents, err := os.ReadDir(filepath.Join(c.dir, root, criNamespace)); err == nil && len(ents) > 0 {
			left = append(left, fmt.Sprintf("runtime state: %d containers in %s", len(ents), filepath.Join(c.dir, root)))
		}
	}
	// The shims' sockets: /run/containerd/s/<sha256 of address/namespace/id[/debug]>.
	for _, id := range c.ids {
		for _, p := range []string{filepath.Join(c.sock, criNamespace, id), filepath.Join(c.sock, criNamespace, id, "debug")} {
			s := fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(p)))
			if _, err := os.Lstat(s); err == nil {
				left = append(left, "shim socket "+s)
				os.Remove(s)
			}
		}
	}
	// Another containerd may use them by now: only ever remove them empty.
	for _, d := range c.newDirs {
		os.Remove(d)
	}
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
// names dir or whose cgroup lies below cgParent to exit, then kills those
// left and names them.
func endProcesses(dir, cgParent string, grace time.Duration) []string {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" || cgParent == "" || cgParent == "/" {
		panic("endProcesses: dir " + dir + ", cgroup " + cgParent) // would match every process
	}
	find := func() map[int]string {
		found := map[int]string{}
		procs, _ := filepath.Glob("/proc/[0-9]*")
		for _, p := range procs {
			pid, _ := strconv.Atoi(filepath.Base(p))
			if pid == os.Getpid() {
				continue
			}
			cmdline, _ := os.ReadFile(p + "/cmdline")
			cg, _ := os.ReadFile(p + "/cgroup")
			if bytes.Contains(cmdline, []byte(dir+"/")) || bytes.Contains(cg, []byte(":"+cgParent+"/")) {
				found[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
			}
		}
		return found
	}
	found := find()
	for deadline := time.Now().Add(grace); len(found) > 0 && time.Now().Before(deadline); found = find() {
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

// unmountBelow lazily unmounts every mount at or below dir, deepest
// first, and returns them.
func unmountBelow(dir string) []string {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
		panic("unmountBelow " + dir)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		syscall.Unmount(p, syscall.MNT_DETACH)
	}
	return points
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

// removeCgroup removes the cgroup parent in every hierarchy: the children
// named in expected silently, any other child as a leftover it names.
func removeCgroup(parent string, expected ...string) []string {
	var left []string
	for _, h := range cgroupHierarchies() {
		p := filepath.Join(h, parent)
		subs, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, s := range subs {
			if !s.IsDir() {
				continue
			}
			known := false
			for _, e := range expected {
				known = known || s.Name() == e
			}
			if !known {
				left = append(left, "cgroup "+filepath.Join(p, s.Name()))
			}
			os.Remove(filepath.Join(p, s.Name()))
		}
		if err := os.Remove(p); err != nil {
			left = append(left, fmt.Sprintf("cgroup %s: %v", p, err))
		}
	}
	return left
}

// writeLayer writes the managers' image layer into dir, an uncompressed
// tar: busybox (static) with sh and sleep, /etc/passwd and /etc/group.
func writeLayer(dir string) (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", err
	}
	bb, err := os.ReadFile(busybox)
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

// ociImage is one image of the archive writeOCIArchive writes.
type ociImage struct {
	name            string // full reference
	entrypoint, cmd []string
}

type ociBlob struct {
	mediaType string
	data      []byte
}

func (b ociBlob) digest() string {
	sum := sha256.Sum256(b.data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (b ociBlob) descriptor() map[string]any {
	return map[string]any{"mediaType": b.mediaType, "digest": b.digest(), "size": len(b.data)}
}

// writeOCIArchive writes an OCI image layout tarball (what `ctr images
// import` reads) of images that share one uncompressed layer.
func writeOCIArchive(dir, layerTar string, images []ociImage) (string, error) {
	layerData, err := os.ReadFile(layerTar)
	if err != nil {
		return "", err
	}
	layer := ociBlob{"application/vnd.oci.image.layer.v1.tar", layerData}
	blobs := []ociBlob{layer}
	var manifests []any
	for _, img := range images {
		cfg, _ := json.Marshal(map[string]any{
			"architecture": runtime.GOARCH,
			"os":           "linux",
			"config":       map[string]any{"Env": []string{"PATH=/bin"}, "Entrypoint": img.entrypoint, "Cmd": img.cmd, "WorkingDir": "/"},
			"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layer.digest()}},
		})
		cfgBlob := ociBlob{"application/vnd.oci.image.config.v1+json", cfg}
		man, _ := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        cfgBlob.descriptor(),
			"layers":        []any{layer.descriptor()},
		})
		manBlob := ociBlob{"application/vnd.oci.image.manifest.v1+json", man}
		blobs = append(blobs, cfgBlob, manBlob)
		desc := manBlob.descriptor()
		desc["platform"] = map[string]string{"architecture": runtime.GOARCH, "os": "linux"}
		desc["annotations"] = map[string]string{"io.containerd.image.name": img.name}
		manifests = append(manifests, desc)
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     manifests,
	})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte) error {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg,
			ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, bl := range blobs {
		if d := bl.digest(); !seen[d] {
			seen[d] = true
			if err := add("blobs/sha256/"+d[len("sha256:"):], bl.data); err != nil {
				return "", err
			}
		}
	}
	if err := add("index.json", index); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "images.oci.tar")
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
