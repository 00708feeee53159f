package shim

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
)

// A command can die anywhere (killed, out of memory, the machine's admin
// at the wrong moment). What it leaves half-done in a container, the
// next command that takes the container's lock finishes or undoes before
// doing its own work, and says which:
//   - a tree restore that never recorded its tree (meta.json still in
//     PhaseRestoring): if the tree runs, it is recorded; otherwise the
//     container stays, reported stopped, until it is deleted;
//   - a tree checkpoint that never committed or rolled back (a journal in
//     the container dir): see finishCheckpoint.
// state and list do it too when the lock is free, so they report what is
// true rather than what a dead command meant to do.

// recover finishes what a command that died left in c; the caller holds
// c's lock and c's files are readable.
func (rt *Runtime) recover(c *container) error {
	if c.meta.Kind == bundle.KindTree && c.meta.Restoring() {
		if err := rt.recoverRestore(c); err != nil {
			return err
		}
	}
	var j checkpointJournal
	switch err := bundle.ReadJournal(c.dir, &j); {
	case errors.Is(err, bundle.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("container %s: %w", c.id, err)
	}
	status := readDumpStatus(c.dir)
	j.stderrText = readSmall(filepath.Join(c.dir, bundle.CheckpointStderrFile))
	outcome, err := rt.finishCheckpoint(c, &j, status)
	if err != nil {
		return err
	}
	rt.notify(outcome.recovered(c.id, &j, status))
	return nil
}

// recoverRestore records the tree of a restore that died after CRIU had
// restored it: CRIU wrote the root's pid (in the container's namespace)
// into the container dir, and the root is a child of the init.
func (rt *Runtime) recoverRestore(c *container) error {
	init, err := c.init()
	if err != nil {
		return nil // nothing runs: the container is stopped
	}
	defer init.Close()
	nsPid := readPid(filepath.Join(c.dir, rootPidFile))
	if nsPid <= 0 {
		return nil
	}
	host, err := descendantWithNsPid(init.Pid, nsPid)
	if err != nil {
		return nil
	}
	root, err := pidfd.Of(host)
	if err != nil {
		return nil
	}
	c.meta.Phase = bundle.PhaseReady
	c.meta.RootPid, c.meta.RootNsPid, c.meta.RootStartTime = root.Pid, nsPid, root.StartTime
	if err := bundle.WriteMeta(c.dir, c.meta); err != nil {
		return err
	}
	rt.notify(fmt.Sprintf("the restore of %s had not finished, but its tree runs: recorded its root, pid %d", c.id, root.Pid))
	return nil
}

// recovered says what finishing a dead command's checkpoint did.
func (o checkpointOutcome) recovered(id string, j *checkpointJournal, status *setns.Status) string {
	what := "criu's exit status is unknown"
	if status != nil {
		what = "criu: " + status.String()
	}
	switch o {
	case committed:
		return fmt.Sprintf("finished the checkpoint of %s that a killed command left (%s): %s holds the new images", id, what, j.Swap.Path)
	case kept:
		return fmt.Sprintf("the checkpoint of %s that a killed command left did not finish (%s) and the tree has ended: its images are kept, unverified, in %s; %s holds what it held before", id, what, j.keptAt, j.Swap.Path)
	}
	return fmt.Sprintf("rolled back the checkpoint of %s that a killed command left (%s): the tree runs on; %s holds what it held before", id, what, j.Swap.Path)
}

// reasonStopped says why a container whose restore never finished is
// stopped, for state's annotation.
func reasonStopped(c *container) string {
	switch {
	case c.meta == nil:
		return "its restore ended before it wrote anything; delete removes it"
	case c.meta.Restoring():
		return "its restore ended before the tree ran; delete removes it"
	}
	return ""
}
