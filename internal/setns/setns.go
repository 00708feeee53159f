// Package setns runs a command inside the pid and mount namespaces of a
// process, the way `nsenter -t PID -p -m` does, without runc's init or
// cgroup migration. The work happens in a C constructor (setns.c) of this
// same binary, before the Go runtime starts; importing the package links it.
package setns

// #cgo CFLAGS: -Wall
import "C"

import (
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

const (
	arg = "setns-exec"
	env = "_CRIU_NS_SETNS_PIDFD"
)

// Command returns a command that runs path with args inside the pid and
// mount namespaces of pid. extra become the command's fds 3, 4, ...; the
// caller must call Close after Start to release the pidfd.
func Command(pid int, extra []*os.File, path string, args ...string) (*Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	cmd := exec.Command(self, append([]string{arg, path}, args...)...)
	cmd.ExtraFiles = append(append([]*os.File{}, extra...), pidfd)
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", env, 2+len(cmd.ExtraFiles)))
	return &Cmd{Cmd: cmd, pidfd: pidfd}, nil
}

// Cmd is an exec.Cmd that holds a pidfd until Close.
type Cmd struct {
	*exec.Cmd
	pidfd *os.File
}

// Close releases the pidfd.
func (c *Cmd) Close() error { return c.pidfd.Close() }
