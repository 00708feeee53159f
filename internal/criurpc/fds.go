package criurpc

import (
	"encoding/json"
	"os"
	"sort"
	"strconv"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"
)

// Inherited lists the descriptors this process inherited that CRIU, run
// in its place, would have inherited too: every open fd above stderr that
// is not close-on-exec (descriptors this program opens itself always are),
// except those in skip.
func Inherited(skip ...int) []int {
	ents, _ := os.ReadDir("/proc/self/fd")
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue // the directory ReadDir read, or our own
		}
		skipped := false
		for _, s := range skip {
			skipped = skipped || s == fd
		}
		if !skipped {
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds
}

// CloseOnExecAll marks every descriptor above stderr close-on-exec: a
// relay process hands CRIU exactly the descriptors it means to.
func CloseOnExecAll() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// Channel is the proxy's end of a channel to a relay.
type Channel struct {
	*Conn
}

// OpenChannel takes ch and sends the hello: CRIU will find inherited (the
// proxy's own descriptors) at the same numbers.
func OpenChannel(ch *os.File, inherited []int) (*Channel, error) {
	c := &Channel{NewConn(ch)}
	b, err := json.Marshal(hello{Fds: inherited})
	if err == nil {
		err = c.sendFds(b, inherited)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// SendRequest sends req with files, the descriptors of PeerFds(req.Opts)
// in order, as the relay's peer must hold them.
func (c *Channel) SendRequest(req *rpc.CriuReq, files []*os.File) error {
	b, err := req.MarshalVT()
	if err != nil {
		return err
	}
	return c.Send(b, files)
}

// RecvResponse reads CRIU's next answer and the descriptors it carries.
func (c *Channel) RecvResponse() (*rpc.CriuResp, []*os.File, error) {
	b, files, err := c.Recv()
	if err != nil {
		return nil, nil, err
	}
	resp, err := DecodeResp(b)
	if err != nil {
		closeAll(files)
		return nil, nil, err
	}
	return resp, files, nil
}
