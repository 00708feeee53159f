package nsinit

// Shell jobs. A shell job belongs to the session of the shell that runs
// it, and its terminal is that session's controlling terminal. The init
// cannot restore one: libcontainer starts it in a session of its own, and
// a tree that CRIU restores from there can only have the caller's terminal
// as its controlling terminal by stealing it from the caller's session for
// good (TIOCSCTTY with steal=1; the shell never gets it back). So for a
// shell job the runtime starts a *job host* (JobHostMain) inside the
// container from the caller's own session; the job host runs CRIU, and
// the restored root is its child (CRIU's -S) for as long as it runs: the
// job's process group keeps a parent in its session but outside the
// group, as under a shell, so terminal job control works (the kernel
// ignores Ctrl-Z in an orphaned group), and a root with a parent-death
// signal keeps its parent. The init waits for the job host's report, then
// for its exit, and forwards signals to the root as ever.
//
// When the caller's terminal is no session's controlling terminal (the
// caller left its session, as CRIU's own criu-ns tests do), the job host
// makes a session of its own and takes the terminal, as the old Python
// criu-ns did for CRIU itself.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// ShellJob configures a shell-job restore (Config.ShellJob).
type ShellJob struct {
	// OwnSession: the job host starts a session of its own and makes
	// its stdin, the caller's terminal, the session's controlling
	// terminal; otherwise it stays in the caller's session.
	OwnSession bool `json:"own_session,omitempty"`
	// HostReportFd is, in the init, the read end of the pipe on which the
	// job host reports (a Report with its own pid).
	HostReportFd int `json:"host_report_fd"`
	// EventsFd is, in the job host, the write end of a pipe to the
	// runtime: one byte per change of the restored root, JobStopped or
	// JobContinued.
	EventsFd int `json:"events_fd"`
}

// JobHostArg is the first argument that runs the runtime's binary as a
// job host.
const JobHostArg = "nsjobhost"

// Job events, as the job host writes them to ShellJob.EventsFd.
const (
	JobStopped   = 's'
	JobContinued = 'c'
)

// errBeforeCRIU marks (with an empty message) errors that came before
// CRIU ran (Report.BeforeCRIU).
var errBeforeCRIU = errors.New("")

// hostReport is what the job host tells the init: Report plus its own
// pid, which the init supervises.
type hostReport struct {
	Report
	Host int `json:"host,omitempty"`
}

// awaitJobHost is the init's part of a shell-job restore: it reads the
// job host's report.
func awaitJobHost(cfg *Config) (root, host int, err error) {
	fd := cfg.ShellJob.HostReportFd
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "job host report")
	defer f.Close()
	var rep hostReport
	if err := json.NewDecoder(f).Decode(&rep); err != nil {
		return 0, 0, fmt.Errorf("the shell job's host ended before it reported (%v)", err)
	}
	if rep.Error != "" {
		if rep.BeforeCRIU {
			return 0, 0, fmt.Errorf("%w%s", errBeforeCRIU, rep.Error)
		}
		return 0, 0, fmt.Errorf("%s", rep.Error)
	}
	if rep.RootPid <= 0 || rep.Host <= 0 {
		return 0, 0, fmt.Errorf("the shell job's host sent a bad report: %+v", rep)
	}
	return rep.RootPid, rep.Host, nil
}

// JobHostMain runs the job host; it never returns. It has the init's
// descriptors (ReportFd reaching the init, LockFd, the directories) plus
// ShellJob.EventsFd, and the caller's stdio. It starts in a process group
// of its own in the caller's session (setns/spawn.c).
func JobHostMain() {
	// The terminal's signals are the job's; the init forwards everything
	// else straight to the root. Caught rather than ignored: CRIU, which
	// we run, must not inherit SIG_IGN.
	signal.Notify(make(chan os.Signal, 1), unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP,
		unix.SIGTTIN, unix.SIGTTOU, unix.SIGHUP, unix.SIGWINCH)
	code, err := runJobHost()
	if err != nil {
		fmt.Fprintln(os.Stderr, "criu-ns-runtime job host:", err)
	}
	os.Exit(code)
}

