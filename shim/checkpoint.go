package shim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim/setns"
)

// CheckpointOptions describe a dump of a restored tree.
type CheckpointOptions struct {
	ID           string
	ImagePath    string
	WorkPath     string // default: ImagePath
	LeaveRunning bool
	// PreDump saves memory only, for a later incremental dump; the tree
	// keeps running. (The kernel needs soft-dirty tracking for it.)
	PreDump bool
	CRIU    CRIUOptions
	OCI     OCICRIUOptions // containers from a bundle only
}

const dumpLog = "dump.log"

// Checkpoint dumps the container's tree with CRIU running inside the
// container's pid and mount namespaces (from outside, CRIU would refuse
// the container's cloned mount table), entered through package setns. The images replace those in
// ImagePath only once the dump succeeded; on failure the tree keeps
// running and the old images stay as they were.
func (rt *Runtime) Checkpoint(o CheckpointOptions) error {
	lock, err := rt.Root.Lock(o.ID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	meta, ct, err := rt.running(lock.Dir, o.ID)
	if err != nil {
		return err
	}
	if o.ImagePath == "" {
		return fmt.Errorf("image path is empty")
	}
	if meta.Bundle != "" {
		return rt.checkpointBundle(lock.Dir, ct, o)
	}
	if o.OCI.set() {
		return fmt.Errorf("--parent-path, --empty-ns and --manage-cgroups-mode apply to containers created from a bundle; pass CRIU options after -- instead")
	}
	if st, _ := ct.Status(); st == libcontainer.Paused {
		return fmt.Errorf("container %s is paused: resume it before a checkpoint", o.ID)
	}
	imagePath, err := filepath.Abs(o.ImagePath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(imagePath, 0o700); err != nil {
		return fmt.Errorf("image path %s: %w", o.ImagePath, unwrapPathError(err))
	}
	work, err := openWorkDir(o.WorkPath, imagePath)
	if err != nil {
		return err
	}
	defer work.Close()

	// Dump into a fresh directory beside the old images, so a failed
	// dump leaves them untouched.
	staging, err := os.MkdirTemp(imagePath, ".criu-ns-dump-")
	if err != nil {
		return fmt.Errorf("image path %s: %w", o.ImagePath, unwrapPathError(err))
	}
	defer os.RemoveAll(staging)
	stagingDir, err := os.Open(staging)
	if err != nil {
		return err
	}
	defer stagingDir.Close()

	criuPath, err := rt.CRIU()
	if err != nil {
		return err
	}
	opts := criu.DumpOpts{
		Common:       criuCommon(o.CRIU, "/proc/self/fd/3", "/proc/self/fd/4", dumpLog),
		Tree:         meta.RootNsPid,
		LeaveRunning: o.LeaveRunning,
		PreDump:      o.PreDump,
	}
	st, err := ct.State()
	if err != nil {
		return err
	}
	// Enter the init's namespaces directly, as `nsenter -p -m` would:
	// libcontainer's exec would add a Go re-exec and a cgroup migration
	// (a synchronize_rcu in cgroup v1) to every checkpoint.
	cmd, err := setns.Command(st.InitProcessPid, []*os.File{stagingDir, work}, criuPath, opts.Args()...)
	if err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	cmd.Close()
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		err = fmt.Errorf("criu %s failed (%w)", opts.Args()[0], err)
		if line := strings.TrimSpace(stderr.String()); line != "" {
			err = fmt.Errorf("%w: %s", err, strings.SplitN(line, "\n", 2)[0])
		}
		return criu.WithLog(err, filepath.Join(work.Name(), dumpLog))
	}
	if err := replaceImages(imagePath, staging); err != nil {
		return err
	}
	meta.ImagePath = imagePath
	if err := bundle.WriteMeta(lock.Dir, meta); err != nil {
		return err
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	// The tree is gone; the init leaves once it can take the lock.
	lock.Unlock()
	waitExit(ct)
	if meta.Ephemeral {
		return rt.Delete(o.ID, false)
	}
	return nil
}

// running loads a container that must be running (or paused).
func (rt *Runtime) running(dir, id string) (*bundle.Meta, *libcontainer.Container, error) {
	meta, err := bundle.ReadMeta(dir)
	if err != nil {
		return nil, nil, err
	}
	ct, err := load(dir, id)
	if err != nil {
		return nil, nil, err
	}
	status, err := ct.Status()
	if err != nil {
		return nil, nil, err
	}
	if status != libcontainer.Running && status != libcontainer.Paused {
		return nil, nil, ErrNotRunning
	}
	return meta, ct, nil
}

// replaceImages moves the new images from staging into dir and removes
// the old images the new dump did not rewrite.
func replaceImages(dir, staging string) error {
	fresh, err := os.ReadDir(staging)
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, e := range fresh {
		keep[e.Name()] = true
		if err := os.Rename(filepath.Join(staging, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.img"))
	for _, f := range old {
		if !keep[filepath.Base(f)] {
			os.Remove(f)
		}
	}
	return nil
}

// waitExit waits until the container's init has exited.
func waitExit(ct *libcontainer.Container) {
	st, err := ct.State()
	if err != nil || st.InitProcessPid == 0 {
		return
	}
	fd, err := unix.PidfdOpen(st.InitProcessPid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(pfd, -1); !errors.Is(err, unix.EINTR) {
			return
		}
	}
}
