package migrate

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"sync"
	"time"
)

const (
	// maxPayload bounds a frame, so a garbled length cannot make us
	// allocate gigabytes.
	maxPayload = 4 << 20
	// dataChunk is how much of a file one Data frame carries.
	dataChunk = 256 << 10
)

// writeFrame writes m as one frame.
func writeFrame(w io.Writer, m Message) error {
	var payload []byte
	if d, ok := m.(Data); ok {
		payload = d
	} else {
		var err error
		if payload, err = json.Marshal(m); err != nil {
			return err
		}
	}
	if len(payload) > maxPayload {
		return fmt.Errorf("%s message of %d bytes is too large", Name(m), len(payload))
	}
	frame := make([]byte, 5, 5+len(payload))
	frame[0] = byte(m.frame())
	binary.BigEndian.PutUint32(frame[1:], uint32(len(payload)))
	_, err := w.Write(append(frame, payload...))
	return err
}

// readFrame reads one frame. It reads exactly the frame's bytes: given
// an unbuffered connection, what follows stays in the socket.
func readFrame(r io.Reader) (Message, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxPayload {
		return nil, fmt.Errorf("frame of %d bytes: not the migration protocol, or garbled", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	t := frameType(hdr[0])
	if t == tData {
		return Data(payload), nil
	}
	m, err := newMessage(t)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("bad %s message: %w", Name(reflect.ValueOf(m).Elem().Interface().(Message)), err)
	}
	return reflect.ValueOf(m).Elem().Interface().(Message), nil
}

// LostError says the connection to the peer is gone.
type LostError struct {
	Peer Side
	Why  string
}

func (e *LostError) Error() string { return fmt.Sprintf("lost the %s: %s", e.Peer, e.Why) }

func lost(peer Side, timeout time.Duration, err error) error {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return &LostError{peer, fmt.Sprintf("nothing heard for %v", timeout)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return &LostError{peer, "connection closed"}
	}
	return &LostError{peer, err.Error()}
}

// Conn is the control connection of a migration, seen from one side. A
// goroutine reads it (dropping heartbeats) and another sends a heartbeat
// every third of the timeout; silence for the whole timeout is an error.
type Conn struct {
	nc      net.Conn
	peer    Side
	timeout time.Duration
	in      chan Incoming
	failed  chan struct{} // closed once the connection has ended
	stop    chan struct{}
	once    sync.Once
	wmu     sync.Mutex
}

// Incoming is what the reader got: a message, or the error that ends the
// connection (a peer's Error among them). Once an error came, every
// later Incoming repeats it.
type Incoming struct {
	Msg Message
	Err error
}

// NewConn runs the protocol on nc, whose first frame has been read
// already; peer is the other side.
func NewConn(nc net.Conn, peer Side, timeout time.Duration) *Conn {
	c := &Conn{nc: nc, peer: peer, timeout: timeout, in: make(chan Incoming, 16), failed: make(chan struct{}), stop: make(chan struct{})}
	go c.read()
	go c.beat()
	return c
}

// Peer is the side at the other end.
func (c *Conn) Peer() Side { return c.peer }

// Incoming delivers what the peer sends.
func (c *Conn) Incoming() <-chan Incoming { return c.in }

// Failed is closed once the connection has ended (the peer's Error, lost,
// closed): a wait for something else can watch it without taking a
// message. Recv then returns why.
func (c *Conn) Failed() <-chan struct{} { return c.failed }

// Recv waits for the next message.
func (c *Conn) Recv() (Message, error) {
	in := <-c.in
	return in.Msg, in.Err
}

// Send sends m; a write that makes no progress for the timeout fails.
func (c *Conn) Send(m Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.timeout))
	if err := writeFrame(c.nc, m); err != nil {
		return lost(c.peer, c.timeout, err)
	}
	return nil
}

// Fail tells the peer that side failed and why, as well as it still can.
func (c *Conn) Fail(side Side, err error) {
	c.Send(Error{Side: side, Message: err.Error()})
}

// Close ends the connection.
func (c *Conn) Close() {
	c.once.Do(func() {
		close(c.stop)
		c.nc.Close()
	})
}

func (c *Conn) read() {
	r := bufio.NewReaderSize(deadlineReader{c}, 64<<10)
	var err error
	for err == nil {
		var m Message
		if m, err = readFrame(r); err != nil {
			err = lost(c.peer, c.timeout, err)
			break
		}
		switch m := m.(type) {
		case Heartbeat:
			continue
		case Error:
			err = m
		default:
			select {
			case c.in <- Incoming{Msg: m}:
			case <-c.stop:
				return
			}
		}
	}
	close(c.failed)
	for {
		select {
		case c.in <- Incoming{Err: err}:
		case <-c.stop:
			return
		}
	}
}

func (c *Conn) beat() {
	t := time.NewTicker(c.timeout / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.Send(Heartbeat{})
		case <-c.stop:
			return
		}
	}
}

// deadlineReader gives every read of the connection the full timeout:
// a slow transfer is fine, silence is not.
type deadlineReader struct{ c *Conn }

func (d deadlineReader) Read(p []byte) (int, error) {
	d.c.nc.SetReadDeadline(time.Now().Add(d.c.timeout))
	return d.c.nc.Read(p)
}

// First reads the frame that opens a connection (Hello or Attach) and
// nothing more, within timeout.
func First(nc net.Conn, timeout time.Duration) (Message, error) {
	nc.SetReadDeadline(time.Now().Add(timeout))
	defer nc.SetReadDeadline(time.Time{})
	m, err := readFrame(nc)
	if err != nil {
		return nil, lost(Source, timeout, err)
	}
	return m, nil
}

// AttachData opens a data connection: it sends Attach for round and waits
// for the destination's Attached. After it, nc carries CRIU's bytes only.
func AttachData(nc net.Conn, session string, round int, timeout time.Duration) error {
	return attach(nc, Attach{Magic: magic, Version: Version, Session: session, Round: round}, timeout)
}

// AttachImages opens the data connection of the image files' bytes.
func AttachImages(nc net.Conn, session string, timeout time.Duration) error {
	return attach(nc, Attach{Magic: magic, Version: Version, Session: session, Images: true}, timeout)
}

func attach(nc net.Conn, a Attach, timeout time.Duration) error {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	if err := writeFrame(nc, a); err != nil {
		return lost(Destination, timeout, err)
	}
	m, err := readFrame(nc)
	if err != nil {
		return lost(Destination, timeout, err)
	}
	switch m := m.(type) {
	case Attached:
		return nil
	case Error:
		return m
	}
	return fmt.Errorf("destination answered a data connection with %s", Name(m))
}

// Check refuses an Attach that is not of this session.
func (a Attach) Check(session string) error {
	switch {
	case a.Magic != magic || a.Version != Version:
		return fmt.Errorf("data connection of another protocol version (%d)", a.Version)
	case a.Session != session:
		return fmt.Errorf("data connection of another migration")
	}
	return nil
}

// AcceptData answers an Attach: from now on nc is CRIU's.
func AcceptData(nc net.Conn, timeout time.Duration) error {
	nc.SetWriteDeadline(time.Now().Add(timeout))
	defer nc.SetWriteDeadline(time.Time{})
	return writeFrame(nc, Attached{})
}

// Refuse answers a connection's first frame with an error, and closes it.
func Refuse(nc net.Conn, side Side, err error) {
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	writeFrame(nc, Error{Side: side, Message: err.Error()})
	nc.Close()
}
