package migrate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFrameRoundTrip(t *testing.T) {
	msgs := []Message{
		NewHello("s1", PostCopy, 0, "container web", CRIUFeatures{TCPEstablished: true}),
		Welcome{Version: Version}, PreDump{Round: 2}, PreDumpDone{Round: 2}, PreDumpStored{Round: 2},
		Dump{}, File{Name: "core-1.img", Size: 12}, Data("twelve bytes"), ImagesDone{Files: 1, Bytes: 12},
		Restored{RootPid: 4242}, Commit{}, Running{}, Done{}, Heartbeat{},
		Error{Side: Destination, Message: "criu restore failed"},
		Attach{Magic: magic, Version: Version, Session: "s1", Round: 3}, Attached{},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := writeFrame(&buf, m); err != nil {
			t.Fatalf("write %s: %v", Name(m), err)
		}
	}
	for _, want := range msgs {
		got, err := readFrame(&buf)
		if err != nil {
			t.Fatalf("read %s: %v", Name(want), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %#v, want %#v", got, want)
		}
	}
	if _, err := readFrame(&buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

func TestReadFrameRefusesGarbage(t *testing.T) {
	huge := []byte{byte(tHello), 0, 0, 0, 0}
	binary.BigEndian.PutUint32(huge[1:], maxPayload+1)
	for name, b := range map[string][]byte{
		"too large":    huge,
		"unknown type": {'?', 0, 0, 0, 2, '{', '}'},
		"bad JSON":     {byte(tHello), 0, 0, 0, 1, '{'},
		"cut short":    {byte(tHello), 0, 0, 0, 9, '{'},
	} {
		if m, err := readFrame(bytes.NewReader(b)); err == nil {
			t.Errorf("%s: read %#v", name, m)
		}
	}
}

func TestHelloCheck(t *testing.T) {
	ok := NewHello("s", PreCopy, 2, "tree 1", CRIUFeatures{})
	if err := ok.Check(); err != nil {
		t.Errorf("a good Hello: %v", err)
	}
	for name, mangle := range map[string]func(*Hello){
		"magic":              func(h *Hello) { h.Magic = "http" },
		"version":            func(h *Hello) { h.Version = Version + 1 },
		"mode":               func(h *Hello) { h.Mode = "teleport" },
		"session":            func(h *Hello) { h.Session = "" },
		"pre-copy, 0 rounds": func(h *Hello) { h.Rounds = 0 },
		"plain with rounds":  func(h *Hello) { h.Mode = Plain },
	} {
		h := ok
		mangle(&h)
		if err := h.Check(); err == nil {
			t.Errorf("%s: accepted %+v", name, h)
		}
	}
	h := ok
	h.Version = Version + 1
	if err := h.Check(); !strings.Contains(err.Error(), "version") {
		t.Errorf("a version mismatch says %q", err)
	}
}

// pair is two ends of a TCP connection on the loopback.
func pair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestConnMessagesAndPeerError(t *testing.T) {
	a, b := pair(t)
	src, dst := NewConn(a, Destination, 5*time.Second), NewConn(b, Source, 5*time.Second)
	defer src.Close()
	defer dst.Close()
	if err := src.Send(Dump{}); err != nil {
		t.Fatal(err)
	}
	if m, err := dst.Recv(); err != nil || m != (Dump{}) {
		t.Fatalf("got %v, %v", m, err)
	}
	select {
	case <-dst.Failed():
		t.Fatal("Failed is closed on a live connection")
	default:
	}
	src.Fail(Source, errors.New("criu dump failed"))
	<-dst.Failed()           // without taking a message
	for i := 0; i < 2; i++ { // and it stays failed
		_, err := dst.Recv()
		var e Error
		if !errors.As(err, &e) || e.Side != Source || err.Error() != "source: criu dump failed" {
			t.Fatalf("after the peer's Error: %v", err)
		}
	}
}

// A quiet but live peer is fine (heartbeats); a silent one is an error.
func TestConnHeartbeatsAndSilence(t *testing.T) {
	a, b := pair(t)
	timeout := 300 * time.Millisecond
	src, dst := NewConn(a, Destination, timeout), NewConn(b, Source, timeout)
	defer src.Close()
	defer dst.Close()
	select {
	case in := <-dst.Incoming():
		t.Fatalf("a quiet connection delivered %+v", in)
	case <-time.After(4 * timeout):
	}
	src.Send(Done{})
	if m, err := dst.Recv(); err != nil || m != (Done{}) {
		t.Fatalf("after a quiet spell: %v, %v", m, err)
	}

	// A peer that says nothing at all.
	c, d := pair(t)
	silent := NewConn(c, Source, timeout)
	defer silent.Close()
	_, err := silent.Recv()
	var lost *LostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "nothing heard") {
		t.Errorf("a silent peer: %v", err)
	}
	d.Close()

	// And one that hangs up.
	e, f := pair(t)
	gone := NewConn(e, Destination, time.Minute)
	defer gone.Close()
	f.Close()
	if _, err := gone.Recv(); !errors.As(err, &lost) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a closed connection: %v", err)
	}
}

func TestImagesTravel(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{
		"inventory.img": []byte("inv"),
		"core-1.img":    bytes.Repeat([]byte{7}, 3*dataChunk+5), // several Data frames
		"empty.img":     nil,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(src, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// What does not travel: logs, directories, links.
	os.WriteFile(filepath.Join(src, "dump.log"), []byte("log"), 0o644)
	os.Mkdir(filepath.Join(src, "pre-1"), 0o755)
	os.Symlink("pre-1", filepath.Join(src, "parent"))

	a, b := pair(t)
	s, d := NewConn(a, Destination, 5*time.Second), NewConn(b, Source, 5*time.Second)
	defer s.Close()
	defer d.Close()
	dataOut, dataIn := pair(t)
	sent := make(chan ImagesDone, 1)
	go func() {
		done, err := s.SendImages(src, "", dataOut)
		if err != nil {
			t.Error(err)
		}
		sent <- done
	}()
	dst := t.TempDir()
	var got ImagesDone
	for {
		m, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := m.(File); ok {
			if err := d.ReceiveFile(dst, f, dataIn); err != nil {
				t.Fatal(err)
			}
			got.Files++
			got.Bytes += f.Size
			continue
		}
		if m != (<-sent) || m != got {
			t.Fatalf("ImagesDone %+v, received %+v", m, got)
		}
		break
	}
	ents, _ := os.ReadDir(dst)
	if len(ents) != len(files) {
		t.Errorf("received %d files, want %d: %v", len(ents), len(files), ents)
	}
	for name, want := range files {
		if b, err := os.ReadFile(filepath.Join(dst, name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(b), err, len(want))
		}
	}
}

func TestReceiveFileRefuses(t *testing.T) {
	for _, name := range []string{"", "..", "../x", "a/b", "parent", ".", "x\n"} {
		if ValidImageName(name) {
			t.Errorf("ValidImageName(%q)", name)
		}
	}
	a, b := pair(t)
	s, d := NewConn(a, Destination, 5*time.Second), NewConn(b, Source, 5*time.Second)
	defer s.Close()
	defer d.Close()
	dir := t.TempDir()
	dataOut, dataIn := pair(t)
	if err := d.ReceiveFile(dir, File{Name: "../evil", Size: 1}, dataIn); err == nil {
		t.Error("stored a file outside the directory")
	}
	for _, bad := range []string{"..", "/etc", "pre-1/..", "pre-", "pre-x", "other"} {
		if err := d.ReceiveFile(dir, File{Name: "inventory.img", Size: 1, Dir: bad}, dataIn); err == nil {
			t.Errorf("stored a file in the directory %q", bad)
		}
	}
	// A pre-dump round's file lands in its directory.
	os.Mkdir(filepath.Join(dir, "pre-2"), 0o755)
	go dataOut.Write([]byte("i"))
	if err := d.ReceiveFile(dir, File{Name: "inventory.img", Size: 1, Dir: "pre-2"}, dataIn); err != nil {
		t.Errorf("a round's file: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "pre-2", "inventory.img")); err != nil || string(b) != "i" {
		t.Errorf("pre-2/inventory.img holds %q (%v)", b, err)
	}
	os.WriteFile(filepath.Join(dir, "core-1.img"), []byte("mine"), 0o644)
	if err := d.ReceiveFile(dir, File{Name: "core-1.img", Size: 1}, dataIn); err == nil {
		t.Error("replaced a file")
	}
	// Fewer bytes than announced, then the connection ends.
	dataOut.Write([]byte("abc"))
	dataOut.Close()
	if err := d.ReceiveFile(dir, File{Name: "short.img", Size: 5}, dataIn); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("a file cut short: %v", err)
	}
}

// After Attach and Attached, the connection holds only what the peers
// write next: nothing of it is buffered away.
func TestAttachHandsOverExactly(t *testing.T) {
	a, b := pair(t)
	done := make(chan error, 1)
	go func() {
		m, err := First(b, 5*time.Second)
		if err == nil {
			att, ok := m.(Attach)
			if !ok {
				err = errors.New("not an Attach")
			} else if err = att.Check("s1"); err == nil && att.Round != 2 {
				err = errors.New("wrong round")
			}
		}
		if err == nil {
			err = AcceptData(b, 5*time.Second)
		}
		if err == nil {
			_, err = b.Write([]byte("criu bytes"))
		}
		done <- err
	}()
	// Whatever CRIU sends right after Attach must reach the other CRIU.
	if err := AttachData(a, "s1", 2, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 10)
	if _, err := io.ReadFull(a, got); err != nil || string(got) != "criu bytes" {
		t.Errorf("after the hand-over: %q, %v", got, err)
	}

	// Another session's data connection is refused, with a reason.
	c, d := pair(t)
	go func() {
		m, _ := First(d, 5*time.Second)
		Refuse(d, Destination, m.(Attach).Check("s1"))
	}()
	if err := AttachData(c, "other", 0, 5*time.Second); err == nil || !strings.Contains(err.Error(), "another migration") {
		t.Errorf("a stranger's data connection: %v", err)
	}
}

func TestHook(t *testing.T) {
	h, err := NewHook()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	name, _, _ := strings.Cut(strings.TrimPrefix(h.Env(), hookEnv+"="), " ")
	run := func(action, env string) chan int {
		t.Setenv(hookEnv, env)
		t.Setenv("CRTOOLS_SCRIPT_ACTION", action)
		if !IsHook() {
			t.Fatal("IsHook is false with CRIU's environment")
		}
		code := make(chan int, 1)
		go func() { code <- RunHook() }()
		return code
	}
	env := strings.TrimPrefix(h.Env(), hookEnv+"=")
	for _, tc := range []struct {
		action string
		goOn   bool
		want   int
	}{{ActionPostDump, true, 0}, {ActionPostDump, false, 1}, {ActionPreDump, true, 0}} {
		code := run(tc.action, env)
		call := <-h.Calls()
		if call.Action != tc.action {
			t.Errorf("call for %q, want %q", call.Action, tc.action)
		}
		call.Answer(tc.goOn)
		if got := <-code; got != tc.want {
			t.Errorf("%s answered %v: exit %d, want %d", tc.action, tc.goOn, got, tc.want)
		}
	}
	// Stages the source does not care about are answered at once.
	if got := <-run("network-lock", env); got != 0 {
		t.Errorf("network-lock: exit %d", got)
	}
	// A wrong token, or a source that is gone, must not let CRIU go on.
	if got := <-run(ActionPostDump, name+" wrong-token"); got != 1 {
		t.Errorf("wrong token: exit %d", got)
	}
	h.Close()
	if got := <-run(ActionPostDump, env); got != 1 {
		t.Errorf("source gone: exit %d", got)
	}
}
