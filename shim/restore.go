package shim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// RestoreOptions describe a restore into a new container.
type RestoreOptions struct {
	// Kind is what the new container is: KindTree restores a plain
	// process tree under our init; KindBundle makes a container of a
	// manager's bundle and restores it through libcontainer, as runc does.
	Kind      bundle.Kind
	ID        string
	ImagePath string
	WorkPath  string // default: ImagePath
	// PidFile gets the restored root's host pid (tree kind) or the
	// container init's (bundle kind).
	PidFile string
	// Detach returns once the tree runs; otherwise the caller Waits.
	Detach bool
	// NoSubreaper: a foreground bundle restore does not make itself the
	// subreaper of the container's orphans (tree containers have their
	// own init, which reaps them).
	NoSubreaper bool
	LazyPages   bool
	CRIU        CRIUOptions

	// Timeout bounds CRIU's run (zero: no bound): on expiry CRIU is
	// killed, with everything the restore made.
	Timeout time.Duration

	// Tree kind only.
	Ephemeral bool // the container is deleted once its tree ends (criu-ns mode)
	Stdio     bool // the init and CRIU get the caller's stdio, else /dev/null
	// RPC, if set, has the init serve CRIU's RPC protocol instead of
	// running `criu restore`: the images come with the request, and
	// ImagePath is only recorded (criu-ns swrk mode, tree_rpc.go).
	RPC *RPCRestore
	// LazyPagesFrom, with LazyPages, is a socket connected to a
	// migration source's page server: the pages come through it instead
	// of from the images (see Receive).
	LazyPagesFrom *os.File

	// Bundle kind only.
	Bundle BundleOptions
	OCI    OCICRIUOptions
}

// Restored is a new container whose processes run.
type Restored struct {
	ID        string
	RootPid   int // tree kind: host pid of the restored root
	RootNsPid int // tree kind: its pid in the container
	process   *libcontainer.Process
	rt        *Runtime
	janitor   *os.File  // an ephemeral container's janitor waits for it to close
	job       *shellJob // tree kind, --shell-job: the caller's side
}

// Restore restores the images into a new container of kind o.Kind and
// returns once its processes run, or with CRIU's own errors if they do
// not. On failure nothing is left behind.
func (rt *Runtime) Restore(o RestoreOptions) (*Restored, error) {
	ops, err := opsOf(o.Kind)
	if err != nil {
		return nil, err
	}
	return ops.restore(rt, o)
}

// Wait forwards sigs to the container until its processes exit, then
// deletes the container and returns the exit code (128+n for signal n),
// as `runc run` does in the foreground.
func (r *Restored) Wait(sigs <-chan os.Signal) (int, error) {
	var code int
	var err error
	if r.job.controls() {
		code = r.job.wait(r.process, sigs)
		err = r.rt.Delete(r.ID, true)
	} else {
		code, err = r.rt.waitAndDelete(r.ID, r.process, sigs)
	}
	if r.janitor != nil {
		r.janitor.Close()
	}
	return code, err
}

// exitCodeOf is a process's exit code, 128+n if signal n killed it.
func exitCodeOf(st *os.ProcessState) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(unix.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// imageDir returns the absolute path of an image dir that must hold CRIU
// images.
func imageDir(imagePath string) (string, error) {
	if imagePath == "" {
		return "", fmt.Errorf("image path is empty")
	}
	abs, err := filepath.Abs(imagePath)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("image path %s: %w", imagePath, unwrapPathError(err))
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("image path %s is not a directory", imagePath)
	}
	if _, err := os.Stat(filepath.Join(abs, "inventory.img")); err != nil {
		return "", fmt.Errorf("image path %s holds no CRIU images (no inventory.img)", imagePath)
	}
	return abs, nil
}

// openWorkDir opens (creating it if needed) the work dir, def if empty.
func openWorkDir(workPath, def string) (*os.File, error) {
	if workPath == "" {
		workPath = def
	}
	abs, err := filepath.Abs(workPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("work path %s: %w", workPath, unwrapPathError(err))
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("work path %s: %w", workPath, unwrapPathError(err))
	}
	return f, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// writePidFile writes pid atomically, as runc does.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp, path)
}
