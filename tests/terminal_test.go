package tests

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal pair made by the test itself: no dependence on
// the CI having a terminal. Its master is read continuously, so nothing
// writing to the slave ever blocks on a full buffer.
type pty struct {
	t             *testing.T
	master, slave *os.File
	index         int
	rdev          uint64
	out           *drain
	seen          int // output before this was matched already (expect)
}

func openPty(t *testing.T) *pty {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	p := &pty{t: t, master: m}
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
	name := p.name()
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

func (p *pty) name() string { return fmt.Sprintf("/dev/pts/%d", p.index) }

// ttyNr is the terminal as /proc/PID/stat's tty_nr gives it (field 7).
func (p *pty) ttyNr() int { return encodeTTYNr(p.rdev) }

// ttyNrOf is tty_nr of the terminal at path.
func ttyNrOf(path string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return encodeTTYNr(st.Rdev), nil
}

// encodeTTYNr encodes a device number as the kernel's new_encode_dev.
func encodeTTYNr(rdev uint64) int {
	return int(unix.Major(rdev)<<8 | unix.Minor(rdev)&0xff | (unix.Minor(rdev)&^0xff)<<12)
}

// typeIn writes s to the terminal as if typed ("\x03" is Ctrl-C).
func (p *pty) typeIn(s string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		p.t.Fatalf("typing %q on %s: %v", s, p.name(), err)
	}
}

// expect waits until the terminal shows output matching re that it had
// not shown when the last expect matched, and returns the match.
func (p *pty) expect(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var m []int
	eventually(p.t, settleTime, fmt.Sprintf("%q on %s", re, p.name()), func() error {
		out := p.out.String()
		if m = rx.FindStringIndex(out[p.seen:]); m == nil {
			return fmt.Errorf("terminal output so far:\n%s", tail(out, 25))
		}
		return nil
	})
	out := p.out.String()
	match := out[p.seen+m[0] : p.seen+m[1]]
	p.seen += m[1]
	return match
}

// resize sets the terminal's window size, as a terminal emulator does.
func (p *pty) resize(rows, cols uint16) {
	p.t.Helper()
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		p.t.Fatal(err)
	}
}

// foreground is the terminal's foreground process group (host pid).
func (p *pty) foreground() int {
	pgrp, err := unix.IoctlGetInt(int(p.master.Fd()), unix.TIOCGPGRP)
	if err != nil {
		return -1
	}
	return pgrp
}

// fdRdev is the device of the file on fd of pid (0 if not a device).
func fdRdev(pid, fd int) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), &st); err != nil {
		return 0
	}
	return st.Rdev
}

// shell is an interactive bash on a terminal of its own: the session
// leader, with the terminal as its controlling terminal and job control
// on, as a user's shell in a terminal emulator or tmux pane has it.
type shell struct {
	*pty
	cmd *exec.Cmd
}

func startShell(t *testing.T, e *env) *shell {
	t.Helper()
	sh := &shell{pty: openPty(t)}
	sh.cmd = exec.Command("/bin/bash", "--norc", "--noprofile", "-i")
	sh.cmd.Dir = e.dir
	sh.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "TERM=dumb", "PS1=$ ", "HISTFILE=/dev/null",
		"CRIU_NS_RUNTIME_ROOT=" + e.root,
	}
	sh.cmd.Stdin, sh.cmd.Stdout, sh.cmd.Stderr = sh.slave, sh.slave, sh.slave
	sh.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := sh.cmd.Start(); err != nil {
		t.Fatalf("starting bash: %v", err)
	}
	done := make(chan struct{})
	go func() { sh.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		sh.cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(cleanTimeout):
		}
	})
	sh.run("echo shell-$((6*7))", "shell-42")
	return sh
}

func (sh *shell) pid() int { return sh.cmd.Process.Pid }

// run types a command line and waits for output matching want.
func (sh *shell) run(line, want string) string {
	sh.t.Helper()
	sh.typeIn(line + "\n")
	return sh.expect(want)
}

// works checks the shell still runs commands and holds its terminal.
func (sh *shell) works() {
	sh.t.Helper()
	sh.run("echo alive-$((40+2))", "alive-42")
	sh.holdsTerminal()
}

// holdsTerminal checks the terminal is the shell's controlling terminal
// and its foreground group is the shell's own.
func (sh *shell) holdsTerminal() {
	sh.t.Helper()
	var fg int
	eventually(sh.t, settleTime, "the shell to hold its terminal", func() error {
		if fg = sh.foreground(); fg != sh.pid() {
			return fmt.Errorf("foreground group %d", fg)
		}
		return nil
	})
	if fg != sh.pid() {
		sh.t.Errorf("the shell's terminal %s has foreground group %d, want the shell's own %d", sh.name(), fg, sh.pid())
	}
	if got := statField(sh.pid(), 7); got != sh.ttyNr() {
		sh.t.Errorf("the shell's controlling terminal is %#x, want %s (%#x)", got, sh.name(), sh.ttyNr())
	}
}

// jobPid waits for the shell's foreground job (a workload) and returns
// its pid.
func (sh *shell) jobPid() int {
	sh.t.Helper()
	var pid int
	eventually(sh.t, settleTime, "the shell's job to start", func() error {
		for _, kid := range childrenOf(sh.pid()) {
			if isWorkload(kid) {
				pid = kid
				return nil
			}
			// unshare -f: the workload is its child.
			for _, k := range childrenOf(kid) {
				if isWorkload(k) {
					pid = k
					return nil
				}
			}
		}
		return fmt.Errorf("the shell %d has no workload child; terminal:\n%s", sh.pid(), tail(sh.out.String(), 10))
	})
	return pid
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
