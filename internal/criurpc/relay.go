package criurpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// hello opens a channel: Fds are the numbers at which CRIU must find the
// descriptors attached to the hello packet, in that order.
type hello struct {
	Fds []int `json:"fds"`
}

// RelayOptions say how a relay runs CRIU.
type RelayOptions struct {
	CRIU string // the CRIU binary
	// BeforeCRIU, if set, sees the first request, its descriptors already
	// the relay's own, before CRIU starts; an error is sent back as the
	// answer and ends the relay. (The container's init reserves pids here:
	// CRIU itself must not take a pid the images need.)
	BeforeCRIU func(req *rpc.CriuReq) error
	// Stdio are CRIU's fds 0, 1 and 2 (nil: /dev/null).
	Stdio [3]*os.File
}

// Serve is the relay: it reads the hello and the first request from the
// channel ch, starts `criu swrk` as CRIU's socket peer, and carries
// packets both ways until CRIU ends its side (or the channel's other end
// goes away). It returns CRIU's last answer that was not a notification,
// nil if there was none. It closes ch and every descriptor it received.
func Serve(ch *os.File, o RelayOptions) (*rpc.CriuResp, error) {
	r := &relay{ch: NewConn(ch), o: o}
	defer r.ch.Close()
	defer r.release()
	inherited, err := r.readHello()
	if err != nil {
		return nil, err
	}
	first, err := r.readRequest()
	req, _ := DecodeReq(first)
	if err == io.EOF {
		closeInherited(inherited)
		return nil, nil // the proxy had nothing to ask after all
	}
	if err != nil {
		closeInherited(inherited)
		r.reply(req, err)
		return nil, err
	}
	if o.BeforeCRIU != nil && req != nil {
		if err := o.BeforeCRIU(req); err != nil {
			closeInherited(inherited)
			r.reply(req, err)
			return nil, err
		}
	}
	proc, err := r.startCRIU(inherited)
	closeInherited(inherited)
	if err != nil {
		r.reply(req, err)
		return nil, err
	}
	if err := r.criu.Send(first, nil); err != nil {
		r.criu.Shutdown()
	}
	last := r.pump()
	if _, err := proc.Wait(); err != nil {
		return last, fmt.Errorf("wait for criu swrk: %w", err)
	}
	return last, nil
}

type relay struct {
	ch, criu *Conn
	o        RelayOptions
	held     []*os.File // descriptors of the request CRIU works on
}

func (r *relay) release() {
	closeAll(r.held)
	r.held = nil
}

// inheritedFd is a descriptor CRIU must find at number at.
type inheritedFd struct {
	f  *os.File
	at int
}

func closeInherited(fds []inheritedFd) {
	for _, i := range fds {
		i.f.Close()
	}
}

func (r *relay) readHello() ([]inheritedFd, error) {
	b, files, err := r.ch.Recv()
	if err != nil {
		return nil, fmt.Errorf("relay hello: %w", err)
	}
	var h hello
	if err := json.Unmarshal(b, &h); err != nil || len(h.Fds) != len(files) {
		closeAll(files)
		return nil, fmt.Errorf("relay hello: bad packet (%d fds attached)", len(files))
	}
	fds := make([]inheritedFd, len(files))
	for i, f := range files {
		if h.Fds[i] <= 2 {
			closeAll(files)
			return nil, fmt.Errorf("relay hello: fd %d is stdio", h.Fds[i])
		}
		fds[i] = inheritedFd{f: f, at: h.Fds[i]}
	}
	return fds, nil
}

// readRequest takes the next request from the channel, makes the
// descriptors that came with it the relay's own, and returns the request
// as CRIU must see it.
func (r *relay) readRequest() ([]byte, error) {
	b, files, err := r.ch.Recv()
	if err != nil {
		return nil, err
	}
	req, err := DecodeReq(b)
	if err != nil {
		closeAll(files)
		return b, nil // CRIU answers garbage as it does
	}
	fields := PeerFds(req.Opts)
	if len(fields) != len(files) {
		closeAll(files)
		return nil, fmt.Errorf("relay: request names %d descriptors, %d came with it", len(fields), len(files))
	}
	if len(files) == 0 {
		return b, nil
	}
	for i, f := range fields {
		*f.Fd = int32(files[i].Fd())
	}
	// CRIU opens what the request names while it sets up the request;
	// once a new request comes, the old one's descriptors can go.
	r.release()
	r.held = files
	return req.MarshalVT()
}

