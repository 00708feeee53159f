package shim

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagedir"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/phasetrace"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
)

const dumpLog = "dump.log"

// cancelGrace is how long a cancelled CRIU (timeout, signal) gets to stop
// through its own timeout path before its process group is killed.
const cancelGrace = 5 * time.Second

// A tree checkpoint is a transaction. The new images are written into a
// staging directory beside the image directory and swapped in whole
// (internal/imagedir); a journal in the container directory says what is
// under way, and CRIU's exit status is written next to it by the process
// that waits for CRIU (internal/setns), which also holds the container's
// lock until CRIU is done. A runtime that dies at any point leaves enough
// for the next command on the container to finish the transaction or
// undo it (finishCheckpoint, called from recover).
//
// The outcome is one of: the new checkpoint replaced the old one; it did
// not and the staging directory is gone (the tree still runs, so nothing
// is lost); or the tree ended without a dump CRIU vouched for, and that
// dump is kept beside the image directory, unverified, since it may be the
// only copy of the tree's last state.

// checkpointJournal is the journal of a tree checkpoint.
type checkpointJournal struct {
	Swap imagedir.Swap `json:"swap"`
	// WorkDir is the caller's --work-path; empty: the staging directory,
	// so the log lands in the new checkpoint, or beside it if it fails.
	WorkDir      string `json:"work_dir,omitempty"`
	LeaveRunning bool   `json:"leave_running,omitempty"`
	PreDump      bool   `json:"pre_dump,omitempty"`
	// TrackMem: the dump resets the tree's soft-dirty bits, and its end
	// says what they count from (trackMem).
	TrackMem bool      `json:"track_mem,omitempty"`
	Started  time.Time `json:"started"`
	// LogFile is CRIU's log, relative to the work dir; empty: dump.log.
	LogFile string `json:"log_file,omitempty"`

	stderrText string // what CRIU printed, once it ended
	keptAt     string // where an unverified dump was kept
}

// log is CRIU's log as CRIU takes it (-o), relative to the work dir.
func (j *checkpointJournal) log() string {
	if j.LogFile != "" {
		return j.LogFile
	}
	return dumpLog
}

// logPath is where CRIU's log of the dump is while the dump runs.
func (j *checkpointJournal) logPath() string {
	if j.WorkDir != "" {
		return logPath(j.WorkDir, j.log())
	}
	return logPath(j.Swap.Staging, j.log())
}

// failedLogPath is where the log of a failed dump goes when the work dir
// was the staging directory: beside it, never over the previous
// checkpoint's log.
func (j *checkpointJournal) failedLogPath() string { return j.Swap.Path + ".failed-dump.log" }

