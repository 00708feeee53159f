package shim

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/migrate"
)

// ReceiveOptions describe the destination end of a live migration.
type ReceiveOptions struct {
	ID     string // the tree container to make
	Listen string // ADDR:PORT the source dials
	// ImagePath receives the images: created if missing, else it must be
	// an empty directory. Pre-copy rounds go to pre-1, pre-2, ... in it.
	ImagePath string
	WorkPath  string        // the CRIU logs (default: ImagePath)
	PidFile   string        // gets the restored root's host pid once it runs
	Timeout   time.Duration // how long the source may stay silent
	CRIU      CRIUOptions   // Extra goes to the restore
}

// Received is a tree that moved here and runs.
type Received struct {
	ID      string
	RootPid int
	Mode    migrate.Mode
	From    string
}

// receive is one destination end, run phase by phase: prepare (id,
// image dir, janitor, listener), hello, the pre-copy rounds, the dump
// (a page server, or the lazy-pages socket), the images, the restore
// (stopped), commit (resume) and done. What a phase makes it journals
// (see receive_janitor.go) and registers for undo; on failure everything
// is undone, newest first.
type receive struct {
	rt     *Runtime
	o      ReceiveOptions
	criu   string
	images string
	work   string
	jan    *receiveJanitor
	ln     net.Listener
	conn   *migrate.Conn
	hello  migrate.Hello
	from   string
	data   chan dataConn // CRIU's streams, in the order the source opens them
	dataIm chan net.Conn // the images' connection
	stop   chan struct{}
	pages  *pageServer // the running page server, if any
	files  net.Conn    // the image files' bytes, once the source opened it
	lazy   *os.File    // post-copy: the socket to the source's pages
	root   int
	undo   []func()
	// committed is what undo held at Commit.
	committed []func()
}

// dataConn is an accepted CRIU stream of this session.
type dataConn struct {
	nc    net.Conn
	round int
}

// Receive accepts one migration on o.Listen and restores it into the
// new tree container o.ID. It returns once the tree runs here (post-copy:
// once all its memory is here too), or with an error saying which side
// failed and why; then the source resumes its copy and nothing of the
// migration is left here.
func (rt *Runtime) Receive(o ReceiveOptions) (*Received, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultMigrateTimeout
	}
	r := &receive{rt: rt, o: o, data: make(chan dataConn), dataIm: make(chan net.Conn), stop: make(chan struct{})}
	err := r.run()
	if err != nil {
		if r.conn != nil && !fromPeer(err) {
			r.conn.Fail(migrate.Destination, err)
		}
		r.rollback()
	}
	r.release()
	if err != nil {
		err = sideError(migrate.Destination, err)
		if r.from != "" {
			return nil, fmt.Errorf("receive %s from %s: %w", o.ID, r.from, err)
		}
		return nil, fmt.Errorf("receive %s: %w", o.ID, err)
	}
	return &Received{ID: o.ID, RootPid: r.root, Mode: r.hello.Mode, From: r.from}, nil
}

func (r *receive) run() error {
	for _, phase := range []func() error{r.prepare, r.greet, r.preCopy, r.dump, r.receiveImages, r.restore, r.commit, r.done} {
		if err := phase(); err != nil {
			return err
		}
	}
	return nil
}

func (r *receive) onUndo(f func()) { r.undo = append(r.undo, f) }

