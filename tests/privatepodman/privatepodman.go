// Package privatepodman sets up a podman of one's own: its storage,
// database, events and temporary files live in one directory, and it
// reads no containers.conf or storage.conf of the machine's. The e2e
// tests and the bench's podman rows each run one, so they neither see nor
// touch the machine's podman state. It only writes the configuration;
// what the podman runs, and cleaning up after it, stay with its users.
package privatepodman

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Runtime is an OCI runtime podman knows by name.
type Runtime struct {
	Name, Path string
}

// Engine is what differs between the users: which runtimes podman knows.
type Engine struct {
	// Default is engine.runtime, the name of the runtime podman runs
	// unless told otherwise; "" leaves podman's own default, for users
	// that name a runtime in every command (--runtime NAME or PATH).
	Default string
	// Runtimes are the [engine.runtimes] entries: NAME = [PATH].
	Runtimes []Runtime
	// SupportsJSON are the names (or paths) in runtime_supports_json:
	// runtimes that podman may ask for JSON (runc's `list --format json`).
	SupportsJSON []string
	// FileLocks takes podman's locks from files in its tmp_dir instead
	// of the machine-wide /dev/shm/libpod_lock that every podman shares.
	FileLocks bool
}

// Podman is how to run the podman that Setup configured.
type Podman struct {
	Dir  string
	Env  []string // os.Environ() with this podman's config files and directories
	Args []string // global flags that come before every command
}

// Setup writes containers.conf and storage.conf into dir and makes the
// directories they name: root (storage and libpod's database), runroot
// (conmon's sockets; podman refuses one longer than 50 characters, so dir
// must be short) and tmp.
func Setup(dir string, e Engine) (*Podman, error) {
	root, runroot, tmp := filepath.Join(dir, "root"), filepath.Join(dir, "runroot"), filepath.Join(dir, "tmp")
	for _, d := range []string{root, runroot, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	var engine strings.Builder
	fmt.Fprintf(&engine, "cgroup_manager = %q\n", "cgroupfs")
	fmt.Fprintf(&engine, "events_logger = %q\n", "file")
	fmt.Fprintf(&engine, "events_logfile_path = %q\n", filepath.Join(dir, "events.log"))
	if e.FileLocks {
		fmt.Fprintf(&engine, "lock_type = %q\n", "file")
	}
	if e.Default != "" {
		fmt.Fprintf(&engine, "runtime = %q\n", e.Default)
	}
	fmt.Fprintf(&engine, "runtime_supports_json = %s\n", tomlList(e.SupportsJSON...))
	fmt.Fprintf(&engine, "tmp_dir = %q\n", tmp)
	fmt.Fprintf(&engine, "static_dir = %q\n", filepath.Join(root, "libpod"))
	fmt.Fprintf(&engine, "volume_path = %q\n", filepath.Join(root, "volumes"))
	if len(e.Runtimes) > 0 {
		engine.WriteString("\n[engine.runtimes]\n")
		for _, r := range e.Runtimes {
			fmt.Fprintf(&engine, "%s = %s\n", r.Name, tomlList(r.Path))
		}
	}
	conf := `[containers]
netns = "none"
cgroupns = "host"
log_driver = "k8s-file"
# root here lacks CAP_SYS_RESOURCE: keep rlimits at or below the current hard limits
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
` + engine.String()
	storage := fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n", root, runroot)
	confPath, storagePath := filepath.Join(dir, "containers.conf"), filepath.Join(dir, "storage.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(storagePath, []byte(storage), 0o644); err != nil {
		return nil, err
	}
	return &Podman{
		Dir: dir,
		Env: append(os.Environ(), "CONTAINERS_CONF="+confPath, "CONTAINERS_STORAGE_CONF="+storagePath,
			"TMPDIR="+tmp, "XDG_RUNTIME_DIR="+runroot),
		Args: []string{"--root", root, "--runroot", runroot, "--tmpdir", tmp,
			"--cgroup-manager", "cgroupfs", "--events-backend", "file"},
	}, nil
}

// tomlList is a TOML array of strings.
func tomlList(items ...string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