// checkpoint dumps the tree with CRIU running inside the container's pid
// and mount namespaces (from outside, CRIU would refuse the container's
// cloned mount table), entered through package setns.
func (treeKind) checkpoint(rt *Runtime, c *container, o CheckpointOptions) error {
	if err := refuse(bundle.KindTree,
		flag{"--empty-ns", len(o.OCI.EmptyNs) > 0}, flag{"--manage-cgroups-mode", o.OCI.ManageCgroupsMode != ""},
	); err != nil {
		return err
	}
	if st, _ := c.ct.Status(); st == libcontainer.Paused {
		return fmt.Errorf("container %s is paused: resume it before a checkpoint", o.ID)
	}
	if err := checkDumpSession(c.meta.RootPid, o.CRIU.ShellJob); err != nil {
		return err
	}
	criuPath, err := rt.CRIU()
	if err != nil {
		return err
	}
	init, err := c.init()
	if err != nil {
		return ErrNotRunning
	}
	defer init.Close()

	// An incremental dump's input is checked, then the kernel, before
	// anything is made.
	var parent *treeParent
	if o.OCI.ParentPath != "" {
		if parent, err = planParent(o.ImagePath, o.OCI.ParentPath); err != nil {
			return err
		}
		if err := checkBase(c.meta, parent); err != nil {
			return err
		}
	}
	if err := refuseWithoutSoftDirty(o); err != nil {
		return err
	}

	swap, err := imagedir.Plan(o.ImagePath)
	if err != nil {
		return err
	}
	j := &checkpointJournal{Swap: *swap, LeaveRunning: o.LeaveRunning, PreDump: o.PreDump,
		TrackMem: o.incremental() != "", Started: time.Now().UTC(), LogFile: o.CRIU.LogFile}
	var work *os.File
	if o.WorkPath != "" {
		if work, err = openWorkDir(o.WorkPath, ""); err != nil {
			return err
		}
		defer work.Close()
		j.WorkDir = work.Name()
	}
	// The journal comes first: from here on, whatever happens, the next
	// command knows what to finish or undo.
	bundle.RemoveJournal(c.dir) // what a finished checkpoint may have left
	if err := bundle.WriteJournal(c.dir, j); err != nil {
		return err
	}
	crashpoint.Hit("checkpoint.after-journal")
	if err := swap.Create(); err != nil {
		bundle.RemoveJournal(c.dir)
		return fmt.Errorf("image path %s: %w", o.ImagePath, unwrapPathError(err))
	}
	crashpoint.Hit("checkpoint.after-staging")
	status, stopped, runErr := rt.runDump(c, j, init, work, criuPath, parent, o)
	j.stderrText = readSmall(filepath.Join(c.dir, bundle.CheckpointStderrFile))
	crashpoint.Hit("checkpoint.after-criu-exit")
	outcome, err := rt.finishCheckpoint(c, j, status)
	switch {
	case err != nil:
		return err
	case runErr != nil:
		return runErr
	case outcome != committed:
		return outcome.failure(o.ID, j, stopped, status)
	}
	if o.LeaveRunning || o.PreDump {
		return nil
	}
	// The tree is gone; the init leaves once it can take the lock.
	c.lock.Unlock()
	init.Wait(-1)
	crashpoint.Hit("checkpoint.after-tree-exit")
	if c.meta.Ephemeral {
		// Its janitor may be at it too: gone is as good as deleted.
		return rt.Delete(o.ID, true)
	}
	return nil
}

