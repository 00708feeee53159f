package swrk

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/mountns"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// Env is what the proxy takes from criu-ns mode.
type Env struct {
	Root  string        // where criu-ns keeps its containers
	NewID func() string // names a new container
}

// Main serves `swrk FD` (args: what follows "swrk") and returns the exit
// code.
func Main(args []string, env Env) int {
	fd, err := socketArg(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "criu-ns:", err)
		return 1
	}
	// pycriu closes stdio before it execs us: whatever we open next must
	// not land on 0, 1 or 2, where a stray write would hit a socket.
	openStdio()
	s := &session{env: env, clientFd: fd, inherited: criurpc.Inherited(fd)}
	if err := s.open(); err != nil {
		fmt.Fprintln(os.Stderr, "criu-ns swrk:", err)
		return 1
	}
	defer s.close()
	return s.serve()
}

// socketArg reads CRIU's `swrk <fd>` argument.
func socketArg(args []string) (int, error) {
	if len(args) != 1 {
		return 0, errors.New("usage: criu-ns swrk <fd>")
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil || fd < 0 {
		return 0, fmt.Errorf("swrk: %q is not a descriptor number", args[0])
	}
	return fd, nil
}

func openStdio() {
	for fd := 0; fd <= 2; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			continue
		}
		if null, err := unix.Open(os.DevNull, unix.O_RDWR, 0); err == nil && null != fd {
			unix.Dup2(null, fd)
			unix.Close(null)
		}
	}
}

// session is one client connection.
type session struct {
	env       Env
	clientFd  int
	client    *criurpc.Conn
	peer      int   // the client's pid: CRIU's socket peer, had it run in our place
	pidfd     int   // of the client, to take its descriptors
	inherited []int // what the client handed us, for CRIU
	rt        *shim.Runtime
	host      *hostBackend // a `criu swrk` of our own, once one is needed
	ok        bool         // the last answer was a success
}

func (s *session) open() error {
	cred, err := unix.GetsockoptUcred(s.clientFd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return fmt.Errorf("fd %d is not CRIU's RPC socket: %w", s.clientFd, err)
	}
	s.peer = int(cred.Pid)
	if s.pidfd, err = unix.PidfdOpen(s.peer, 0); err != nil {
		return fmt.Errorf("pidfd of the client %d: %w", s.peer, err)
	}
	// Ours until we hand it to CRIU (beforeExec): no relay's CRIU inherits it.
	unix.CloseOnExec(s.clientFd)
	s.client = criurpc.NewConn(os.NewFile(uintptr(s.clientFd), "swrk"))
	return nil
}

func (s *session) close() {
	s.closeHost()
	unix.Close(s.pidfd)
}

// A route is where a request goes.
type route int

const (
	toHost    route = iota // a plain CRIU: exec'd, or a relay of ours
	toRestore              // a new tree container
	toTree                 // a relay inside a tree container
)

// serve routes requests until the connection ends, and returns the exit
// code.
func (s *session) serve() int {
	for first := true; ; first = false {
		raw, err := s.client.Peek()
		if err != nil {
			return s.exit() // the client is done, as CRIU would be
		}
		req, perr := criurpc.DecodeReq(raw)
		where, tree, err := s.route(req)
		if err != nil {
			s.client.Recv()
			s.answer(criurpc.ErrorResp(req.GetType(), err))
			return s.exit()
		}
		switch {
		case where == toRestore && !mountns.Private():
			// A tree restore stages the host's root in a mount namespace
			// of its own: start again there, the request still unread.
			s.closeHost()
			s.beforeExec()
			return s.failed(mountns.Reexec())
		case where == toRestore:
			s.client.Recv()
			s.restore(req)
			return s.exit() // RESTORE never keeps the connection
		case where == toTree:
			s.client.Recv()
			s.dumpTree(req, tree)
			return s.exit() // a dump ends the connection, as CRIU's does
		case first && (perr != nil || !req.GetKeepOpen()):
			// CRIU alone, start to end: be it.
			s.beforeExec()
			return s.failed(s.execCRIU())
		}
		s.client.Recv()
		if !s.hostRequest(raw, req) {
			return s.exit()
		}
	}
}

// route says where req goes; tree is the container of a dump's pid.
func (s *session) route(req *rpc.CriuReq) (where route, tree string, err error) {
	switch req.GetType() {
	case rpc.CriuReqType_RESTORE:
		return toRestore, "", nil
	case rpc.CriuReqType_DUMP, rpc.CriuReqType_PRE_DUMP, rpc.CriuReqType_SINGLE_PRE_DUMP:
		pid := req.GetOpts().GetPid()
		if pid <= 0 {
			return toHost, "", nil // a self-dump: the client is no tree of ours
		}
		rt, err := s.runtime()
		if err != nil {
			return toHost, "", err
		}
		id, _, err := rt.FindTree(int(pid))
		if err != nil || id == "" {
			return toHost, "", err
		}
		return toTree, id, nil
	}
	return toHost, "", nil
}

func (s *session) runtime() (*shim.Runtime, error) {
	if s.rt == nil {
		rt, err := shim.New(s.env.Root, "")
		if err != nil {
			return nil, err
		}
		s.rt = rt
	}
	return s.rt, nil
}

// answer sends CRIU's (or our) answer to the client.
func (s *session) answer(resp *rpc.CriuResp) {
	s.ok = resp.GetSuccess()
	if b, err := resp.MarshalVT(); err == nil {
		s.client.Send(b, nil)
	}
}

func (s *session) exit() int {
	s.closeHost()
	if s.ok {
		return 0
	}
	return 1
}

// failed reports an exec that returned.
func (s *session) failed(err error) int {
	fmt.Fprintln(os.Stderr, "criu-ns swrk:", err)
	return 1
}

// beforeExec gives the client's socket back to whatever runs next.
func (s *session) beforeExec() {
	unix.FcntlInt(uintptr(s.clientFd), unix.F_SETFD, 0)
}

// execCRIU replaces the proxy with `criu swrk FD` on the client's socket.
func (s *session) execCRIU() error {
	criu, err := shim.LookCRIU("")
	if err != nil {
		return err
	}
	return syscall.Exec(criu, []string{criu, "swrk", strconv.Itoa(s.clientFd)}, os.Environ())
}
