package criurpc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// maxFds is how many descriptors one packet may carry (the kernel's
// SCM_MAX_FD).
const maxFds = 253

// Conn is one end of a SOCK_SEQPACKET socket: a packet is one message,
// with descriptors attached or not. Calls block; Shutdown wakes them.
type Conn struct {
	f *os.File
}

// NewConn takes ownership of f, a SOCK_SEQPACKET socket.
func NewConn(f *os.File) *Conn { return &Conn{f: f} }

// SocketPair makes a connected pair of SOCK_SEQPACKET sockets, both
// close-on-exec.
func SocketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "seqpacket"), os.NewFile(uintptr(fds[1]), "seqpacket"), nil
}

func (c *Conn) fd() int { return int(c.f.Fd()) }

// Peek returns the next packet without taking it; io.EOF once the peer
// has gone (or sent an empty packet, which CRIU takes for the same).
func (c *Conn) Peek() ([]byte, error) {
	n, err := c.size()
	if err != nil || n == 0 {
		return nil, err
	}
	buf := make([]byte, n)
	for {
		n, _, _, _, err = unix.Recvmsg(c.fd(), buf, nil, unix.MSG_PEEK)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("recvmsg: %w", err)
	}
	return buf[:n], nil
}

// size is the length of the next packet, read as CRIU reads it; 0 with
// io.EOF at the end.
func (c *Conn) size() (int, error) {
	for {
		n, _, _, _, err := unix.Recvmsg(c.fd(), nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECONNRESET:
			return 0, io.EOF
		case err != nil:
			return 0, fmt.Errorf("recvmsg: %w", err)
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// Recv takes the next packet and the descriptors that came with it (they
// are close-on-exec; the caller owns them).
func (c *Conn) Recv() ([]byte, []*os.File, error) {
	n, err := c.size()
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, n)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	var oobn, flags int
	for {
		n, oobn, flags, _, err = unix.Recvmsg(c.fd(), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("recvmsg: %w", err)
	}
	files, err := parseRights(oob[:oobn])
	if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		err = errors.New("recvmsg: packet or its descriptors truncated")
	}
	if err != nil {
		closeAll(files)
		return nil, nil, err
	}
	return buf[:n], files, nil
}

func parseRights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue // not SCM_RIGHTS
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return files, nil
}

// Send writes one packet with files attached.
func (c *Conn) Send(b []byte, files []*os.File) error {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	err := c.sendFds(b, fds)
	runtime.KeepAlive(files)
	return err
}

func (c *Conn) sendFds(b []byte, fds []int) error {
	if len(fds) > maxFds {
		return fmt.Errorf("%d descriptors in one packet, at most %d", len(fds), maxFds)
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err := unix.Sendmsg(c.fd(), b, oob, nil, 0)
		if err != unix.EINTR {
			if err != nil {
				return fmt.Errorf("sendmsg: %w", err)
			}
			return nil
		}
	}
}

// Shutdown ends the connection both ways: the peer reads EOF, and a Recv
// blocked on this end returns io.EOF.
func (c *Conn) Shutdown() { unix.Shutdown(c.fd(), unix.SHUT_RDWR) }

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
