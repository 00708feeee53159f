package criurpc

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/rpc"
	"golang.org/x/sys/unix"
)

// The test binary doubles as a fake `criu swrk FD` for the relay tests.
const fakeEnv = "CRIURPC_FAKE_CRIU"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) != "" {
		os.Exit(fakeCRIU(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeCRIU serves one request as CRIU would resolve it: the images dir
// through /proc/<peer>/fd/N of its socket peer, each inherit_fd by its own
// number. It sends one notification, waits for the reply, then answers
// with what it found in cr_errmsg.
func fakeCRIU(args []string) int {
	if len(args) != 2 || args[0] != "swrk" {
		return 2
	}
	fd, _ := strconv.Atoi(args[1])
	c := NewConn(os.NewFile(uintptr(fd), "sk"))
	b, _, err := c.Recv()
	if err != nil {
		return 3
	}
	req, err := DecodeReq(b)
	if err != nil {
		return 4
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return 5
	}
	var found []string
	if link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", cred.Pid, req.GetOpts().GetImagesDirFd())); err == nil {
		found = append(found, "images="+link)
	}
	for _, i := range req.GetOpts().GetInheritFd() {
		var st unix.Stat_t
		if unix.Fstat(int(i.GetFd()), &st) == nil {
			found = append(found, fmt.Sprintf("%s=%d", i.GetKey(), st.Ino))
		}
	}
	note, _ := (&rpc.CriuResp{Type: rpc.CriuReqType_NOTIFY.Enum(), Success: ptr(true),
		Notify: &rpc.CriuNotify{Script: ptr("post-restore"), Pid: ptr(int32(42))}}).MarshalVT()
	// As with orphan-pts-master, the notification carries a descriptor.
	if c.Send(note, []*os.File{os.Stdin}) != nil {
		return 6
	}
	b, _, err = c.Recv()
	if ack, _ := DecodeReq(b); err != nil || !ack.GetNotifySuccess() {
		return 7
	}
	resp, _ := (&rpc.CriuResp{Type: req.Type, Success: ptr(true), CrErrmsg: ptr(strings.Join(found, " "))}).MarshalVT()
	c.Send(resp, nil)
	return 0
}

func TestRelay(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, "1")
	images := t.TempDir()
	dir, err := os.Open(images)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	// A descriptor the client handed "CRIU", at a number of its own.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	const inheritAt = 40
	if err := unix.Dup2(int(pw.Fd()), inheritAt); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(inheritAt)
	// Close-on-exec here: CRIU can only have it from the relay's hands.
	unix.CloseOnExec(inheritAt)
	var st unix.Stat_t
	unix.Fstat(inheritAt, &st)

	mine, theirs, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *rpc.CriuResp)
	go func() {
		last, err := Serve(theirs, RelayOptions{CRIU: self})
		if err != nil {
			t.Errorf("relay: %v", err)
		}
		done <- last
	}()
	ch, err := OpenChannel(mine, []int{inheritAt})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	// The request names descriptor 777 of the client; the file travels
	// with it, and the relay makes the field its own number.
	req := &rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: &rpc.CriuOpts{
		ImagesDirFd: ptr(int32(777)),
		InheritFd:   []*rpc.InheritFd{{Key: ptr("pipe:[1]"), Fd: ptr(int32(inheritAt))}},
	}}
	if err := ch.SendRequest(req, []*os.File{dir}); err != nil {
		t.Fatal(err)
	}
	note, noteFiles, err := ch.RecvResponse()
	if err != nil || !IsNotify(note) || note.GetNotify().GetPid() != 42 {
		t.Fatalf("want the notification unchanged, got %v (%v)", note, err)
	}
	if len(noteFiles) != 1 {
		t.Fatalf("the notification's descriptor did not come through: %d files", len(noteFiles))
	}
	if link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", noteFiles[0].Fd())); link != os.DevNull {
		t.Errorf("the notification's descriptor is %q, CRIU sent its stdin (%s)", link, os.DevNull)
	}
	noteFiles[0].Close()
	ack, _ := (&rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: ptr(true)}).MarshalVT()
	if err := ch.Send(ack, nil); err != nil {
		t.Fatal(err)
	}
	final, _, err := ch.RecvResponse()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("images=%s pipe:[1]=%d", images, st.Ino)
	if final.GetCrErrmsg() != want {
		t.Errorf("CRIU found %q, want %q", final.GetCrErrmsg(), want)
	}
	if _, _, err := ch.Recv(); err != io.EOF {
		t.Errorf("after CRIU's answer and exit the channel should end, got %v", err)
	}
	if last := <-done; last.GetCrErrmsg() != want {
		t.Errorf("Serve returned %v as CRIU's last answer", last)
	}
}

