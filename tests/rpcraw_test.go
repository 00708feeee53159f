package tests

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	criu "github.com/checkpoint-restore/go-criu/v8"
	"github.com/checkpoint-restore/go-criu/v8/rpc"
)

// rawClient speaks CRIU's RPC protocol packet by packet to `BIN swrk FD`,
// as the client libraries do, but sends whatever the test wants.
type rawClient struct {
	t    *testing.T
	conn *net.UnixConn
	cmd  *exec.Cmd
}

func (e *env) rawClient(bin string) *rawClient {
	e.t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	mine, theirs := os.NewFile(uintptr(fds[0]), "client"), os.NewFile(uintptr(fds[1]), "swrk")
	defer theirs.Close()
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(bin, "swrk", "3")
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+e.root)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	r := &rawClient{t: e.t, conn: c.(*net.UnixConn), cmd: cmd}
	e.t.Cleanup(func() { r.close() })
	return r
}

func (r *rawClient) send(b []byte) {
	r.t.Helper()
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("send: %v", err)
	}
}

func (r *rawClient) req(req *rpc.CriuReq) {
	r.t.Helper()
	b, err := req.MarshalVT()
	if err != nil {
		r.t.Fatal(err)
	}
	r.send(b)
}

// recv reads the next answer; nil at the end of the connection. An answer
// that does not come within cmdTimeout is a hang and fails the test.
func (r *rawClient) recv() *rpc.CriuResp {
	r.t.Helper()
	r.conn.SetReadDeadline(time.Now().Add(cmdTimeout))
	b := make([]byte, 1<<16)
	n, err := r.conn.Read(b)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		r.t.Fatalf("no answer and no end of the connection after %v: a hang", cmdTimeout)
	case err == io.EOF || n == 0:
		return nil
	case err != nil:
		r.t.Fatalf("recv: %v", err)
	}
	resp := &rpc.CriuResp{}
	if err := resp.UnmarshalVT(b[:n]); err != nil {
		r.t.Fatalf("answer does not parse: %v", err)
	}
	return resp
}

// final reads answers until one that is not a notification, answering
// notifications with success.
func (r *rawClient) final() *rpc.CriuResp {
	r.t.Helper()
	for {
		resp := r.recv()
		if resp == nil || resp.GetType() != rpc.CriuReqType_NOTIFY {
			return resp
		}
		r.req(&rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: yes()})
	}
}

// close ends the connection and waits for the server; it must exit.
func (r *rawClient) close() {
	if r.conn == nil {
		return
	}
	r.conn.Close()
	r.conn = nil
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(cmdTimeout):
		r.cmd.Process.Kill()
		r.t.Errorf("swrk %d did not exit once the client closed the connection", r.cmd.Process.Pid)
		<-done
	}
}

func reqOf(t rpc.CriuReqType, opts *rpc.CriuOpts) *rpc.CriuReq {
	return &rpc.CriuReq{Type: t.Enum(), Opts: opts}
}

// TestRPCBadRequests: every bad request gets an answer with an error (or,
// where bare CRIU drops the connection, the same end), never a hang, and
// leaves nothing behind.
func TestRPCBadRequests(t *testing.T) {
	e := newEnv(t)
	link := criuNsLink(t)
	empty := t.TempDir()

	failed := func(t *testing.T, what string, resp *rpc.CriuResp, want ...string) {
		t.Helper()
		if resp == nil {
			t.Fatalf("%s: the connection ended without an answer", what)
		}
		t.Logf("%s -> type %s success %v errno %d: %q", what, resp.GetType(), resp.GetSuccess(), resp.GetCrErrno(), resp.GetCrErrmsg())
		if resp.GetSuccess() {
			t.Fatalf("%s succeeded", what)
		}
		for _, w := range want {
			if !strings.Contains(resp.GetCrErrmsg(), w) {
				t.Errorf("%s: error %q does not say %q", what, resp.GetCrErrmsg(), w)
			}
		}
	}
	ask := func(t *testing.T, req *rpc.CriuReq) *rpc.CriuResp {
		c := e.on(t).rawClient(link)
		c.req(req)
		return c.final()
	}

	// Where CRIU itself refuses, the answer is bare CRIU's.
	sameAsBare := func(t *testing.T, req *rpc.CriuReq, resp *rpc.CriuResp) {
		t.Helper()
		bare := e.on(t).rawClient(criuBin)
		bare.req(req)
		if b := bare.final(); !b.EqualVT(resp) {
			t.Errorf("criu-ns answered %v, bare CRIU %v", resp, b)
		}
	}
	t.Run("unknown type", func(t *testing.T) {
		req := reqOf(rpc.CriuReqType(99), nil)
		resp := ask(t, req)
		failed(t, "type 99", resp)
		sameAsBare(t, req, resp)
	})
	t.Run("restore of a directory without images", func(t *testing.T) {
		req := reqOf(rpc.CriuReqType_RESTORE, restoreOpts(t, empty))
		resp := ask(t, req)
		failed(t, "restore of "+empty, resp, "Error (")
		sameAsBare(t, req, resp)
	})
	t.Run("restore naming no descriptor of the client", func(t *testing.T) {
		o := &rpc.CriuOpts{ImagesDirFd: i32(999)}
		failed(t, "images_dir_fd 999", ask(t, reqOf(rpc.CriuReqType_RESTORE, o)), "images_dir_fd 999")
	})
	t.Run("restore naming no images", func(t *testing.T) {
		failed(t, "no images", ask(t, reqOf(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: i32(-1)})), "images_dir")
	})
	t.Run("restore of an images_dir path that is missing", func(t *testing.T) {
		o := &rpc.CriuOpts{ImagesDirFd: i32(-1), ImagesDir: str(filepath.Join(empty, "missing"))}
		failed(t, "missing images_dir", ask(t, reqOf(rpc.CriuReqType_RESTORE, o)), "missing")
	})
	t.Run("restore of images whose pages file is truncated", func(t *testing.T) {
		// Bare CRIU loops forever on these; the proxy checks them first.
		img := makeImages(t, "-mem", "4")
		pagemaps, _ := filepath.Glob(filepath.Join(img.dir, "pages-*.img"))
		if len(pagemaps) == 0 {
			t.Fatalf("no pages image in %s", img.dir)
		}
		if err := os.Truncate(pagemaps[0], 4096); err != nil {
			t.Fatal(err)
		}
		before := hashDir(t, img.dir)
		failed(t, "restore of truncated pages", ask(t, reqOf(rpc.CriuReqType_RESTORE, restoreOpts(t, img.dir))),
			filepath.Base(pagemaps[0]), "truncated")
		assertSameImages(t, before, img.dir)
	})
	t.Run("dump of a pid that is no tree", func(t *testing.T) {
		req := reqOf(rpc.CriuReqType_DUMP, dumpOpts(t, deadPid(t), filepath.Join(t.TempDir(), "d")))
		resp := ask(t, req)
		failed(t, "dump of dead pid", resp, "Error (")
		sameAsBare(t, req, resp)
	})
	t.Run("garbage", func(t *testing.T) {
		c := e.on(t).rawClient(link)
		c.send([]byte{0xff, 0xff, 0xff, 0xff})
		if resp := c.recv(); resp != nil {
			t.Logf("garbage -> %v", resp) // bare CRIU just drops the connection
		}
	})
	if ents, _ := os.ReadDir(empty); len(ents) > 0 {
		for _, ent := range ents {
			if !isLog(ent.Name()) {
				t.Errorf("a failed restore left %s in the image directory", ent.Name())
			}
		}
	}
	e.assertNothingLeft()
}

