package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pidfdListener is the manager's end of --pidfd-socket: it receives one
// pidfd and says which process it names.
type pidfdListener struct {
	path string
	got  chan pidfdResult
}

type pidfdResult struct {
	pid int
	err error
}

func listenPidfd(t *testing.T, dir, name string) *pidfdListener {
	t.Helper()
	l := &pidfdListener{path: filepath.Join(dir, name), got: make(chan pidfdResult, 1)}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: l.path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		l.got <- acceptPidfd(ln)
	}()
	return l
}

func acceptPidfd(ln *net.UnixListener) pidfdResult {
	ln.SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := ln.AcceptUnix()
	if err != nil {
		return pidfdResult{err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return pidfdResult{err: err}
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return pidfdResult{err: fmt.Errorf("control messages %v: %v", msgs, err)}
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return pidfdResult{err: fmt.Errorf("rights %v: %v", fds, err)}
	}
	defer unix.Close(fds[0])
	// A pidfd's fdinfo names its process.
	info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fds[0]))
	if err != nil {
		return pidfdResult{err: err}
	}
	for _, line := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(line, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			return pidfdResult{pid: pid, err: err}
		}
	}
	return pidfdResult{err: fmt.Errorf("the descriptor received is no pidfd:\n%s", info)}
}

func (l *pidfdListener) wait(t *testing.T) int {
	t.Helper()
	select {
	case r := <-l.got:
		if r.err != nil {
			t.Fatalf("pidfd socket %s: %v", l.path, r.err)
		}
		return r.pid
	case <-time.After(40 * time.Second):
		t.Fatalf("pidfd socket %s: nothing received", l.path)
	}
	return 0
}

// --pidfd-socket works as runc's: run and exec send the new process's
// pidfd to the socket.
func TestCommandsPidfdSocket(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sleep", "1000")
	id := cmdsID(t, "pidfd")
	e.track(id)
	runSock := listenPidfd(t, e.dir, "run.sock")
	if r := e.detached(nil, "run", "-d", "--pidfd-socket", runSock.path, "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d --pidfd-socket: %v", r)
	}
	if got, want := runSock.wait(t), e.wantStatus(id, "running").Pid; got != want {
		t.Errorf("run: the pidfd names pid %d, the container's init is %d", got, want)
	}
	execSock := listenPidfd(t, e.dir, "exec.sock")
	pidFile := filepath.Join(e.dir, "exec.pid")
	if r := e.detached(nil, "exec", "-d", "--pidfd-socket", execSock.path, "--pid-file", pidFile, id, "sleep", "1000"); r.code != 0 {
		t.Fatalf("exec -d --pidfd-socket: %v", r)
	}
	if got, want := execSock.wait(t), readPidFile(t, pidFile); got != want {
		t.Errorf("exec: the pidfd names pid %d, the exec'd process is %d", got, want)
	}
	// A socket nobody listens on is a one-line error, and nothing is made.
	id2 := cmdsID(t, "pidfd-none")
	e.track(id2)
	r := e.detached(nil, "run", "-d", "--pidfd-socket", filepath.Join(e.dir, "nobody.sock"), "--bundle", b, id2)
	oneErrorLine(t, "run with a dead pidfd socket", r, "pidfd socket")
	e.wantGone(id2)
}

// A bundle container refuses raw CRIU arguments by name, and keeps running.
func TestCommandsBundleRefusesCRIUArgs(t *testing.T) {
	e := newCmdsEnv(t)
	b := e.bundle("bundle", "sleep", "1000")
	id := cmdsID(t, "criuargs")
	e.track(id)
	if r := e.detached(nil, "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	r := e.rt(rtCall{}, "checkpoint", "--image-path", filepath.Join(e.dir, "ck"), id, "--", "--ghost-limit", "1M")
	oneErrorLine(t, "checkpoint -- CRIU-ARGS", r, "-- CRIU-ARGS does not apply to a bundle container")
	e.wantStatus(id, "running")
}
