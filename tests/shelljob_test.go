package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal pair made by the test itself: no dependence on
// the CI having a terminal. Its master is read continuously, so nothing
// writing to the slave ever blocks on a full buffer.
type pty struct {
	master, slave *os.File
	index         int
	rdev          uint64
	out           *drain
}

func openPty(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	p := &pty{master: m}
	t.Cleanup(func() { m.Close() })
	rc, err := m.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		if ioErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioErr != nil {
			return
		}
		p.index, ioErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
	})
	if err != nil || ioErr != nil {
		t.Fatalf("unlocking the pty: %v %v", err, ioErr)
	}
	name := fmt.Sprintf("/dev/pts/%d", p.index)
	if p.slave, err = os.OpenFile(name, os.O_RDWR|unix.O_NOCTTY, 0); err != nil {
		t.Fatalf("opening %s: %v", name, err)
	}
	t.Cleanup(func() { p.slave.Close() })
	var st unix.Stat_t
	if err := unix.Fstat(int(p.slave.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	p.rdev = st.Rdev
	p.out = drainAll(m)
	return p
}

// ttyRdev is the device of the terminal on fd of pid (0 if not a tty).
func fdRdev(pid, fd int) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), &st); err != nil {
		return 0
	}
	return st.Rdev
}

func TestShellJob(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()

	// A session leader whose stdio and controlling tty is our pty.
	tty1 := openPty(t)
	w := &workload{
		counter: filepath.Join(dir, "counter"),
		status:  filepath.Join(dir, "status"),
		done:    make(chan struct{}),
	}
	w.cmd = exec.Command(workloadBin, "-counter", w.counter, "-status", w.status, "-mem", "4")
	w.cmd.Stdin, w.cmd.Stdout, w.cmd.Stderr = tty1.slave, tty1.slave, tty1.slave
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	w.start(t)
	tty1.slave.Close()
	if got, want := statField(w.pid(), 7), int(tty1.rdev); got != want {
		t.Fatalf("test setup: the workload's controlling tty is %#x, want %#x", got, want)
	}
	img := images{dir: filepath.Join(dir, "img"), counter: w.counter, status: w.status, origPid: w.pid()}
	criuDump(t, w.pid(), img.dir, "--shell-job")
	w.waitExit(t)

	// Restore with a new terminal as the runtime's stdio, as when a user
	// restores a shell job from their terminal.
	tty2 := openPty(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, "restore", "--shell-job", "-d", "--image-path", img.dir, cid("sj"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty2.slave, tty2.slave, tty2.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("restore --shell-job -d did not return within %v; terminal output:\n%s\nrestore.log:\n%s",
			cmdTimeout, tty2.out.String(), restoreLog(img.dir))
	}
	if err != nil {
		t.Fatalf("restore --shell-job -d: %v; terminal output:\n%s\nrestore.log:\n%s",
			err, tty2.out.String(), restoreLog(img.dir))
	}
	tty2.slave.Close()

	host := e.checkTree(cid("sj"), img, false)
	checkMemory(t, host, img.status)
	for fd := 0; fd <= 2; fd++ {
		if got := fdRdev(host, fd); got != tty2.rdev {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", host, fd))
			t.Errorf("restored root's fd %d is %q (rdev %#x), want the restorer's terminal /dev/pts/%d (rdev %#x)",
				fd, link, got, tty2.index, tty2.rdev)
		}
	}
	if sid := statField(host, 6); sid != host {
		t.Errorf("restored root %d is in session %d, want its own session", host, sid)
	}

	// The runtime checkpoints a shell job too.
	e.mustRun("checkpoint", "--shell-job", "--image-path", filepath.Join(dir, "img2"), cid("sj"))
	waitGone(t, host)
	e.waitStatus(cid("sj"), "stopped")
	e.mustRun("delete", cid("sj"))
	e.assertNothingLeft()
}
