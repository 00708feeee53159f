package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/nsinit"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
)

// shellJob is the caller's side of a shell-job restore (--shell-job of a
// tree). The job must join the session the caller's terminal belongs to,
// which the container's init cannot give it (internal/nsinit/shelljob.go
// says why), so CRIU runs in a job host that this process starts inside
// the container, from its own session. While a foreground restore waits,
// it keeps the terminal's job control working: the job is the terminal's
// foreground group while it runs, Ctrl-Z stops it and this process (so
// the shell sees its job stop), fg and bg resume it, and the terminal goes
// back to this process's group when the job ends.
type shellJob struct {
	// ownSession: stdin is a terminal, but not the caller's controlling
	// terminal; the job gets a session of its own with it.
	ownSession bool
	// tty is set when stdin is the caller's controlling terminal: the
	// job then is a job of the caller's session on that terminal.
	tty bool
	// startFg is the terminal's foreground group when the restore began.
	startFg int

	hostReportR, hostReportW *os.File // job host → init
	eventsR, eventsW         *os.File // job host → us
	cfg                      []byte   // the init's Config, JSON

	root, pgrp int // the restored root's host pid and its process group
	// inSession: the job is in the caller's session (its root led no
	// session of its own), so it can be the terminal's foreground group.
	inSession bool
}

// newShellJob looks at the caller's stdin and makes the job host's pipes.
func newShellJob() (*shellJob, error) {
	j := &shellJob{}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		sid, err := unix.IoctlGetInt(0, unix.TIOCGSID)
		own, _ := unix.Getsid(0)
		if err == nil && sid == own {
			j.tty = true
			j.startFg, _ = unix.IoctlGetInt(0, unix.TIOCGPGRP)
		} else {
			j.ownSession = true
		}
	}
	var err error
	if j.hostReportR, j.hostReportW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if j.eventsR, j.eventsW, err = os.Pipe(); err != nil {
		j.close()
		return nil, err
	}
	return j, nil
}

// config is the init's and the job host's part of the shell job: the
// init gets the job host's report after the directories (launch), the
// job host its events pipe there (spawnJobHost).
func (j *shellJob) config(cfg *nsinit.Config) *nsinit.ShellJob {
	return &nsinit.ShellJob{
		OwnSession:   j.ownSession,
		HostReportFd: nsinit.DirFds + cfg.Dirs,
		EventsFd:     nsinit.DirFds + cfg.Dirs,
	}
}

// close closes what is still open of the pipes.
func (j *shellJob) close() {
	for _, f := range []*os.File{j.hostReportR, j.hostReportW, j.eventsR, j.eventsW} {
		if f != nil {
			f.Close()
		}
	}
}

// spawnJobHost starts the job host inside container ct, whose init has
// just started, and hands it what the init would have had: the report
// pipe (to the init), the container directory, the image and work
// directories, and the events pipe.
func (r *treeRestore) spawnJobHost(ct *libcontainer.Container) error {
	j := r.job
	j.hostReportR.Close() // the init has its copy
	j.hostReportR = nil
	st, err := ct.State()
	if err != nil {
		return err
	}
	var cgroups []string
	for _, p := range st.CgroupPaths {
		cgroups = append(cgroups, p)
	}
	ref, err := pidfd.Of(st.InitProcessPid)
	if err != nil {
		return err
	}
	init, err := ref.Open()
	if err != nil {
		return err
	}
	defer init.Close()
	dir, err := os.Open(r.lock.Dir)
	if err != nil {
		return err
	}
	defer dir.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), nsinit.ConfigEnv + "=" + string(j.cfg)}
	extra := []*os.File{j.hostReportW, dir, r.images, r.work, j.eventsW}
	cmd, err := setns.Spawn(init, cgroups, extra, env, r.rt.Self, nsinit.JobHostArg, r.o.ID)
	if err != nil {
		return err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	r.onUndo(j.restoreTerminal)
	err = cmd.Run()
	cmd.Close()
	j.hostReportW.Close()
	j.eventsW.Close()
	j.hostReportW, j.eventsW = nil, nil
	if err != nil {
		return fmt.Errorf("start the shell job's host in the container: %w", err)
	}
	return nil
}

// jobConfig adds the shell job to the init's config and keeps the JSON
// for the job host.
func (r *treeRestore) jobConfig(cfg *nsinit.Config) ([]byte, error) {
	if r.job != nil {
		cfg.ShellJob = r.job.config(cfg)
	}
	b, err := json.Marshal(cfg)
	if r.job != nil {
		r.job.cfg = b
	}
	return b, err
}

// restored records the job's root once the restore succeeded and, unless
// the caller waits for the job in the foreground of its terminal, gives
// the terminal back to whoever had it: CRIU makes the job the terminal's
// foreground group, and a detached job (or one restored from the
// background) must run in the background instead.
func (j *shellJob) restored(rootPid int, foreground bool) {
	j.root = rootPid
	j.pgrp, _ = unix.Getpgid(rootPid)
	sid, _ := unix.Getsid(rootPid)
	own, _ := unix.Getsid(0)
	j.inSession = sid == own
	if !foreground || j.startFg != unix.Getpgrp() {
		j.toBackground()
	}
	if !foreground || !j.tty {
		j.eventsR.Close() // no job control: the job host's events are dropped
		j.eventsR = nil
	}
}