func runJobHost() (int, error) {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(ConfigEnv)), &cfg); err != nil || cfg.ShellJob == nil {
		return 1, fmt.Errorf("bad %s: %v", ConfigEnv, err)
	}
	os.Unsetenv(ConfigEnv)
	report := os.NewFile(ReportFd, "report")
	for fd := 3; fd < DirFds+cfg.Dirs; fd++ {
		if fd != ReportFd && fd != LockFd {
			unix.CloseOnExec(fd) // criuCmd passes them on by number
		}
	}
	events := cfg.ShellJob.EventsFd
	unix.CloseOnExec(events)
	unix.SetNonblock(events, true) // an event no one reads is dropped

	root, err := hostJob(&cfg)
	rep := hostReport{Report: Report{RootPid: root}, Host: os.Getpid()}
	if err != nil {
		rep = hostReport{Report: Report{Error: err.Error(), BeforeCRIU: errors.Is(err, errBeforeCRIU)}}
	}
	if err := json.NewEncoder(report).Encode(rep); err != nil {
		return 1, err
	}
	report.Close()
	if err != nil {
		return 1, nil
	}
	return watchJob(root, events), nil
}

// hostJob puts the job host where the job's session must be, and runs
// CRIU; it returns the root's pid.
func hostJob(cfg *Config) (int, error) {
	if err := awaitAdoption(); err != nil {
		return 0, err
	}
	if cfg.ShellJob.OwnSession {
		if err := takeTerminal(); err != nil {
			return 0, fmt.Errorf("%w%w", errBeforeCRIU, err)
		}
	}
	root, _, err := restore(cfg) // no lazy pages: the runtime refuses them with a shell job
	if err != nil {
		return 0, err
	}
	if !cfg.ShellJob.OwnSession {
		// CRIU, run in our group, put a root that led no group in it
		// and made it the terminal's foreground: leave it to the job,
		// so the job's group has a parent outside it (not orphaned).
		if err := unix.Setpgid(0, 0); err != nil {
			return 0, fmt.Errorf("leave the job's process group: %w", err)
		}
	}
	return root, nil
}

// awaitAdoption returns once the process that forked the job host has
// exited (setns/spawn.c), that is once the init is our parent: the init
// must see us exit. A pidfd turns readable only after the kernel has
// re-parented the dead process's children.
func awaitAdoption() error {
	ppid := unix.Getppid()
	if ppid == 1 {
		return nil
	}
	fd, err := unix.PidfdOpen(ppid, 0)
	if err == unix.ESRCH {
		return nil // reaped, so re-parenting is done
	}
	if err != nil {
		return fmt.Errorf("pidfd of our parent: %w", err)
	}
	defer unix.Close(fd)
	for unix.Getppid() == ppid {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
			return fmt.Errorf("wait for our parent to exit: %w", err)
		}
		if pfd[0].Revents != 0 {
			break
		}
	}
	if p := unix.Getppid(); p != 1 {
		return fmt.Errorf("the job host's parent is %d, not the container's init", p)
	}
	return nil
}

// takeTerminal makes the job host the leader of a new session whose
// controlling terminal is stdin.
func takeTerminal() error {
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	// No steal (arg 0): taking another session's terminal would leave
	// that session without one for good.
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		name, _ := os.Readlink("/proc/self/fd/0")
		return fmt.Errorf("--shell-job: stdin (%s) is the controlling terminal of another session: restore the job from that session, for example from the shell that runs on this terminal (%v)", name, err)
	}
	return nil
}

// watchJob is the job host's life once the job runs: reap children, tell
// the runtime when the root stops or continues, and return the root's
// exit code (128+n for signal n) when it ends. The root is reaped only
// once its restorer is done (wait.go).
func watchJob(root, events int) int {
	for {
		e, err := peekChild(unix.WEXITED | unix.WSTOPPED | unix.WCONTINUED)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 1 // no children: the root is gone without a status we saw
		}
		pid := int(e.Pid)
		if pid == root && e.ended() {
			awaitRestorer()
		}
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG|unix.WUNTRACED|unix.WCONTINUED, nil)
		if got != pid || err != nil || pid != root {
			continue
		}
		switch {
		case ws.Stopped():
			unix.Write(events, []byte{JobStopped})
		case ws.Continued():
			unix.Write(events, []byte{JobContinued})
		case ws.Signaled():
			return 128 + int(ws.Signal())
		default:
			return ws.ExitStatus()
		}
	}
}