// runDump runs CRIU in the container's namespaces and returns its exit
// status as the waiting parent recorded it (nil if it recorded none), why
// the runtime stopped it if it did, and why it could not run it at all.
func (rt *Runtime) runDump(c *container, j *checkpointJournal, init *pidfd.Proc, work *os.File, criuPath string, parent *treeParent, o CheckpointOptions) (status *setns.Status, stopped, err error) {
	staging, err := os.Open(j.Swap.Staging)
	if err != nil {
		return nil, nil, err
	}
	defer staging.Close()
	if work == nil {
		work = staging
	}
	stderr, err := os.OpenFile(filepath.Join(c.dir, bundle.CheckpointStderrFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer stderr.Close()
	opts := criu.DumpOpts{
		Common:       criuCommon(o.CRIU, "/proc/self/fd/3", "/proc/self/fd/4", j.log()),
		Tree:         c.meta.RootNsPid,
		LeaveRunning: o.LeaveRunning,
		PreDump:      o.PreDump,
		TrackMem:     j.TrackMem,
	}
	if parent != nil {
		opts.Parent = parent.link
	}
	// Enter the init's namespaces directly, as `nsenter -p -m` would:
	// libcontainer's exec would add a Go re-exec and a cgroup migration
	// (a synchronize_rcu in cgroup v1) to every checkpoint. The waiting
	// parent gets our locked descriptor: the lock outlives us.
	cmd, err := setns.Command(setns.Options{
		Target: init, Files: []*os.File{staging, work},
		Status: c.lock.File(), StatusName: bundle.CheckpointExitFile,
		Grace: cancelGrace, Stderr: stderr,
	}, criuPath, opts.Args()...)
	if err != nil {
		return nil, nil, err
	}
	// A signal meant for us stops the dump cleanly instead of killing us
	// halfway; a timeout does the same.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	phasetrace.Mark("criu.start")
	err = cmd.Start()
	cmd.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("start criu: %w", err)
	}
	crashpoint.Hit("checkpoint.after-criu-start")
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	var timeout <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	for stopped == nil {
		select {
		case <-done:
			phasetrace.Mark("criu.end")
			return readDumpStatus(c.dir), nil, nil
		case <-timeout:
			stopped = fmt.Errorf("timed out after %v", o.Timeout)
		case sig := <-sigs:
			stopped = fmt.Errorf("interrupted by %v", sig)
		}
	}
	cmd.Cancel()
	<-done
	return readDumpStatus(c.dir), stopped, nil
}

// readDumpStatus is CRIU's exit status as the waiting parent recorded it;
// nil if it recorded none.
func readDumpStatus(dir string) *setns.Status {
	st, err := setns.ReadStatus(dir, bundle.CheckpointExitFile)
	if err != nil {
		return nil
	}
	return &st
}

// checkpointOutcome is how a checkpoint transaction ended.
type checkpointOutcome int

const (
	committed  checkpointOutcome = iota // the image dir holds the new images
	rolledBack                          // the image dir holds what it held before
	kept                                // ...and the unverified dump is kept beside it
)

// finishCheckpoint ends the transaction j: it commits the new images if
// CRIU says the dump succeeded, and otherwise undoes it, keeping the dump
// if the tree has ended. status is CRIU's exit status, nil if unknown (the
// runtime and the waiting parent were both killed). The caller holds the
// lock and nothing of the dump still runs.
func (rt *Runtime) finishCheckpoint(c *container, j *checkpointJournal, status *setns.Status) (checkpointOutcome, error) {
	ok := status != nil && status.OK()
	if status == nil {
		// Nobody recorded CRIU's verdict. Whatever of CRIU is left is
		// ours to end; then CRIU's own last log line is the verdict.
		killDumpLeftovers(c)
		ok = dumpLogSaysDone(j.logPath())
	}
	if ok {
		if err := j.Swap.Commit(); err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", c.id, err)
		}
		crashpoint.Hit("checkpoint.after-commit")
		if j.WorkDir == "" {
			os.Remove(j.failedLogPath()) // of an earlier failure, now superseded
		}
		c.meta.ImagePath = j.Swap.Path
		if j.PreDump || j.LeaveRunning {
			trackMem(c.meta, j, committed, "")
		}
		if err := bundle.WriteMeta(c.dir, c.meta); err != nil {
			return 0, err
		}
		return committed, bundle.RemoveJournal(c.dir)
	}
	// A failed CRIU lets the tree go, but may leave its cgroup frozen
	// (--freeze-cgroup); we refused to dump a paused container, so any
	// freeze is CRIU's.
	if c.ct != nil {
		if st, _ := c.ct.Status(); st == libcontainer.Paused {
			c.ct.Resume()
		}
	}
	outcome := rolledBack
	if rt.treeEnded(c) {
		// This dump may be the only copy of the tree's last state.
		var err error
		if j.keptAt, err = j.Swap.Keep(".unverified"); err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", c.id, err)
		}
		outcome = kept
	} else {
		// The tree runs on: what do its soft-dirty bits count from now?
		if trackMem(c.meta, j, rolledBack, j.logPath()) {
			if err := bundle.WriteMeta(c.dir, c.meta); err != nil {
				return 0, err
			}
		}
		if j.WorkDir == "" {
			os.Rename(j.logPath(), j.failedLogPath())
		}
		crashpoint.Hit("checkpoint.abort.after-log")
		if err := j.Swap.Abort(); err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", c.id, err)
		}
		crashpoint.Hit("checkpoint.abort.after-remove")
	}
	return outcome, bundle.RemoveJournal(c.dir)
}