// toBackground makes the job a background job of the terminal, if it
// has the terminal. The kernel checks job control when a read starts, so
// a read the job began in the foreground would go on taking what is
// typed for the shell: stopping and continuing the job restarts it, in
// the background (where it stops the job with SIGTTIN, as it should).
func (j *shellJob) toBackground() {
	if !j.tty || j.pgrp == 0 || foregroundGroup() != j.pgrp {
		return
	}
	setForeground(j.startFg)
	unix.Kill(-j.pgrp, unix.SIGSTOP)
	// SIGCONT would cancel a SIGSTOP the job has not acted on yet: wait
	// for the job host to see it stop.
	j.eventsR.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	for {
		if n, err := j.eventsR.Read(b); n == 0 || err != nil || b[0] == nsinit.JobStopped {
			break
		}
	}
	j.eventsR.SetReadDeadline(time.Time{})
	unix.Kill(-j.pgrp, unix.SIGCONT)
}

// restoreTerminal gives the terminal's foreground back to the group that
// had it when the restore began (a failed restore: CRIU may have made a
// job that is gone the foreground group).
func (j *shellJob) restoreTerminal() {
	if j.tty && foregroundGroup() != j.startFg {
		setForeground(j.startFg)
	}
}

// controls says whether Wait runs the job control loop: the job is a job
// of the caller's session on its terminal.
func (j *shellJob) controls() bool { return j != nil && j.eventsR != nil }

// wait is the foreground end of a shell-job restore: it waits for the
// container's init as waitProcess does, forwarding sigs, and meanwhile
// keeps the terminal's job control working.
func (j *shellJob) wait(p *libcontainer.Process, sigs <-chan os.Signal) int {
	defer j.eventsR.Close()
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := p.Wait()
		done <- st
	}()
	// Terminal signals reach us, not the job, when the job is not the
	// terminal's foreground group (a root that leads its own session has
	// no controlling terminal).
	ctl := make(chan os.Signal, 8)
	signal.Notify(ctl, unix.SIGTSTP, unix.SIGCONT, unix.SIGWINCH)
	defer signal.Stop(ctl)
	events := make(chan byte, 8)
	go func() {
		b := make([]byte, 1)
		for {
			if n, err := j.eventsR.Read(b); n == 0 || err != nil {
				return
			}
			events <- b[0]
		}
	}()
	for {
		select {
		case sig := <-sigs:
			p.Signal(sig)
		case sig := <-ctl:
			switch sig {
			case unix.SIGTSTP:
				// SIGSTOP: the kernel ignores Ctrl-Z's SIGTSTP in a
				// job whose group has no parent in its session.
				unix.Kill(-j.pgrp, unix.SIGSTOP)
			case unix.SIGWINCH:
				unix.Kill(-j.pgrp, unix.SIGWINCH)
			case unix.SIGCONT:
				// fg gives us the terminal before it continues us, bg
				// does not: in the foreground, hand it on to the job.
				if j.inSession && foregroundGroup() == unix.Getpgrp() {
					setForeground(j.pgrp)
				}
				unix.Kill(-j.pgrp, unix.SIGCONT)
			}
		case ev := <-events:
			if ev != nsinit.JobStopped {
				continue
			}
			// The job stopped (Ctrl-Z, or SIGTTIN in the background):
			// stop too, with the terminal back in our group, so the
			// shell sees its job stop and can fg or bg it.
			if foregroundGroup() == j.pgrp {
				setForeground(unix.Getpgrp())
			}
			unix.Kill(os.Getpid(), unix.SIGSTOP)
		case st := <-done:
			j.restoreTerminalToUs()
			return exitCodeOf(st)
		}
	}
}

// restoreTerminalToUs gives the terminal back to our group when the job
// ended holding it, so the shell finds it where it left it.
func (j *shellJob) restoreTerminalToUs() {
	if foregroundGroup() == j.pgrp {
		setForeground(unix.Getpgrp())
	}
}

// foregroundGroup is the terminal's (stdin's) foreground process group.
func foregroundGroup() int {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pgrp
}

// setForeground makes pgrp the terminal's foreground group. SIGTTOU is
// ignored meanwhile: from a background group the kernel would otherwise
// stop us instead.
func setForeground(pgrp int) {
	signal.Ignore(unix.SIGTTOU)
	defer signal.Reset(unix.SIGTTOU)
	unix.IoctlSetPointerInt(0, unix.TIOCSPGRP, pgrp)
}

// checkDumpSession refuses, before CRIU runs, the dumps CRIU refuses for
// the session of the tree's root (host pid root), and says why in our
// terms: CRIU dumps no process whose session leader is outside its pid
// namespace (cr-dump.c), the state of a shell job restored into its
// caller's session; and it dumps a root that leads no session only as a
// shell job.
func checkDumpSession(root int, shellJob bool) error {
	sids, err := procStatusInts(root, "NSsid:")
	if err != nil {
		return nil // CRIU will say what is wrong
	}
	pids, err := nsPids(root)
	if err != nil || len(pids) != len(sids) {
		return nil
	}
	sid, pid := sids[len(sids)-1], pids[len(pids)-1]
	switch {
	case sid == 0:
		return fmt.Errorf("the tree's root is a job of session %d, whose leader is outside the container (it was restored with --shell-job into its caller's session): CRIU does not dump a process whose session leader is outside its pid namespace", sids[0])
	case sid != pid && !shellJob:
		return fmt.Errorf("the tree's root leads no session of its own (a shell job): CRIU dumps it only with --shell-job")
	}
	return nil
}