func TestConnCarriesDescriptors(t *testing.T) {
	a, b, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := NewConn(a), NewConn(b)
	defer ca.Close()
	defer cb.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	if err := ca.Send([]byte("hello"), []*os.File{pw}); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if p, err := cb.Peek(); err != nil || string(p) != "hello" {
		t.Fatalf("peek: %q %v", p, err)
	}
	msg, files, err := cb.Recv()
	if err != nil || string(msg) != "hello" || len(files) != 1 {
		t.Fatalf("recv: %q, %d files, %v", msg, len(files), err)
	}
	if flags, _ := unix.FcntlInt(files[0].Fd(), unix.F_GETFD, 0); flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("a received descriptor is not close-on-exec")
	}
	files[0].Write([]byte("x"))
	files[0].Close()
	if got, _ := io.ReadAll(pr); string(got) != "x" {
		t.Errorf("the descriptor that came is not the pipe sent: read %q", got)
	}
	ca.Shutdown()
	if _, _, err := cb.Recv(); err != io.EOF {
		t.Errorf("after the peer's shutdown: %v, want EOF", err)
	}
}

func TestPeerFds(t *testing.T) {
	all := &rpc.CriuOpts{ImagesDirFd: ptr(int32(3)), WorkDirFd: ptr(int32(4)), StatusFd: ptr(int32(5)), PidfdStoreSk: ptr(int32(6))}
	for _, c := range []struct {
		opts *rpc.CriuOpts
		want string
	}{
		{nil, ""},
		{&rpc.CriuOpts{}, ""}, // images_dir_fd's default is -1
		{&rpc.CriuOpts{ImagesDirFd: ptr(int32(-1)), ImagesDir: ptr("/img"), WorkDirFd: ptr(int32(7))}, "work_dir_fd=7"},
		{all, "images_dir_fd=3 work_dir_fd=4 status_fd=5 pidfd_store_sk=6"},
	} {
		var got []string
		for _, f := range PeerFds(c.opts) {
			got = append(got, fmt.Sprintf("%s=%d", f.Name, *f.Fd))
		}
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("PeerFds(%v) = %q, want %q", c.opts, s, c.want)
		}
	}
	// The fields are the request's own: setting one rewrites the request.
	*PeerFds(all)[1].Fd = 99
	if all.GetWorkDirFd() != 99 {
		t.Errorf("PeerFds returned copies, not the request's fields")
	}
}

func TestContinues(t *testing.T) {
	req := func(ty rpc.CriuReqType, keep bool) *rpc.CriuReq {
		return &rpc.CriuReq{Type: ty.Enum(), KeepOpen: ptr(keep)}
	}
	resp := func(ty rpc.CriuReqType, ok bool) *rpc.CriuResp {
		return &rpc.CriuResp{Type: ty.Enum(), Success: ptr(ok)}
	}
	for _, c := range []struct {
		req  *rpc.CriuReq
		resp *rpc.CriuResp
		want bool
	}{
		{req(rpc.CriuReqType_PRE_DUMP, false), resp(rpc.CriuReqType_PRE_DUMP, true), true}, // the pre-dump loop
		{req(rpc.CriuReqType_PRE_DUMP, false), resp(rpc.CriuReqType_PRE_DUMP, false), false},
		{req(rpc.CriuReqType_DUMP, false), resp(rpc.CriuReqType_DUMP, true), false},
		{req(rpc.CriuReqType_DUMP, true), resp(rpc.CriuReqType_DUMP, true), false}, // keep_open is not for dumps
		{req(rpc.CriuReqType_RESTORE, true), resp(rpc.CriuReqType_RESTORE, true), false},
		{req(rpc.CriuReqType_VERSION, true), resp(rpc.CriuReqType_VERSION, true), true},
		{req(rpc.CriuReqType_VERSION, false), resp(rpc.CriuReqType_VERSION, true), false},
		{req(rpc.CriuReqType_CPUINFO_CHECK, true), resp(rpc.CriuReqType_CPUINFO_CHECK, false), true},
		{req(rpc.CriuReqType_PAGE_SERVER_CHLD, true), resp(rpc.CriuReqType_PAGE_SERVER, true), true},
	} {
		if got := Continues(c.req, c.resp); got != c.want {
			t.Errorf("Continues(%s keep_open=%v, %s success=%v) = %v", c.req.GetType(), c.req.GetKeepOpen(),
				c.resp.GetType(), c.resp.GetSuccess(), got)
		}
	}
}

func TestErrorResp(t *testing.T) {
	r := ErrorResp(rpc.CriuReqType_RESTORE, fmt.Errorf("images_dir_fd 9: %w", unix.EBADF))
	if r.GetType() != rpc.CriuReqType_RESTORE || r.GetSuccess() || r.GetCrErrno() != int32(unix.EBADF) ||
		!strings.Contains(r.GetCrErrmsg(), "images_dir_fd 9") {
		t.Errorf("ErrorResp = %v", r)
	}
	if _, err := r.MarshalVT(); err != nil {
		t.Errorf("ErrorResp does not marshal (required fields?): %v", err)
	}
}