// reply answers req (nil: unparsable) with err, on the channel.
func (r *relay) reply(req *rpc.CriuReq, err error) {
	t := rpc.CriuReqType_EMPTY
	if req != nil {
		t = req.GetType()
	}
	if b, merr := ErrorResp(t, err).MarshalVT(); merr == nil {
		r.ch.Send(b, nil)
	}
}

// startCRIU starts `criu swrk` on a new socket pair whose other end the
// relay keeps: the relay is CRIU's peer. inherited keep their numbers.
func (r *relay) startCRIU(inherited []inheritedFd) (*os.Process, error) {
	mine, theirs, err := SocketPair()
	if err != nil {
		return nil, err
	}
	defer theirs.Close()
	files := []*os.File{r.o.Stdio[0], r.o.Stdio[1], r.o.Stdio[2]}
	for i, f := range files {
		if f == nil {
			null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
			if err != nil {
				mine.Close()
				return nil, err
			}
			defer null.Close()
			files[i] = null
		}
	}
	for _, i := range inherited {
		for len(files) <= i.at {
			files = append(files, nil)
		}
		files[i.at] = i.f
	}
	skFd := len(files)
	files = append(files, theirs)
	proc, err := os.StartProcess(r.o.CRIU, []string{r.o.CRIU, "swrk", strconv.Itoa(skFd)}, &os.ProcAttr{Files: files})
	if err != nil {
		mine.Close()
		return nil, fmt.Errorf("start criu swrk: %w", err)
	}
	r.criu = NewConn(mine)
	return proc, nil
}

// pump carries packets both ways until CRIU's side ends, and returns
// CRIU's last answer that was not a notification.
func (r *relay) pump() *rpc.CriuResp {
	defer r.criu.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // channel → CRIU
		defer wg.Done()
		for {
			b, err := r.readRequest()
			if err == nil {
				err = r.criu.Send(b, nil)
			}
			if err != nil {
				// Whatever the reason, CRIU must learn that no more comes.
				r.criu.Shutdown()
				return
			}
		}
	}()
	var last *rpc.CriuResp
	for { // CRIU → channel
		b, files, err := r.criu.Recv()
		if err != nil {
			break
		}
		if resp, err := DecodeResp(b); err == nil && !IsNotify(resp) {
			last = resp
		}
		err = r.ch.Send(b, files)
		closeAll(files)
		if err != nil {
			break
		}
	}
	// CRIU is done (or the proxy gone): the proxy reads EOF, and the
	// reader above wakes up.
	r.ch.Shutdown()
	r.criu.Shutdown()
	wg.Wait()
	return last
}

// RelayArg is the hidden command of the runtime's binary that runs a
// relay as its own process (RelayMain).
const RelayArg = "criu-rpc-relay"

// RelayCommand is the argument list (after the binary) of a relay process
// with the channel at fd 3 that runs criu.
func RelayCommand(criu string) []string { return []string{RelayArg, criu} }

// RelayMain is a relay process: `BINARY criu-rpc-relay CRIU`, the
// channel at fd 3, stdio passed on to CRIU. A dump runs it inside a
// container's namespaces (internal/setns). It never returns.
func RelayMain(args []string) {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "usage: %s CRIU (channel at fd 3)\n", RelayArg)
		os.Exit(2)
	}
	CloseOnExecAll() // CRIU gets exactly what the relay hands it
	_, err := Serve(os.NewFile(3, "channel"), RelayOptions{CRIU: args[0], Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "criu-rpc-relay:", err)
		os.Exit(1)
	}
	os.Exit(0)
}
