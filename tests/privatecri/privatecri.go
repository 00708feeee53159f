// Package privatecri runs a containerd 2.x with its CRI plugin of one's
// own, the kubelet's path to a runtime, for the e2e tests and the bench's
// CRI rows. Its root, state, sockets, temporary files, the runtimes'
// roots, pod logs and CNI directories live in one directory, and it runs
// no NRI, debug or metrics listener, so it shares nothing with another
// containerd on the machine. Pods run on the host's network (no CNI), and
// their sandbox image is pinned: nothing is ever pulled.
//
// It writes the configuration, starts and stops the daemon, and removes
// what the daemon's shims leave outside its directory. Driving it with
// crictl, and how a leftover is reported, stay with its users.
package privatecri

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/leftovers"
)

// The versions scripts/install-cri-tools.sh builds, and where.
const (
	ContainerdVersion = "2.3.7"
	CrictlVersion     = "v1.34.0"
	DefaultBinDir     = "/var/cache/criu-ns-runtime/cri-containerd-v" + ContainerdVersion + "-crictl-" + CrictlVersion + "/bin"
)

// Namespace is containerd's namespace of CRI objects.
const Namespace = "k8s.io"

// MissingTools names the tools of binDir (containerd, its runc shim, ctr,
// crictl) that are absent or of another version, as "NAME VERSION in DIR".
func MissingTools(binDir string) []string {
	var missing []string
	for _, t := range []struct{ name, arg, want string }{
		{"containerd", "--version", " " + ContainerdVersion + " "},
		{"containerd-shim-runc-v2", "-v", ContainerdVersion},
		{"ctr", "--version", ContainerdVersion},
		{"crictl", "--version", CrictlVersion},
	} {
		out, err := exec.Command(filepath.Join(binDir, t.name), t.arg).CombinedOutput()
		if err != nil || !strings.Contains(string(out), t.want) {
			missing = append(missing, fmt.Sprintf("%s %s in %s", t.name, strings.TrimSpace(t.want), binDir))
		}
	}
	return missing
}

// Handler is a CRI runtime handler: containerd's runc shim running Binary
// as its OCI runtime.
type Handler struct {
	Name   string // what `crictl runp --runtime NAME` asks for
	Binary string // the shim's BinaryName
	Root   string // the shim's Root: Binary runs with --root ROOT/k8s.io
}

// Config is what a private containerd is made of.
type Config struct {
	Dir        string    // where all of its state lives
	BinDir     string    // containerd, containerd-shim-runc-v2, ctr and crictl
	PauseImage string    // the pods' sandbox image, which the caller imports
	Handlers   []Handler // the first is the default
}

// Daemon is a private containerd: configured by New, run by Start.
type Daemon struct {
	Config
	Sock         string // containerd's gRPC socket, CRI's too
	ConfigFile   string // its config.toml
	CrictlConfig string // crictl --config CRICTLCONFIG talks to this daemon
	LogFile      string // its stdout and stderr
	pods         int    // PodConfigs so far
	cmd          *exec.Cmd
	done         chan struct{} // closed once containerd has exited
	waitErr      error
	// The shims' directories that did not exist yet: Cleanup removes
	// them if they are empty.
	newDirs []string
	// containerd's cgroup parent for containers without one (/k8s.io),
	// where it did not exist yet: containerd leaves it behind.
	newK8s []string
}

