// Package nsinit is pid 1 of a tree container. It runs `criu restore -d -S`,
// tells the runtime how it went, then does what an init must: reap every
// orphan, forward every signal it gets to the restored root, and exit with
// the root's status. It holds no knowledge of bundles or libcontainer; the
// runtime hands it everything through one environment variable and a few
// inherited descriptors, and the container's lock once it runs. For an RPC
// client (criu-ns swrk mode) it runs `criu swrk` instead and relays the
// client's restore to it (rpc.go). For a shell job, CRIU runs in a job host
// the runtime starts in the caller's session, and the init waits for it
// instead (shelljob.go).
package nsinit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/phasetrace"
)

// ConfigEnv is the environment variable that carries the init's Config.
const ConfigEnv = "_CRIU_NS_INIT_CONFIG"

// Descriptors the runtime passes to the init (libcontainer ExtraFiles).
const (
	// ReportFd is a unix socket to the runtime. The runtime's locked
	// descriptor of the container directory comes on it first (the init
	// runs no CRIU without it), then the init sends one Report on it and
	// closes it.
	ReportFd = 3
	LockFd   = 4 // the container directory; flock(2) on it is the container lock
	// DirFds start here: directories CRIU reaches as /proc/self/fd/N.
	DirFds = 5
)

// Config tells the init how to run CRIU.
type Config struct {
	CRIU string   `json:"criu"`
	Args []string `json:"args"` // CRIU's arguments; dirs as /proc/self/fd/N
	// Dirs is how many descriptors from DirFds on CRIU needs; they keep
	// their numbers in CRIU.
	Dirs int `json:"dirs"`
	// PidFile is where CRIU writes the restored root's pid (CRIU's own
	// --pidfile argument, in Args), relative to the container directory.
	PidFile string `json:"pid_file"`
	// LazyPages, when set, is the argument list of a `criu lazy-pages`
	// daemon the init starts before the restore.
	LazyPages []string `json:"lazy_pages,omitempty"`
	// RPC: the init serves one CRIU RPC restore over the channel at RPCFd
	// instead of running CRIU with Args (rpc.go).
	RPC bool `json:"rpc,omitempty"`
	// ShellJob, when set, makes this a shell-job restore: a job host
	// runs CRIU instead of the init (shelljob.go).
	ShellJob *ShellJob `json:"shell_job,omitempty"`
	// PageServerSocket says the descriptor after the directories (or the
	// RPC channel) is a connected socket to a migration source's page
	// server: the lazy-pages daemon pulls the pages through it (lazy.go).
	PageServerSocket bool `json:"page_server_socket,omitempty"`
}

// Report is what the init tells the runtime once CRIU is done.
type Report struct {
	RootPid int    `json:"root_pid,omitempty"` // in the container's pid namespace
	Error   string `json:"error,omitempty"`
	// BeforeCRIU: the error came before CRIU ran, so CRIU's log is not
	// about it (a shell job's terminal could not be taken).
	BeforeCRIU bool `json:"before_criu,omitempty"`
}

// Main runs the init; it never returns.
func Main() {
	phasetrace.Mark("init.start")
	sigs := make(chan os.Signal, 64)
	// Catch everything before CRIU starts, so no signal meant for the
	// tree is lost while it is being restored.
	signal.Notify(sigs)
	code, err := run(sigs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "criu-ns-runtime init:", err)
	}
	os.Exit(code)
}