func (r *receive) rollback() {
	if r.pages != nil {
		r.pages.stop()
	}
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// release ends what only the receive itself needed; the janitor goes
// last, once nothing is left for it to undo.
func (r *receive) release() {
	close(r.stop)
	if r.ln != nil {
		r.ln.Close()
	}
	if r.conn != nil {
		r.conn.Close()
	}
	if r.lazy != nil {
		r.lazy.Close()
	}
	if r.files != nil {
		r.files.Close()
	}
	if r.jan != nil {
		defer r.jan.forget()
	}
}

// prepare checks the input and claims the image dir before any network.
func (r *receive) prepare() error {
	if err := bundle.ValidateID(r.o.ID); err != nil {
		return err
	}
	if _, err := os.Stat(r.rt.Root.ContainerDir(r.o.ID)); err == nil {
		return bundle.ErrExist
	}
	var err error
	if r.criu, err = r.rt.CRIU(); err != nil {
		return err
	}
	if r.o.ImagePath == "" {
		return errors.New("image path is empty")
	}
	if r.images, err = filepath.Abs(r.o.ImagePath); err != nil {
		return err
	}
	if r.jan, err = r.rt.startReceiveJanitor(); err != nil {
		return err
	}
	if err := r.claimImageDir(); err != nil {
		return err
	}
	r.work = r.images
	if r.o.WorkPath != "" {
		if r.work, err = filepath.Abs(r.o.WorkPath); err != nil {
			return err
		}
		if err := os.MkdirAll(r.work, 0o700); err != nil {
			return fmt.Errorf("work path %s: %w", r.o.WorkPath, unwrapPathError(err))
		}
	}
	if r.ln, err = net.Listen("tcp", r.o.Listen); err != nil {
		return fmt.Errorf("listen on %s: %w", r.o.Listen, err)
	}
	return nil
}

// claimImageDir makes the image dir, or takes an empty one; either way
// it is journalled, so whatever happens no received image stays behind.
func (r *receive) claimImageDir() error {
	ents, err := os.ReadDir(r.images)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.Mkdir(r.images, 0o700); err != nil {
			return fmt.Errorf("image path %s: %w", r.o.ImagePath, unwrapPathError(err))
		}
		r.jan.note("remove", r.images)
		r.onUndo(func() { os.RemoveAll(r.images) })
	case err != nil:
		return fmt.Errorf("image path %s: %w", r.o.ImagePath, unwrapPathError(err))
	case len(ents) > 0:
		return fmt.Errorf("image path %s is not empty: a receive never overwrites anything", r.o.ImagePath)
	default:
		r.jan.note("empty", r.images)
		r.onUndo(func() {
			ents, _ := os.ReadDir(r.images)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(r.images, e.Name()))
			}
		})
	}
	return nil
}

// greet accepts the source's control connection and its Hello.
func (r *receive) greet() error {
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			return err
		}
		m, err := migrate.First(nc, r.o.Timeout)
		hello, ok := m.(migrate.Hello)
		if err != nil || !ok {
			// Not a source (a port scan, a late data connection of an
			// earlier try): wait for one.
			nc.Close()
			continue
		}
		r.from = nc.RemoteAddr().String()
		r.conn = migrate.NewConn(nc, migrate.Source, r.o.Timeout)
		if err := hello.Check(); err != nil {
			return err
		}
		r.hello = hello
		break
	}
	if r.hello.Mode == migrate.PostCopy {
		if err := criuCheck(r.criu, "uffd-noncoop"); err != nil {
			return fmt.Errorf("post-copy needs userfaultfd, which this host lacks (%v)", err)
		}
	}
	go r.acceptData()
	return r.conn.Send(migrate.Welcome{Version: migrate.Version})
}

// acceptData takes the session's data connections as the source opens
// them; anything else is refused.
func (r *receive) acceptData() {
	for {
		nc, err := r.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			m, err := migrate.First(nc, r.o.Timeout)
			a, ok := m.(migrate.Attach)
			if err == nil && !ok {
				err = fmt.Errorf("a second control connection")
			}
			if err == nil {
				err = a.Check(r.hello.Session)
			}
			if err == nil {
				err = migrate.AcceptData(nc, r.o.Timeout)
			}
			if err != nil {
				migrate.Refuse(nc, migrate.Destination, err)
				return
			}
			ch, im := r.data, r.dataIm
			if a.Images {
				ch = nil
			} else {
				im = nil
			}
			select {
			case ch <- dataConn{nc, a.Round}:
			case im <- nc:
			case <-r.stop:
				nc.Close()
			}
		}()
	}
}

// nextData waits for CRIU's data connection of round, as a descriptor.
// It takes no message: the source may send on before it is handed over.
func (r *receive) nextData(round int) (*os.File, error) {
	select {
	case d := <-r.data:
		if d.round != round {
			d.nc.Close()
			return nil, fmt.Errorf("the source opened a data connection for round %d, expected round %d", d.round, round)
		}
		return socketFile(d.nc)
	case <-r.conn.Failed():
		_, err := r.conn.Recv()
		return nil, err
	case <-time.After(r.o.Timeout):
		return nil, fmt.Errorf("the source opened no data connection for round %d within %v", round, r.o.Timeout)
	}
}

// imagesConn waits for the images' connection, likewise.
func (r *receive) imagesConn() (net.Conn, error) {
	select {
	case nc := <-r.dataIm:
		return nc, nil
	case <-r.conn.Failed():
		_, err := r.conn.Recv()
		return nil, err
	case <-time.After(r.o.Timeout):
		return nil, fmt.Errorf("the source opened no connection for the images within %v", r.o.Timeout)
	}
}

