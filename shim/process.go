package shim

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// IO says where a container process's stdio goes, as a manager asks.
type IO struct {
	// ConsoleSocket, when the process has a terminal, is the unix socket
	// that receives the pty master (the manager owns the terminal).
	ConsoleSocket string
	// PreserveFds passes fds 3..3+N-1 on to the process.
	PreserveFds int
	// PidfdSocket is a unix socket that receives a pidfd of the process
	// once it runs, as runc's --pidfd-socket.
	PidfdSocket string
}

// newProcess converts an OCI process to libcontainer's.
func newProcess(p *specs.Process) (*libcontainer.Process, error) {
	if p == nil {
		return nil, fmt.Errorf("config.json has no process")
	}
	lp := &libcontainer.Process{
		Args: p.Args, Env: p.Env, Cwd: p.Cwd,
		UID: int(p.User.UID), GID: int(p.User.GID),
		Label: p.SelinuxLabel, AppArmorProfile: p.ApparmorProfile,
		NoNewPrivileges: &p.NoNewPrivileges,
		Scheduler:       p.Scheduler, IOPriority: p.IOPriority,
	}
	if c := p.Capabilities; c != nil {
		lp.Capabilities = &configs.Capabilities{
			Bounding: c.Bounding, Effective: c.Effective, Inheritable: c.Inheritable,
			Permitted: c.Permitted, Ambient: c.Ambient,
		}
	}
	for _, g := range p.User.AdditionalGids {
		lp.AdditionalGroups = append(lp.AdditionalGroups, int(g))
	}
	for _, r := range p.Rlimits {
		rl, err := rlimit(r)
		if err != nil {
			return nil, err
		}
		lp.Rlimits = append(lp.Rlimits, rl)
	}
	if p.ConsoleSize != nil {
		lp.ConsoleWidth, lp.ConsoleHeight = uint16(p.ConsoleSize.Width), uint16(p.ConsoleSize.Height)
	}
	return lp, nil
}

func rlimit(r specs.POSIXRlimit) (configs.Rlimit, error) {
	names := map[string]int{
		"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
		"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
		"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
		"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
		"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
		"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
	}
	t, ok := names[r.Type]
	if !ok {
		return configs.Rlimit{}, fmt.Errorf("unknown rlimit type %q", r.Type)
	}
	return configs.Rlimit{Type: t, Hard: r.Hard, Soft: r.Soft}, nil
}

// closer collects what must be closed once the process started.
type closer []interface{ Close() error }

func (c closer) Close() {
	for _, f := range c {
		f.Close()
	}
}

// setupIO wires the process's stdio: a terminal goes to the manager's
// console socket; otherwise the process inherits our stdio (a manager
// hands us pipes or fifos, and we pass them straight on, as runc does).
func setupIO(p *libcontainer.Process, terminal bool, io IO) (_ closer, err error) {
	var c closer
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if io.PidfdSocket != "" {
		// libcontainer sends the process's pidfd over it.
		f, err := dialUnix(io.PidfdSocket, "pidfd socket")
		if err != nil {
			return nil, err
		}
		p.PidfdSocket = f
		c = append(c, f)
	}
	for i := 0; i < io.PreserveFds; i++ {
		fd := 3 + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("preserved fd %d (of %d) is not open", fd, io.PreserveFds)
		}
		p.ExtraFiles = append(p.ExtraFiles, os.NewFile(uintptr(fd), "preserved-fd-"+strconv.Itoa(fd)))
	}
	if !terminal {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
		return c, nil
	}
	if io.ConsoleSocket == "" {
		return nil, fmt.Errorf("the process has a terminal: --console-socket is required")
	}
	f, err := dialUnix(io.ConsoleSocket, "console socket")
	if err != nil {
		return nil, err
	}
	p.ConsoleSocket = f
	return append(c, f), nil
}

// dialUnix connects to the unix socket at path and returns the
// connection as a file, for libcontainer to pass on.
func dialUnix(path, what string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer conn.Close()
	f, err := conn.(*net.UnixConn).File()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return f, nil
}
