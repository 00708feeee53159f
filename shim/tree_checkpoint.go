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
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
)

const dumpLog = "dump.log"

// checkpoint dumps the tree with CRIU running inside the container's pid
// and mount namespaces (from outside, CRIU would refuse the container's
// cloned mount table), entered through package setns.
func (treeKind) checkpoint(rt *Runtime, c *container, o CheckpointOptions) error {
	if err := refuse(bundle.KindTree,
		flag{"--parent-path", o.OCI.ParentPath != ""}, flag{"--empty-ns", len(o.OCI.EmptyNs) > 0},
		flag{"--manage-cgroups-mode", o.OCI.ManageCgroupsMode != ""},
	); err != nil {
		return err
	}
	if st, _ := c.ct.Status(); st == libcontainer.Paused {
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
		Tree:         c.meta.RootNsPid,
		LeaveRunning: o.LeaveRunning,
		PreDump:      o.PreDump,
	}
	st, err := c.ct.State()
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
	c.meta.ImagePath = imagePath
	if err := bundle.WriteMeta(c.dir, c.meta); err != nil {
		return err
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	// The tree is gone; the init leaves once it can take the lock.
	c.lock.Unlock()
	waitExit(c.ct)
	if c.meta.Ephemeral {
		return rt.Delete(o.ID, false)
	}
	return nil
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