// preCopy stores each pre-dump round in its own directory, each the
// parent of the next.
func (r *receive) preCopy() error {
	for i := 1; i <= r.hello.Rounds; i++ {
		m, err := expect[migrate.PreDump](r.conn)
		if err != nil {
			return err
		}
		if m.Round != i {
			return fmt.Errorf("the source started pre-dump round %d, expected %d", m.Round, i)
		}
		dir := filepath.Join(r.images, preDumpDir(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		prev := ""
		if i > 1 {
			prev = "../" + preDumpDir(i-1)
		}
		if err := r.startPages(i, dir, prev); err != nil {
			return err
		}
		if err := r.receiveFiles(preDumpDir(i), nil); err != nil {
			return err
		}
		if _, err := expect[migrate.PreDumpDone](r.conn); err != nil {
			return err
		}
		if err := r.pagesStored(); err != nil {
			return err
		}
		if err := r.conn.Send(migrate.PreDumpStored{Round: i}); err != nil {
			return err
		}
	}
	return nil
}

// preDumpDir is where pre-dump round i is kept, relative to the images.
func preDumpDir(i int) string { return "pre-" + strconv.Itoa(i) }

// dump sets up where the final dump's memory goes: with the images
// (plain), to a page server (pre-copy), or nowhere yet (post-copy).
func (r *receive) dump() error {
	if _, err := expect[migrate.Dump](r.conn); err != nil {
		return err
	}
	switch r.hello.Mode {
	case migrate.Plain:
		return nil
	case migrate.PostCopy:
		// The pages stay with the source until the lazy-pages daemon
		// of the restored tree asks for them, through this socket.
		var err error
		r.lazy, err = r.nextData(0)
		return err
	}
	return r.startPages(0, r.images, preDumpDir(r.hello.Rounds))
}

// startPages runs `criu page-server` on the next data connection, storing
// round's memory in dir.
func (r *receive) startPages(round int, dir, prev string) error {
	sock, err := r.nextData(round)
	if err != nil {
		return err
	}
	log := "page-server.log"
	if round > 0 {
		log = fmt.Sprintf("page-server-%d.log", round)
	}
	r.pages, err = startPageServer(r.criu, sock, dir, r.work, log, prev)
	if err != nil {
		sock.Close()
	}
	return err
}

// pagesStored waits for the page server to have stored everything.
func (r *receive) pagesStored() error {
	err := r.pages.wait(r.o.Timeout)
	r.pages = nil
	return err
}

// receiveImages stores the images the source sends, while its tree is
// frozen; a failing page server ends it at once.
func (r *receive) receiveImages() error {
	if err := r.receiveFiles("", r.pages); err != nil {
		return err
	}
	if r.pages != nil {
		return r.pagesStored()
	}
	return nil
}

// receiveFiles stores image files until ImagesDone, for the directory
// round ("": the final images); pages, if any, must not fail meanwhile.
func (r *receive) receiveFiles(round string, pages *pageServer) error {
	var pagesDone <-chan error
	if pages != nil {
		pagesDone = pages.done
	}
	files, bytes := 0, int64(0)
	for {
		select {
		case err := <-pagesDone:
			pages.exited(err)
			if err = pages.result(); err != nil {
				return err
			}
			pagesDone = nil
		case in := <-r.conn.Incoming():
			if in.Err != nil {
				return in.Err
			}
			switch m := in.Msg.(type) {
			case migrate.File:
				if m.Dir != round {
					return fmt.Errorf("the source sent an image file for %q, expected %q", m.Dir, round)
				}
				if err := r.receiveFile(m); err != nil {
					return err
				}
				files++
				bytes += m.Size
			case migrate.ImagesDone:
				if m.Files != files || m.Bytes != bytes {
					return fmt.Errorf("got %d image files of %d bytes, the source sent %d of %d", files, bytes, m.Files, m.Bytes)
				}
				return nil
			default:
				return fmt.Errorf("the source sent %s while sending the images", migrate.Name(m))
			}
		}
	}
}

// receiveFile stores one file from the images' connection, which the
// source opened after Hello.
func (r *receive) receiveFile(f migrate.File) error {
	if r.files == nil {
		nc, err := r.imagesConn()
		if err != nil {
			return err
		}
		r.files = nc
	}
	return r.conn.ReceiveFile(r.images, f, r.files)
}

// restore restores the tree, stopped: it runs only once the source has
// committed, so two copies never run.
func (r *receive) restore() error {
	extra := append([]string{"--leave-stopped"}, r.o.CRIU.Extra...)
	f := r.hello.CRIU
	r.jan.note("container", r.o.ID)
	res, err := r.rt.Restore(RestoreOptions{
		Kind: bundle.KindTree, ID: r.o.ID, ImagePath: r.images, WorkPath: r.o.WorkPath, Detach: true,
		LazyPages: r.hello.Mode == migrate.PostCopy, LazyPagesFrom: r.lazy,
		CRIU: CRIUOptions{TCPEstablished: f.TCPEstablished, ExtUnixSk: f.ExtUnixSk, FileLocks: f.FileLocks, Extra: extra},
	})
	if err != nil {
		return err
	}
	r.onUndo(func() { r.rt.Delete(r.o.ID, true) })
	r.root = res.RootPid
	return r.conn.Send(migrate.Restored{RootPid: res.RootPid})
}

// commit resumes the tree once the source has ended its copy.
func (r *receive) commit() error {
	if _, err := expect[migrate.Commit](r.conn); err != nil {
		return err
	}
	crashpoint.Hit("receive.after-commit")
	// The source's copy waits, stopped, for our word: a copy that cannot
	// be resumed here is undone, and the source resumes its own.
	if err := r.rt.Kill(r.o.ID, unix.SIGCONT, true); err != nil {
		return fmt.Errorf("resume the restored tree: %w", err)
	}
	// From here on this copy runs and the source ends its own: nothing may
	// undo it (unless the source takes it back: see done).
	r.committed, r.undo = r.undo, nil
	r.jan.forget()
	r.jan = nil
	if r.o.PidFile != "" {
		if err := writePidFile(r.o.PidFile, r.root); err != nil {
			return err
		}
	}
	return r.conn.Send(migrate.Running{})
}

// done waits for the source's last word. In post-copy it is required:
// it says every page arrived; if the source's CRIU failed instead, the
// source resumed its copy (its memory is whole) and ours must go.
func (r *receive) done() error {
	_, err := expect[migrate.Done](r.conn)
	if err == nil || r.hello.Mode != migrate.PostCopy {
		// Past Commit the source copy is gone: a lost last word changes
		// nothing here.
		return nil
	}
	var le *migrate.LostError
	if errors.As(err, &le) && r.pagesArrived() {
		// The source's last word is lost, but its copy is whole here:
		// the source ends its own once every page was sent.
		return nil
	}
	// The pages cannot all arrive now, and the source resumes its own
	// copy, whose memory is whole: this one must go.
	r.undo = r.committed
	return fmt.Errorf("%w; the tree's memory could not be completed here, so this copy was ended and the source's resumed", err)
}

// pagesArrived waits, at most the timeout, for the lazy-pages daemon to
// end, and says whether it got every page: it did if the tree still runs
// (the init ends the tree when the daemon fails).
func (r *receive) pagesArrived() bool {
	for end := time.Now().Add(r.o.Timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		daemon := false
		var pids []int
		r.rt.withLibcontainer(r.o.ID, func(c *container) error {
			pids, _ = c.ct.Processes()
			return nil
		})
		for _, pid := range pids {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) == "criu" {
				daemon = true
			}
		}
		if !daemon {
			return unix.Kill(r.root, 0) == nil
		}
	}
	return false
}

// pageServer is a `criu page-server` storing one dump's memory.
type pageServer struct {
	cmd    *exec.Cmd
	sock   *os.File // our copy of its socket, to cut it
	log    string
	stderr bytes.Buffer
	done   chan error
	err    error
	ended  bool
}

func startPageServer(criuPath string, sock *os.File, dir, work, log, prev string) (*pageServer, error) {
	p := &pageServer{log: filepath.Join(work, log), done: make(chan error, 1)}
	// Paths, not descriptors: it runs on the host, and a test (or a
	// person) can tell which receive it belongs to.
	args := criu.PageServerArgs(criu.Common{ImagesDir: dir, WorkDir: work, LogFile: log, Verbosity: 4}, 3, prev)
	p.cmd = exec.Command(criuPath, args...)
	p.cmd.ExtraFiles = []*os.File{sock}
	p.cmd.Stderr = &p.stderr
	// It must not outlive the receive.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: unix.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start criu page-server: %w", err)
	}
	p.sock = sock
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

// exited records how the page server ended.
func (p *pageServer) exited(err error) {
	p.ended = true
	if p.sock != nil {
		p.sock.Close()
	}
	if err != nil {
		msg := fmt.Errorf("criu page-server failed (%w)", err)
		if line := firstLine(p.stderr.String()); line != "" {
			msg = fmt.Errorf("%w: %s", msg, line)
		}
		p.err = criu.WithLog(msg, p.log)
	}
}

func (p *pageServer) result() error { return p.err }

// wait waits, at most timeout, for the page server to end.
func (p *pageServer) wait(timeout time.Duration) error {
	if !p.ended {
		select {
		case err := <-p.done:
			p.exited(err)
		case <-time.After(timeout):
			p.stop()
			return fmt.Errorf("criu page-server did not finish within %v", timeout)
		}
	}
	return p.err
}

// stop ends the page server, if it still runs.
func (p *pageServer) stop() {
	if p.ended {
		return
	}
	cutSocket(p.sock)
	p.cmd.Process.Kill()
	p.exited(<-p.done)
}