func run(sigs chan os.Signal) (int, error) {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(ConfigEnv)), &cfg); err != nil {
		return 1, fmt.Errorf("bad %s: %w", ConfigEnv, err)
	}
	os.Unsetenv(ConfigEnv)
	report := reportSocket(ReportFd)
	for fd := 0; fd < cfg.inheritedFds(); fd++ {
		if fd != ReportFd && fd != LockFd {
			unix.CloseOnExec(fd) // undone per child below
		}
	}
	// We keep the runtime's lock until we have reported, so a restore
	// whose runtime was killed stays locked until CRIU is done; no child
	// gets it.
	held, err := receiveLock(ReportFd)
	if err != nil {
		return 1, err
	}

	restoreTree := restore
	if cfg.RPC {
		restoreTree = restoreRPC
	}
	// child is the child whose exit ends the container: the root, or
	// for a shell job the job host that stays its parent (shelljob.go);
	// lazy is the lazy-pages daemon, if any.
	var root, child, lazy int
	if cfg.ShellJob != nil {
		root, child, err = awaitJobHost(&cfg)
	} else {
		root, lazy, err = restoreTree(&cfg)
		child = root
	}
	if err != nil {
		json.NewEncoder(report).Encode(Report{Error: err.Error(), BeforeCRIU: errors.Is(err, errBeforeCRIU)})
		report.Close()
		return 1, nil
	}
	// If the runtime is gone the report goes nowhere, but the tree is
	// restored: it runs on, and the next command on the container finds
	// it (CRIU wrote the root's pid into the container directory).
	json.NewEncoder(report).Encode(Report{RootPid: root})
	report.Close()
	unix.Close(held)
	code := supervise(child, root, lazy, sigs)
	// A checkpoint that ended the tree may still be dumping in our pid
	// namespace; leaving now would kill its CRIU (CRIU issue #1775). It
	// holds the container lock until it is done.
	unix.Flock(LockFd, unix.LOCK_EX)
	return code, nil
}

// receiveLock waits on fd for the runtime's locked descriptor of the
// container directory and returns it (close-on-exec). A runtime that
// ended before it sent it never let the restore go on: an error.
func receiveLock(fd int) (int, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return -1, fmt.Errorf("waiting for the container's lock: %w", err)
		case n == 0:
			return -1, errors.New("the runtime ended before it handed over the container's lock; nothing was restored")
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return -1, fmt.Errorf("the runtime sent no lock (%d control messages, %v)", len(msgs), err)
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			for _, f := range fds {
				unix.Close(f)
			}
			return -1, fmt.Errorf("the runtime sent %d descriptors as the lock (%v)", len(fds), err)
		}
		return fds[0], nil
	}
}

// reportSocket is the init's end of the report socket, written without
// SIGPIPE: a runtime that has gone away must not get the init a signal,
// which it would forward to the restored root.
type reportSocket int