// deadPid returns a pid no process has right now.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestRPCPassthrough: requests that are CRIU's business get CRIU's own
// answers, on one connection or several.
func TestRPCPassthrough(t *testing.T) {
	e := newEnv(t)
	link := criuNsLink(t)

	// What podman and containerd ask before every checkpoint.
	ns := e.goCriu()
	bare := criu.MakeCriu()
	bare.SetCriuPath(criuBin)
	v1, err1 := ns.GetCriuVersion()
	v2, err2 := bare.GetCriuVersion()
	if err1 != nil || v1 != v2 {
		t.Errorf("VERSION through criu-ns: %d (%v), bare: %d (%v)", v1, err1, v2, err2)
	}
	want := &rpc.CriuFeatures{MemTrack: yes(), LazyPages: yes(), PidfdStore: yes()}
	f1, err1 := ns.FeatureCheck(want.CloneVT())
	f2, err2 := bare.FeatureCheck(want.CloneVT())
	if err1 != nil || !f1.EqualVT(f2) {
		t.Errorf("FEATURE_CHECK through criu-ns: %v (%v), bare: %v (%v)", f1, err1, f2, err2)
	}
	checkOpts := &rpc.CriuOpts{ImagesDirFd: fdOf(openDir(t, t.TempDir())), LogFile: str("check.log")}
	check, bareCheck := e.rawClient(link), e.rawClient(criuBin)
	check.req(reqOf(rpc.CriuReqType_CHECK, checkOpts))
	bareCheck.req(reqOf(rpc.CriuReqType_CHECK, checkOpts))
	if r, b := check.final(), bareCheck.final(); !r.EqualVT(b) {
		t.Errorf("CHECK through criu-ns: %v, bare: %v", r, b)
	}

	// keep_open: several requests on one connection, as CRIU serves them.
	c := e.rawClient(link)
	bc := e.rawClient(criuBin)
	for _, t0 := range []rpc.CriuReqType{rpc.CriuReqType_VERSION, rpc.CriuReqType_FEATURE_CHECK, rpc.CriuReqType_VERSION} {
		r := &rpc.CriuReq{Type: t0.Enum(), KeepOpen: yes(), Features: want.CloneVT()}
		c.req(r)
		bc.req(r)
		got, exp := c.final(), bc.final()
		if got == nil || !got.EqualVT(exp) {
			t.Errorf("%s on a kept connection: criu-ns %v, bare %v", t0, got, exp)
		}
	}
	c.close()
	bc.close()
	e.assertNothingLeft()
}

// TestRPCKeptConnectionRestore: a connection kept open for VERSION, then
// a RESTORE on it, which still lands in fresh namespaces.
func TestRPCKeptConnectionRestore(t *testing.T) {
	e := newEnv(t)
	img, orig := takenImages(t, "-mem", "8", "-child")
	c := e.rawClient(criuNsLink(t))
	c.req(&rpc.CriuReq{Type: rpc.CriuReqType_VERSION.Enum(), KeepOpen: yes()})
	if v := c.final(); !v.GetSuccess() || v.GetVersion().GetMajorNumber() < 4 {
		t.Fatalf("VERSION: %v", v)
	}
	o := restoreOpts(t, img.dir)
	o.NotifyScripts = yes()
	c.req(reqOf(rpc.CriuReqType_RESTORE, o))
	resp := c.final()
	if !resp.GetSuccess() {
		t.Fatalf("RESTORE after VERSION on one connection: %v\n%s", resp, restoreLog(img.dir))
	}
	pid := int(resp.GetRestore().GetPid())
	checkNsRoot(t, pid, img)
	if end := c.recv(); end != nil {
		t.Errorf("after RESTORE the connection goes on: %v", end)
	}
	c.close()
	endTree(t, pid)
	orig.cmd.Process.Kill()
	orig.waitExit(t)
	e.deleteAll()
	e.assertNothingLeft()
}