// treeEnded says whether the restored tree of c is gone.
func (rt *Runtime) treeEnded(c *container) bool {
	if c.meta.RootStartTime != 0 {
		// A root CRIU sent SIGKILL to just before it was killed itself
		// has not ended yet, but will.
		root := c.root()
		return !root.Alive() || root.Dying()
	}
	p, err := c.init() // an older meta.json: the init lives as long as the tree
	if err != nil {
		return true
	}
	p.Close()
	return false
}

// failure is the error a checkpoint that did not commit returns.
func (o checkpointOutcome) failure(id string, j *checkpointJournal, stopped error, status *setns.Status) error {
	verb := "dump"
	if j.PreDump {
		verb = "pre-dump"
	}
	var err error
	switch {
	case stopped != nil:
		err = fmt.Errorf("checkpoint %s %w: criu %s was stopped", id, stopped, verb)
	case status == nil:
		err = fmt.Errorf("criu %s ended without an exit status", verb)
	default:
		err = fmt.Errorf("criu %s failed (%v)", verb, status)
	}
	if line := firstLine(j.stderr()); line != "" && stopped == nil {
		err = fmt.Errorf("%w: %s", err, line)
	}
	log := j.failedLogPath()
	if o == kept {
		return fmt.Errorf("%w, and the tree has ended: its images are kept, unverified, in %s; %s holds what it held before",
			criu.WithLog(err, logPath(j.keptAt, j.log())), j.keptAt, j.Swap.Path)
	}
	if j.WorkDir != "" {
		log = logPath(j.WorkDir, j.log())
	}
	what := "the tree runs on"
	if j.Swap.Old != (imagedir.Inode{}) {
		what += " and " + j.Swap.Path + " keeps its previous checkpoint"
	}
	return fmt.Errorf("%w; %s", criu.WithLog(err, log), what)
}

// stderr is what CRIU (or the process that started it) printed.
func (j *checkpointJournal) stderr() string { return j.stderrText }

// firstLine is the first non-empty line of s.
func firstLine(s string) string {
	s = strings.TrimSpace(s)
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// readSmall reads a file the runtime wrote for itself; "" if it cannot.
func readSmall(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[:4096]
	}
	return string(b)
}

// dumpLogSaysDone says whether CRIU's log ends with its own word that the
// dump succeeded: it prints it last, once every image is written.
func dumpLogSaysDone(path string) bool {
	lines := criu.LogTail(path, 4096)
	return strings.Contains(lines, "Dumping finished successfully") || strings.Contains(lines, "Pre-dumping finished successfully")
}

// killDumpLeftovers ends what is left of a dump whose runtime and waiting
// parent were both killed: CRIU and its helpers, a process group of their
// own (its id is in the container dir), adopted by the container's init.
// CRIU gets SIGALRM first, its own timeout path, which lets the tree go.
// Called with the container locked, so no other dump runs.
func killDumpLeftovers(c *container) {
	pgid := readPid(filepath.Join(c.dir, bundle.CheckpointCRIUPidFile))
	if pgid <= 0 {
		return
	}
	leftovers := func() []int {
		p, err := c.init()
		if err != nil {
			return nil // the namespace is gone, and everything in it
		}
		defer p.Close()
		var in []int
		for _, kid := range children(p.Pid) {
			if processGroup(kid) == pgid {
				in = append(in, kid)
			}
		}
		return in
	}
	alarmed := false
	for deadline := time.Now().Add(cancelGrace); ; time.Sleep(20 * time.Millisecond) {
		left := leftovers()
		if len(left) == 0 {
			return
		}
		leader := slices.Contains(left, pgid)
		for _, pid := range left {
			switch {
			case !leader || time.Now().After(deadline): // helpers without CRIU: nothing to wait for
				signalGroupMember(pid, pgid, unix.SIGKILL)
			case pid == pgid && !alarmed:
				signalGroupMember(pid, pgid, unix.SIGALRM)
				alarmed = true
			}
		}
	}
}