func (s reportSocket) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.SendmsgN(int(s), b[written:], nil, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

func (s reportSocket) Close() error { return unix.Close(int(s)) }

// restore runs CRIU and returns the restored root's pid and the
// lazy-pages daemon's, if any.
func restore(cfg *Config) (root, lazy int, err error) {
	if err := reservePids(DirFds); err != nil {
		return 0, 0, err
	}
	if len(cfg.LazyPages) > 0 {
		if lazy, err = startLazyPages(cfg); err != nil {
			return 0, 0, err
		}
	}
	var stderr bytes.Buffer
	cmd := criuCmd(cfg, cfg.Args)
	cmd.Stderr = &stderr
	phasetrace.Mark("criu.start")
	err = cmd.Run()
	phasetrace.Mark("criu.end")
	if err != nil {
		msg := "criu restore failed: " + err.Error()
		if line := firstLine(stderr.String()); line != "" {
			msg += ": " + line
		}
		return 0, 0, fmt.Errorf("%s", msg)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d/%s", LockFd, cfg.PidFile))
	if err != nil {
		return 0, 0, fmt.Errorf("criu restore left no pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("criu restore wrote a bad pid file: %q", b)
	}
	return pid, lazy, nil
}

// reservePids makes the pids CRIU and its helpers get in this namespace
// higher than every pid and tid in the images (fd imagesFd). Otherwise a
// helper can hold a low pid that a thread of the tree needs ("Unable to
// create a thread: -17"): after one restore the kernel hands out low pids
// again, so trees restored once tend to hold some.
func reservePids(imagesFd int) error {
	names, err := os.ReadDir(fmt.Sprintf("/proc/self/fd/%d", imagesFd))
	if err != nil {
		return fmt.Errorf("read images: %w", err)
	}
	highest := 0
	for _, e := range names {
		// Every task and thread has a core-<tid>.img.
		var tid int
		if n, _ := fmt.Sscanf(e.Name(), "core-%d.img", &tid); n == 1 && tid > highest {
			highest = tid
		}
	}
	if highest == 0 {
		return nil // no images: CRIU will say so
	}
	return os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(highest)), 0)
}

// startLazyPages starts the `criu lazy-pages` daemon that serves the
// restore's memory over userfaultfd, and returns its pid once it listens:
// CRIU writes one byte to --status-fd when its socket is ready. It exits
// by itself once every page is sent; supervise collects it.
func startLazyPages(cfg *Config) (int, error) {
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer ready.Close()
	lazy := criuCmd(cfg, nil)
	args := cfg.LazyPages
	if cfg.PageServerSocket {
		args = append(args, pageServerArgs(cfg, lazy)...)
	}
	statusFd := 3 + len(lazy.ExtraFiles) // the next fd
	lazy.Args = append(append([]string{cfg.CRIU}, args...), "--status-fd", strconv.Itoa(statusFd))
	lazy.ExtraFiles = append(lazy.ExtraFiles, readyW)
	var stderr bytes.Buffer
	lazy.Stderr = &stderr
	err = lazy.Start()
	readyW.Close()
	if err != nil {
		return 0, fmt.Errorf("start criu lazy-pages: %w", err)
	}
	if n, _ := ready.Read(make([]byte, 1)); n != 1 {
		lazy.Wait()
		msg := "criu lazy-pages failed to start"
		if line := firstLine(stderr.String()); line != "" {
			msg += ": " + line
		}
		return 0, fmt.Errorf("%s", msg)
	}
	// The daemon is collected by supervise, not by os/exec.
	return lazy.Process.Pid, nil
}

func criuCmd(cfg *Config, args []string) *exec.Cmd {
	cmd := exec.Command(cfg.CRIU, args...)
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	// ExtraFiles keep their numbers: the report pipe becomes /dev/null,
	// the container directory stays at LockFd (CRIU writes the pid file
	// there) and the directories stay at DirFds.
	null, _ := os.Open(os.DevNull)
	cmd.ExtraFiles = []*os.File{null, os.NewFile(LockFd, "container")}
	for i := 0; i < cfg.Dirs; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(DirFds+i), "dir"))
	}
	return cmd
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// supervise reaps children and forwards signals to root until child (the
// root, or a shell job's host) exits; it returns child's exit code
// (128+n if killed by signal n). If the lazy-pages daemon fails, the
// tree's memory can never be complete (and its missing pages would read
// as zeros): it returns at once, and the tree ends with the init.
func supervise(child, root, lazy int, sigs chan os.Signal) int {
	for {
		code, done, lazyFailed := reap(child, lazy)
		if lazyFailed {
			fmt.Fprintln(os.Stderr, "criu-ns-runtime init: criu lazy-pages failed: the tree's memory is incomplete; ending it")
			return 1
		}
		if done {
			return code
		}
		sig := (<-sigs).(syscall.Signal)
		switch sig {
		case unix.SIGCHLD:
		case unix.SIGURG: // the Go runtime's own preemption signal
		default:
			unix.Kill(root, sig)
		}
	}
}

// reap collects every exited child without blocking and says whether the
// root was among them, and whether the lazy-pages daemon failed. The root
// is reaped only once its restorer is done (wait.go).
func reap(root, lazy int) (code int, done, lazyFailed bool) {
	for {
		e, err := peekChild(unix.WEXITED | unix.WNOHANG)
		if e.Pid <= 0 || err != nil {
			if err == unix.ECHILD && !done {
				// No children left at all: the root is gone without a
				// status we saw (cannot happen with -S, but never hang).
				return 1, true, lazyFailed
			}
			return code, done, lazyFailed
		}
		pid := int(e.Pid)
		if pid == root {
			awaitRestorer()
		}
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got != pid || err != nil {
			continue
		}
		if pid == lazy && lazy > 0 && !(ws.Exited() && ws.ExitStatus() == 0) {
			lazyFailed = true
		}
		if pid == root {
			done = true
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			} else {
				code = ws.ExitStatus()
			}
		}
	}
}
