package swrk

import (
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criurpc"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// A backend is one `criu swrk` behind a relay, reached on a channel.
type backend struct {
	ch *criurpc.Channel
	// inContainer: CRIU runs in a container's namespaces, where the
	// client's paths and pids mean nothing.
	inContainer bool
	// toCaller turns a pid as CRIU names it into the client's view; nil
	// when the views are the same.
	toCaller func(int32) (int32, error)
}

// errNoAnswer: CRIU ended without answering, as it does for requests it
// drops; the client then sees the connection end, as without us.
var errNoAnswer = errors.New("criu swrk ended without answering")

// converse sends the request packet (with the descriptors of its
// PeerFds) to b, then passes CRIU's notifications to the client and the
// client's replies back, until CRIU's final answer, which it returns
// unsent.
func (s *session) converse(b *backend, packet []byte, files []*os.File) (*rpc.CriuResp, error) {
	err := b.ch.Send(packet, files)
	closeFiles(files)
	if err != nil {
		return nil, errNoAnswer
	}
	for {
		resp, rfiles, err := b.ch.RecvResponse()
		if err != nil {
			return nil, errNoAnswer
		}
		if !criurpc.IsNotify(resp) {
			closeFiles(rfiles)
			return resp, nil
		}
		if n := resp.GetNotify(); n != nil && n.Pid != nil && b.toCaller != nil {
			if *n.Pid, err = b.toCaller(*n.Pid); err != nil {
				closeFiles(rfiles)
				return nil, fmt.Errorf("notification %s: %w", n.GetScript(), err)
			}
		}
		out, _ := resp.MarshalVT()
		err = s.client.Send(out, rfiles)
		closeFiles(rfiles)
		if err != nil {
			return nil, errNoAnswer // the client is gone: CRIU learns it from b's end
		}
		// CRIU waits for the client's reply before it goes on.
		reply, _, err := s.client.Recv()
		if err != nil {
			return nil, errNoAnswer
		}
		packet, files, err := s.forBackend(b, reply)
		if err != nil {
			return nil, err
		}
		err = b.ch.Send(packet, files)
		closeFiles(files)
		if err != nil {
			return nil, errNoAnswer
		}
	}
}

// forBackend makes a packet from the client into what b's relay must get:
// the request re-encoded with the client's descriptors attached. A packet
// that is no request goes on as it is, for CRIU to refuse.
func (s *session) forBackend(b *backend, packet []byte) ([]byte, []*os.File, error) {
	req, err := criurpc.DecodeReq(packet)
	if err != nil {
		return packet, nil, nil
	}
	files, err := s.peerFiles(req, b.inContainer)
	if err != nil {
		return nil, nil, err
	}
	out, err := req.MarshalVT()
	if err != nil {
		closeFiles(files)
		return nil, nil, err
	}
	return out, files, nil
}

// peerFiles takes from the client the descriptors req's PeerFds name, in
// that order. For a CRIU in a container, an images_dir path (which CRIU
// would resolve in its own mount namespace and cwd) becomes a descriptor
// opened here, where the client's cwd is ours.
func (s *session) peerFiles(req *rpc.CriuReq, inContainer bool) ([]*os.File, error) {
	opts := req.GetOpts()
	var images *os.File
	if inContainer && opts != nil && opts.GetImagesDirFd() == -1 && opts.GetImagesDir() != "" {
		f, err := os.Open(opts.GetImagesDir())
		if err != nil {
			return nil, fmt.Errorf("images_dir %s: %w", opts.GetImagesDir(), unwrap(err))
		}
		images = f
		opts.ImagesDirFd, opts.ImagesDir = ptr(int32(0)), nil // a placeholder: the relay sets it
	}
	var files []*os.File
	for _, field := range criurpc.PeerFds(opts) {
		if images != nil && field.Name == "images_dir_fd" {
			files = append(files, images)
			continue
		}
		fd, err := unix.PidfdGetfd(s.pidfd, int(*field.Fd), 0)
		if err != nil {
			closeFiles(files)
			closeFiles([]*os.File{images})
			return nil, fmt.Errorf("%s %d is no descriptor of the client (pid %d): %w", field.Name, *field.Fd, s.peer, err)
		}
		files = append(files, os.NewFile(uintptr(fd), field.Name))
	}
	return files, nil
}

// hostBackend is a `criu swrk` of the proxy's own, outside any container,
// for the requests of a connection that stays open.
type hostBackend struct {
	*backend
	done chan struct{}
}

func (s *session) hostBackend() (*backend, error) {
	if s.host != nil {
		return s.host.backend, nil
	}
	criu, err := shim.LookCRIU("")
	if err != nil {
		return nil, err
	}
	mine, relayEnd, err := criurpc.SocketPair()
	if err != nil {
		return nil, err
	}
	ch, err := criurpc.OpenChannel(mine, s.inherited)
	if err != nil {
		relayEnd.Close()
		return nil, err
	}
	h := &hostBackend{backend: &backend{ch: ch}, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		criurpc.Serve(relayEnd, criurpc.RelayOptions{CRIU: criu, Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}})
	}()
	s.host = h
	return h.backend, nil
}

