// Package setns runs a command inside the pid and mount namespaces of a
// process, the way `nsenter -t PID -p -m` does, without runc's init or
// cgroup migration. The work happens in a C constructor (setns.c) of this
// same binary, before the Go runtime starts; importing the package links it.
//
// The process the runtime starts is a small C parent that waits for the
// command and outlives the runtime if need be: it holds the descriptor it
// is given as Options.Status (the container's locked directory) until the
// command is done, kills what the command left in its process group, and
// writes the command's exit status there (ReadStatus), and its pid (also
// its process group's id) beside it as soon as it runs.
package setns

// #cgo CFLAGS: -Wall
import "C"

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

const (
	arg       = "setns-exec"
	env       = "_CRIU_NS_SETNS_PIDFD"
	statusEnv = "_CRIU_NS_SETNS_STATUS"
	graceEnv  = "_CRIU_NS_SETNS_GRACE"
)

// Options say what the command runs in and with.
type Options struct {
	// Target's pid and mount namespaces are entered.
	Target *pidfd.Proc
	// Files become the command's fds 3, 4, ...
	Files []*os.File
	// Status, a directory, gets the command's exit status as StatusName
	// (written by the waiting parent, see ReadStatus). The parent holds
	// this descriptor, and so any flock(2) lock on it, until then; the
	// command itself does not get it.
	Status     *os.File
	StatusName string
	// Grace is how long Cancel lets the command stop on its own before
	// its process group is killed (default 5s).
	Grace time.Duration
	// Stderr gets the command's stderr (default /dev/null).
	Stderr *os.File
}

// Cmd is a command started in another process's namespaces.
type Cmd struct {
	*exec.Cmd
	closers []*os.File
}

// Command returns the command running path with args as Options say.
func Command(o Options, path string, args ...string) (*Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pfd, err := o.Target.File()
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", o.Target.Pid, err)
	}
	cmd := exec.Command(self, append([]string{arg, path}, args...)...)
	cmd.ExtraFiles = append(append([]*os.File{}, o.Files...), pfd)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", env, 2+len(cmd.ExtraFiles)))
	if o.Status != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, o.Status)
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d:%s", statusEnv, 2+len(cmd.ExtraFiles), o.StatusName))
	}
	if o.Grace > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", graceEnv, int((o.Grace+time.Second-1)/time.Second)))
	}
	if o.Stderr != nil {
		cmd.Stderr = o.Stderr
	}
	// A process group of its own: a Ctrl-C meant for the runtime must not
	// kill the dump halfway; the runtime decides what to do with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return &Cmd{Cmd: cmd, closers: []*os.File{pfd}}, nil
}

// Close releases what the caller no longer needs once the command runs.
func (c *Cmd) Close() error {
	for _, f := range c.closers {
		f.Close()
	}
	return nil
}

// Cancel asks the command to stop: SIGALRM to it (CRIU then aborts
// through its own timeout path, curing its parasite and letting the tree
// go), SIGKILL to its process group after the grace period.
func (c *Cmd) Cancel() error {
	if c.Process == nil {
		return errors.New("not started")
	}
	return c.Process.Signal(unix.SIGTERM)
}

// Status is how the command ended.
type Status struct {
	Signal int // non-zero: killed by this signal
	Code   int // exit code, if not killed
}

// OK says whether the command exited 0.
func (s Status) OK() bool { return s.Signal == 0 && s.Code == 0 }

func (s Status) String() string {
	if s.Signal != 0 {
		return "killed by " + unix.SignalName(syscall.Signal(s.Signal))
	}
	return "exit status " + strconv.Itoa(s.Code)
}

// ReadStatus reads the exit status the waiting parent wrote into dir as
// name; os.ErrNotExist if it wrote none (the command still runs, or the
// parent was killed).
func ReadStatus(dir, name string) (Status, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return Status{}, err
	}
	var s Status
	f := strings.Fields(string(b))
	if len(f) == 2 {
		n, err := strconv.Atoi(f[1])
		switch {
		case err != nil:
		case f[0] == "exit":
			s.Code = n
			return s, nil
		case f[0] == "signal":
			s.Signal = n
			return s, nil
		}
	}
	return Status{}, fmt.Errorf("%s: malformed exit status %q", filepath.Join(dir, name), b)
}
