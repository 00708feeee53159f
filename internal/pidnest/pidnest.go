// Package pidnest makes a pid namespace nested in another (a pod's) with an
// init of its own, for a restore whose pids are taken in the pod's
// namespace: CRIU restores the tree into the nested namespace, where only
// the init's pid 1 is in use. The init lives in a C constructor of this
// same binary (pidnest.c); importing the package links it.
package pidnest

// #cgo CFLAGS: -Wall
import "C"

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	arg = "pidns-init"
	env = "_CRIU_NS_PIDNEST"
)

// Init is the pid 1 of a nested pid namespace.
type Init struct {
	Pid int // on the host
	ctl *os.File
}

// Start makes a pid namespace nested in the one at podNs (a path such as
// /proc/PID/ns/pid) and starts its init, which joins the namespaces at
// join (network, IPC, UTS paths), makes new ones of the unshare types
// (unix.CLONE_NEWNET|CLONE_NEWIPC|CLONE_NEWUTS, the ones the container
// gets new), and has the empty directory root as its root. The caller may
// remove root once Start returns. The init exits when told the restored
// root has exited (Watch), or at once if Close comes first.
func Start(podNs string, join []string, unshare int, root string) (*Init, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	pod, err := os.Open(podNs)
	if err != nil {
		return nil, fmt.Errorf("pod pid namespace: %w", err)
	}
	files = append(files, pod)
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer reportR.Close()
	files = append(files, reportW)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ctl := os.NewFile(uintptr(fds[0]), "pidnest-ctl")
	files = append(files, os.NewFile(uintptr(fds[1]), "pidnest-ctl-init"))
	rootDir, err := os.Open(root)
	if err != nil {
		ctl.Close()
		return nil, err
	}
	files = append(files, rootDir)
	for _, p := range join {
		f, err := os.Open(p)
		if err != nil {
			ctl.Close()
			return nil, fmt.Errorf("namespace to join: %w", err)
		}
		files = append(files, f)
	}

	cmd := exec.Command(self, arg)
	cmd.ExtraFiles = files
	cmd.Env = []string{fmt.Sprintf("%s=%d %#x", env, len(join), unshare)}
	err = cmd.Run() // returns once the init exists, or failed to
	for _, f := range files {
		f.Close()
	}
	files = nil
	line, _ := bufio.NewReader(reportR).ReadString('\n')
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		ctl.Close()
		return nil, fmt.Errorf("nested pid namespace: %s", msg)
	}
	pid, perr := strconv.Atoi(line)
	if err != nil || perr != nil || pid <= 0 {
		ctl.Close()
		return nil, fmt.Errorf("nested pid namespace: init did not start (%v, report %q)", err, line)
	}
	return &Init{Pid: pid, ctl: ctl}, nil
}

// NsPath names the nested namespace for as long as the init lives.
func (i *Init) NsPath() string { return fmt.Sprintf("/proc/%d/ns/pid", i.Pid) }

// Watch hands the init a pidfd of the restored root (host pid root): the
// init exits once the root has. A root that is gone already makes it exit
// now.
func (i *Init) Watch(root int) error {
	fd, err := unix.PidfdOpen(root, 0)
	if err == unix.ESRCH {
		i.ctl.Close()
		return nil
	}
	if err != nil {
		i.ctl.Close()
		return fmt.Errorf("pidfd of the restored root %d: %w", root, err)
	}
	defer unix.Close(fd)
	err = unix.Sendmsg(int(i.ctl.Fd()), []byte{0}, unix.UnixRights(fd), nil, 0)
	i.ctl.Close()
	if err != nil {
		return fmt.Errorf("hand the nested init its root: %w", err)
	}
	return nil
}

// Close, before Watch, makes the init exit.
func (i *Init) Close() { i.ctl.Close() }