// closeHost ends the proxy's own CRIU, if it runs, and waits for it.
func (s *session) closeHost() {
	if s.host == nil {
		return
	}
	s.host.ch.Shutdown()
	<-s.host.done
	s.host.ch.Close()
	s.host = nil
}

// hostRequest serves a request (raw; req when it parses) on the proxy's
// own CRIU, and says whether that CRIU reads on.
func (s *session) hostRequest(raw []byte, req *rpc.CriuReq) bool {
	b, err := s.hostBackend()
	if err != nil {
		s.answer(criurpc.ErrorResp(req.GetType(), err))
		return false
	}
	if req != nil && req.GetType() == rpc.CriuReqType_DUMP && req.GetOpts() != nil && req.GetOpts().Pid == nil {
		// A self-dump means the client, not the proxy CRIU talks to.
		req.Opts.Pid = ptr(int32(s.peer))
		raw, _ = req.MarshalVT()
	}
	packet, files, err := s.forBackend(b, raw)
	if err != nil {
		s.answer(criurpc.ErrorResp(req.GetType(), err))
		return false
	}
	final, err := s.converse(b, packet, files)
	if err != nil {
		if err != errNoAnswer {
			s.answer(criurpc.ErrorResp(req.GetType(), err))
		}
		return false
	}
	s.answer(final)
	return req != nil && criurpc.Continues(req, final)
}

// relayIn starts a relay inside the pid and mount namespaces of the
// container's init, whose CRIU is then a backend; stop ends and reaps it.
func (s *session) relayIn(init *pidfd.Proc) (b *backend, stop func(), err error) {
	rt, err := s.runtime()
	if err != nil {
		return nil, nil, err
	}
	criu, err := rt.CRIU()
	if err != nil {
		return nil, nil, err
	}
	mine, relayEnd, err := criurpc.SocketPair()
	if err != nil {
		return nil, nil, err
	}
	defer relayEnd.Close()
	cmd, err := setns.Command(setns.Options{Target: init, Files: []*os.File{relayEnd}, Stderr: os.Stderr},
		rt.Self, criurpc.RelayCommand(criu)...)
	if err != nil {
		mine.Close()
		return nil, nil, err
	}
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	err = cmd.Start()
	cmd.Close()
	if err != nil {
		mine.Close()
		return nil, nil, fmt.Errorf("start the relay in the container: %w", err)
	}
	ch, err := criurpc.OpenChannel(mine, s.inherited)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, err
	}
	stop = func() {
		ch.Shutdown()
		cmd.Wait()
		ch.Close()
	}
	return &backend{ch: ch, inContainer: true}, stop, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func ptr[T any](v T) *T { return &v }