// New makes c.Dir's layout and writes config.toml and crictl.yaml into it.
// It notes which of the directories the shims make outside c.Dir exist
// already, for Cleanup.
func New(c Config) (*Daemon, error) {
	if len(c.Handlers) == 0 {
		return nil, fmt.Errorf("privatecri: no runtime handler")
	}
	d := &Daemon{Config: c, Sock: filepath.Join(c.Dir, "containerd.sock"),
		ConfigFile: filepath.Join(c.Dir, "config.toml"), CrictlConfig: filepath.Join(c.Dir, "crictl.yaml"),
		LogFile: filepath.Join(c.Dir, "containerd.log")}
	for _, dir := range []string{"/run/containerd/s", "/run/containerd"} {
		if _, err := os.Stat(dir); err != nil {
			d.newDirs = append(d.newDirs, dir)
		}
	}
	for _, h := range leftovers.CgroupHierarchies() {
		if _, err := os.Stat(filepath.Join(h, Namespace)); err != nil {
			d.newK8s = append(d.newK8s, filepath.Join(h, Namespace))
		}
	}
	for _, sub := range []string{"tmp", "opt", "cni/bin", "cni/conf", "logs"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, sub), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(d.ConfigFile, []byte(d.configTOML()), 0o644); err != nil {
		return nil, err
	}
	crictl := fmt.Sprintf("runtime-endpoint: unix://%[1]s\nimage-endpoint: unix://%[1]s\ntimeout: 120\n", d.Sock)
	if err := os.WriteFile(d.CrictlConfig, []byte(crictl), 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Daemon) configTOML() string {
	const cri = "plugins.'io.containerd.cri.v1.runtime'"
	var handlers strings.Builder
	for _, h := range d.Handlers {
		fmt.Fprintf(&handlers, `    [%[1]s.containerd.runtimes.%[2]s]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = %[3]q
      [%[1]s.containerd.runtimes.%[2]s.options]
        BinaryName = %[4]q
        Root = %[5]q
        # no systemd here
        SystemdCgroup = false
`, cri, h.Name, d.Tool("containerd-shim-runc-v2"), h.Binary, h.Root)
	}
	return fmt.Sprintf(`version = 3
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
    default_runtime_name = %[10]q
%[11]s
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, filepath.Join(d.Dir, "root"), filepath.Join(d.Dir, "state"), filepath.Join(d.Dir, "tmp"), d.Sock,
		filepath.Join(d.Dir, "opt"), d.PauseImage, cri, filepath.Join(d.Dir, "cni/bin"), filepath.Join(d.Dir, "cni/conf"),
		d.Handlers[0].Name, handlers.String())
}

// NamespaceMode is CRI's: whose namespace a pod's container is in.
type NamespaceMode int

const (
	NamespacePod       NamespaceMode = 0 // shared by the pod's containers
	NamespaceContainer NamespaceMode = 1 // the container's own
	NamespaceNode      NamespaceMode = 2 // the host's
)

// PodConfig is a PodSandboxConfig, what `crictl runp` reads: a pod named
// name in the Kubernetes namespace ns, with a uid of its own, its logs in
// Dir/logs/name, its cgroups below cgParent, on the host's network (no
// CNI), and its containers' pid namespace mode pid.
func (d *Daemon) PodConfig(name, ns, cgParent string, pid NamespaceMode) map[string]any {
	d.pods++
	return map[string]any{
		"metadata":      map[string]any{"name": name, "namespace": ns, "uid": fmt.Sprintf("uid-%s-%d", name, d.pods), "attempt": 0},
		"log_directory": filepath.Join(d.Dir, "logs", name),
		"linux": map[string]any{
			"cgroup_parent": cgParent,
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": NamespaceNode, "pid": pid},
			},
		},
	}
}

// ContainerConfig is a ContainerConfig, what `crictl create` reads: a
// container named name from image (an image's name, or a checkpoint
// archive to restore) on the host's network, in pid namespace mode pid,
// its log in the pod's log directory. A command replaces the image's.
func ContainerConfig(name, image string, pid NamespaceMode, command ...string) map[string]any {
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"log_path": name + ".log",
		"linux": map[string]any{
			"security_context": map[string]any{
				"namespace_options": map[string]any{"network": NamespaceNode, "pid": pid},
			},
		},
	}
	if len(command) > 0 {
		cfg["command"] = command
	}
	return cfg
}

// Tool is the path of one of BinDir's tools.
func (d *Daemon) Tool(name string) string { return filepath.Join(d.BinDir, name) }

// Start starts containerd, with args after --config, in a session of its
// own, its output going to LogFile. It returns once containerd runs, not
// once it listens.
func (d *Daemon) Start(args ...string) error {
	logf, err := os.Create(d.LogFile)
	if err != nil {
		return err
	}
	cmd := exec.Command(d.Tool("containerd"), append([]string{"--config", d.ConfigFile}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Shims inherit the environment: their temporary files stay here
	// too, and they find this containerd's tools before Debian's.
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(d.Dir, "tmp"), "PATH="+d.BinDir+":"+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting containerd: %w", err)
	}
	d.cmd, d.done = cmd, make(chan struct{})
	go func() { d.waitErr = cmd.Wait(); logf.Close(); close(d.done) }()
	return nil
}

// Started says whether Start started containerd.
func (d *Daemon) Started() bool { return d.cmd != nil }

// ImportImages imports an OCI archive (ociarchive's) into CRI's namespace
// with ctr, then waits until CRI lists every one of refs: CRI's image
// store learns of an import from containerd's events, after ctr has
// returned, and a pod or container created before that finds no image.
// timeout bounds it all.
func (d *Daemon) ImportImages(archive string, timeout time.Duration, refs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if out, err := exec.CommandContext(ctx, d.Tool("ctr"), "--address", d.Sock, "--namespace", Namespace,
		"images", "import", archive).CombinedOutput(); err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", archive, err, strings.TrimSpace(string(out)))
	}
	for {
		out, err := exec.CommandContext(ctx, d.Tool("crictl"), "--config", d.CrictlConfig, "images", "--output", "json").Output()
		missing := refs
		if err == nil {
			missing = missingRefs(out, refs)
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRI does not list %s %v after importing them (crictl images: %v)\n%s",
				strings.Join(missing, ", "), timeout, err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// missingRefs are those of refs that `crictl images --output json`'s
// output does not tag any image with.
func missingRefs(crictlImages []byte, refs []string) []string {
	var list struct {
		Images []struct {
			RepoTags []string `json:"repoTags"`
		} `json:"images"`
	}
	if json.Unmarshal(crictlImages, &list) != nil {
		return refs
	}
	tagged := map[string]bool{}
	for _, img := range list.Images {
		for _, t := range img.RepoTags {
			tagged[t] = true
		}
	}
	var missing []string
	for _, r := range refs {
		if !tagged[r] {
			missing = append(missing, r)
		}
	}
	return missing
}

// Exited says whether containerd has exited, and how.
func (d *Daemon) Exited() (bool, error) {
	if d.cmd == nil {
		return false, nil
	}
	select {
	case <-d.done:
		return true, d.waitErr
	default:
		return false, nil
	}
}

// Stop ends containerd with SIGTERM, or SIGKILL after grace, which is
// then an error. It leaves the shims to exit once their containers are
// gone. Without a Start it does nothing.
func (d *Daemon) Stop(grace time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
		d.cmd.Process.Kill()
		<-d.done
		return fmt.Errorf("containerd did not exit on SIGTERM in %v; killed", grace)
	}
}

// Log is what containerd has written so far.
func (d *Daemon) Log() string {
	data, _ := os.ReadFile(d.LogFile)
	return string(data)
}

// Cleanup removes, once containerd and its shims are gone, what they made
// outside Dir and that nobody else removes, and returns what of it was
// left behind: the shims' sockets of the pods and containers ids
// ("shim socket PATH"), containerd's cgroup parent for containers without
// one ("cgroup PATH"), and the runtimes' records below the handlers'
// roots ("runtime state in ROOT: IDS", not removed). The shims' directory
// goes too if Cleanup found it missing and it is empty now; it is not a
// leftover: another containerd may use it by now.
func (d *Daemon) Cleanup(ids []string) []string {
	var left []string
	// /run/containerd/s/<sha256 of address/namespace/id[/debug]>.
	for _, id := range ids {
		for _, p := range []string{filepath.Join(d.Sock, Namespace, id), filepath.Join(d.Sock, Namespace, id, "debug")} {
			s := fmt.Sprintf("/run/containerd/s/%x", sha256.Sum256([]byte(p)))
			if _, err := os.Lstat(s); err == nil {
				left = append(left, "shim socket "+s)
				os.Remove(s)
			}
		}
	}
	for _, k := range d.newK8s {
		if _, err := os.Stat(k); err == nil {
			left = append(left, "cgroup "+k)
			os.Remove(k)
		}
	}
	for _, h := range d.Handlers {
		if ents, err := os.ReadDir(filepath.Join(h.Root, Namespace)); err == nil && len(ents) > 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			left = append(left, fmt.Sprintf("runtime state in %s: %s", h.Root, strings.Join(names, " ")))
		}
	}
	for _, dir := range d.newDirs {
		os.Remove(dir) // only if empty
	}
	return left
}
