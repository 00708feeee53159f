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
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/migrate"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/setns"
)

// MigrateOptions describe the source end of a live migration.
type MigrateOptions struct {
	// ID is a tree container of this root; for criu-ns mode, Pid is the
	// root of any tree as `criu dump -t` takes it instead.
	ID  string
	Pid int
	To  string // ADDR:PORT of `receive`
	// Lazy: post-copy. PreCopy: that many pre-dump rounds first. Neither:
	// plain.
	Lazy    bool
	PreCopy int
	// WorkPath keeps CRIU's logs; default: a temporary directory, removed.
	WorkPath string
	Timeout  time.Duration // how long the destination may stay silent
	CRIU     CRIUOptions   // Extra goes to every dump
}

// MigrateStats is what a migration took.
type MigrateStats struct {
	Mode       migrate.Mode `json:"mode"`
	Rounds     int          `json:"rounds,omitempty"`
	ImageFiles int          `json:"image_files"`
	ImageBytes int64        `json:"image_bytes"` // of images sent (plain: the memory too)
	// TotalMs runs from the start of the command to the end (post-copy:
	// until every page was sent); DowntimeMs from just before CRIU froze
	// the tree for the last time until the destination said it runs.
	TotalMs    float64 `json:"total_ms"`
	DowntimeMs float64 `json:"downtime_ms"`
	// When each phase ended, in ms from the start: the last freeze began,
	// the images were sent, the destination restored and resumed the tree.
	FrozenAtMs     float64 `json:"frozen_at_ms"`
	ImagesSentAtMs float64 `json:"images_sent_at_ms"`
	RestoredAtMs   float64 `json:"restored_at_ms"`
	RunningAtMs    float64 `json:"running_at_ms"`
}

// migrateArgsOwned are CRIU options a migration sets itself.
var migrateArgsOwned = []string{"-D", "--images-dir", "-W", "--work-dir", "-o", "--log-file", "-t", "--tree",
	"-R", "--leave-running", "-s", "--leave-stopped", "--lazy-pages", "--page-server", "--address", "--port",
	"--ps-socket", "--prev-images-dir", "--track-mem", "--action-script", "--pidfile"}

func (o *MigrateOptions) check() error {
	if o.To == "" {
		return errors.New("migrate: --to ADDR:PORT is required")
	}
	if _, _, err := net.SplitHostPort(o.To); err != nil {
		return fmt.Errorf("migrate: --to %q: %v", o.To, err)
	}
	if o.PreCopy < 0 {
		return fmt.Errorf("migrate: --pre-copy %d: want a number of rounds >= 1", o.PreCopy)
	}
	if o.Lazy && o.PreCopy > 0 {
		return errors.New("migrate: --lazy and --pre-copy cannot be combined")
	}
	if o.CRIU.ShellJob {
		return errors.New("migrate: --shell-job does not apply: the destination has no terminal for the tree")
	}
	for _, a := range o.CRIU.Extra {
		name, _, _ := strings.Cut(a, "=")
		for _, owned := range migrateArgsOwned {
			short := len(owned) == 2 && !strings.HasPrefix(a, "--") && strings.HasPrefix(a, owned) // -D/x
			if name == owned || short {
				return fmt.Errorf("migrate: CRIU option %s is the migration's own", owned)
			}
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultMigrateTimeout
	}
	return nil
}

func (o *MigrateOptions) mode() migrate.Mode {
	switch {
	case o.Lazy:
		return migrate.PostCopy
	case o.PreCopy > 0:
		return migrate.PreCopy
	}
	return migrate.Plain
}

// Migrate moves a running tree to the `receive` at o.To: the tree
// container o.ID, or (o.Pid) a plain tree of this host. It returns once
// the tree runs there and this copy is gone; on failure the tree runs
// here, intact, and the error says which side failed and why.
func (rt *Runtime) Migrate(o MigrateOptions) (*MigrateStats, error) {
	start := time.Now()
	if err := o.check(); err != nil {
		return nil, err
	}
	criuPath, err := rt.CRIU()
	if err != nil {
		return nil, err
	}
	if o.PreCopy > 0 {
		// Before anything is touched: CRIU would find out only at the
		// first pre-dump, with the destination already waiting.
		if err := criuCheck(criuPath, "mem_dirty_track"); err != nil {
			return nil, fmt.Errorf("migrate: --pre-copy needs the kernel's soft-dirty memory tracking, which this kernel lacks (%v)", err)
		}
	}
	if o.Lazy {
		if err := checkLazyPipes(); err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
	}
	if o.ID == "" {
		what := "tree " + strconv.Itoa(o.Pid)
		return rt.migrate(o, start, criuPath, what, dumpTarget{pid: o.Pid})
	}
	var stats *MigrateStats
	err = rt.withRunning(o.ID, func(c *container) error {
		if c.meta.Kind != bundle.KindTree {
			return fmt.Errorf("migrate applies to tree containers; %s is %s", o.ID, describeKind(c.meta.Kind))
		}
		if st, _ := c.ct.Status(); st == libcontainer.Paused {
			return fmt.Errorf("container %s is paused: resume it before a migration", o.ID)
		}
		init, err := c.init()
		if err != nil {
			return ErrNotRunning
		}
		defer init.Close()
		stats, err = rt.migrate(o, start, criuPath, "container "+o.ID, dumpTarget{pid: c.meta.RootNsPid, init: init, initPid: init.Pid})
		if err != nil {
			return err
		}
		// The tree is gone; the init leaves once it can take the lock.
		c.lock.Unlock()
		init.Wait(-1)
		if c.meta.Ephemeral {
			// Its janitor may be at it too: gone is as good as deleted.
			return rt.Delete(o.ID, true)
		}
		return nil
	})
	return stats, err
}

func (rt *Runtime) migrate(o MigrateOptions, start time.Time, criuPath, what string, t dumpTarget) (*MigrateStats, error) {
	s := &source{rt: rt, o: o, criu: criuPath, target: t, start: start, what: what,
		stats: MigrateStats{Mode: o.mode(), Rounds: o.PreCopy}}
	err := s.run()
	s.release()
	if err != nil {
		err = fmt.Errorf("migrate %s to %s: %w", what, o.To, sideError(migrate.Source, err))
		if s.dump != nil && !s.committed && !s.kept {
			err = fmt.Errorf("%w; the tree still runs here", err)
		}
		return nil, err
	}
	s.stats.TotalMs = ms(time.Since(start))
	return &s.stats, nil
}

// dumpTarget is the tree a migration dumps and how CRIU reaches it.
type dumpTarget struct {
	pid int // the root, as CRIU sees it
	// init: CRIU runs in this process's pid and mount namespaces (a tree
	// container's init, held by pidfd); nil: on the host, as it is.
	init *pidfd.Proc
	// initPid is init's pid (0 without one).
	initPid int
}

// signal sends sig to every process of the tree. It is stopped (or dead)
// when this is used: its processes can neither fork nor go away.
func (t dumpTarget) signal(sig unix.Signal) {
	for _, pid := range t.processes() {
		unix.Kill(pid, sig)
	}
}

// processes lists the tree's processes by host pid: every process in the
// container's pid namespace but its init, or the root and its
// descendants.
func (t dumpTarget) processes() []int {
	if t.initPid != 0 {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", t.initPid))
		if err != nil {
			return nil
		}
		var pids []int
		for _, pid := range hostPids() {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns && pid != t.initPid {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	pids := []int{t.pid}
	for i := 0; i < len(pids); i++ {
		pids = append(pids, childPids(pids[i])...)
	}
	return pids
}

// command runs CRIU on the target with files as its fds 3, 4, ...
func (t dumpTarget) command(criuPath string, files []*os.File, args []string) (*exec.Cmd, func(), error) {
	if t.init == nil {
		cmd := exec.Command(criuPath, args...)
		cmd.ExtraFiles = files
		return cmd, func() {}, nil
	}
	cmd, err := setns.Command(setns.Options{Target: t.init, Files: files}, criuPath, args...)
	if err != nil {
		return nil, nil, err
	}
	return cmd.Cmd, func() { cmd.Close() }, nil
}

// source is one source end, run phase by phase: prepare (scratch dir,
// hook), connect (Hello), pre-copy rounds, dump (until CRIU's post-dump
// hook: the tree frozen, the source copy intact), images, (post-copy)
// serve the pages, await the destination's restore, commit and done.
// Until this copy is ended, every failure ends in abort: the data
// connections are cut, the hook says stop, and CRIU resumes the tree (or,
// post-copy, the source does, if CRIU had already left it stopped).
type source struct {
	rt     *Runtime
	o      MigrateOptions
	criu   string
	target dumpTarget
	what   string
	start  time.Time
	stats  MigrateStats

	scratch string   // the local images (temporary)
	work    *os.File // the logs
	hook    *migrate.Hook
	conn    *migrate.Conn
	images  net.Conn // the image files' bytes
	session string
	socks   []*os.File // data connections handed to CRIU, to cut them

	dump      *criuRun          // the final dump, once started
	postDump  *migrate.HookCall // CRIU waiting in the post-dump hook
	serving   bool              // post-copy: CRIU serves the pages
	committed bool              // this copy is ended
	// handedOver: CRIU was let go from its hook and left (or leaves) this
	// copy stopped; resuming it is ours to do.
	handedOver bool
	// kept: the outcome is unknown; this copy stays stopped (afterCommit).
	kept     bool
	frozenAt time.Time
}

func (s *source) run() error {
	for _, phase := range []func() error{s.prepare, s.connect, s.preCopy, s.finalDump, s.sendImages, s.serveLazily, s.awaitRestored} {
		if err := phase(); err != nil {
			s.abort(err)
			return err
		}
	}
	return s.commit()
}

func (s *source) release() {
	for _, f := range s.socks {
		f.Close()
	}
	if s.hook != nil {
		s.hook.Close()
	}
	if s.conn != nil {
		s.conn.Close()
	}
	if s.images != nil {
		s.images.Close()
	}
	if s.work != nil {
		s.work.Close()
	}
	if s.scratch != "" {
		os.RemoveAll(s.scratch)
	}
}

// abort makes sure the tree runs here again and tells the destination.
func (s *source) abort(err error) {
	for _, f := range s.socks {
		// A CRIU streaming into the destination stops at once, and
		// resumes the tree, instead of waiting on a dead link.
		cutSocket(f)
	}
	if s.postDump != nil {
		s.postDump.Answer(false)
		s.postDump = nil
	}
	if s.hook != nil {
		s.hook.Close() // a hook call still to come fails: CRIU resumes
	}
	if s.conn != nil && !fromPeer(err) {
		s.conn.Fail(migrate.Source, err)
	}
	if s.dump != nil {
		s.dump.finish(s.o.Timeout)
		if (s.serving || s.handedOver) && s.dump.exited() && s.dump.failure() == nil {
			// CRIU dumped (or served every page) and left the tree stopped.
			s.target.signal(unix.SIGCONT)
		}
	}
}

func (s *source) prepare() error {
	var err error
	if s.scratch, err = os.MkdirTemp("", "criu-ns-migrate-"); err != nil {
		return err
	}
	work := s.o.WorkPath
	if work == "" {
		work = s.scratch
	}
	if s.work, err = openWorkDir(work, s.scratch); err != nil {
		return err
	}
	s.hook, err = migrate.NewHook()
	return err
}

// connect dials the destination, retrying while nothing listens yet (the
// two commands may start in any order), and says Hello.
func (s *source) connect() error {
	deadline := time.Now().Add(s.o.Timeout)
	var nc net.Conn
	for {
		var err error
		nc, err = net.DialTimeout("tcp", s.o.To, s.o.Timeout)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().After(deadline) {
			return &migrate.LostError{Peer: migrate.Destination, Why: err.Error()}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.session = migrate.NewSession()
	f := migrate.CRIUFeatures{TCPEstablished: s.o.CRIU.TCPEstablished, ExtUnixSk: s.o.CRIU.ExtUnixSk, FileLocks: s.o.CRIU.FileLocks}
	hello := migrate.NewHello(s.session, s.o.mode(), s.o.PreCopy, s.what, f)
	s.conn = migrate.NewConn(nc, migrate.Destination, s.o.Timeout)
	if err := s.conn.Send(hello); err != nil {
		return err
	}
	if _, err := expect[migrate.Welcome](s.conn); err != nil {
		return err
	}
	// One connection for the bytes of every image file to come.
	images, err := net.DialTimeout("tcp", s.o.To, s.o.Timeout)
	if err != nil {
		return &migrate.LostError{Peer: migrate.Destination, Why: err.Error()}
	}
	s.images = images
	return migrate.AttachImages(images, s.session, s.o.Timeout)
}

// attach opens the data connection of round, for CRIU.
func (s *source) attach(round int) (*os.File, error) {
	nc, err := net.DialTimeout("tcp", s.o.To, s.o.Timeout)
	if err != nil {
		return nil, &migrate.LostError{Peer: migrate.Destination, Why: err.Error()}
	}
	if err := migrate.AttachData(nc, s.session, round, s.o.Timeout); err != nil {
		nc.Close()
		return nil, err
	}
	f, err := socketFile(nc)
	if err != nil {
		return nil, err
	}
	s.socks = append(s.socks, f)
	return f, nil
}

// preCopy runs the pre-dump rounds: each copies the memory that changed
// since the last one to the destination, while the tree runs.
func (s *source) preCopy() error {
	for i := 1; i <= s.o.PreCopy; i++ {
		dir := filepath.Join(s.scratch, preDumpDir(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			return err
		}
		if err := s.conn.Send(migrate.PreDump{Round: i}); err != nil {
			return err
		}
		sock, err := s.attach(i)
		if err != nil {
			return err
		}
		opts := criu.DumpOpts{PreDump: true, Remote: &criu.RemoteMemory{Socket: 5, TrackMem: true}}
		if i > 1 {
			opts.Remote.PrevImagesDir = "../" + preDumpDir(i-1)
		}
		run, err := s.startCRIU(dir, sock, opts, fmt.Sprintf("pre-dump-%d.log", i))
		if err != nil {
			return err
		}
		if err := run.waitWatching(s.conn); err != nil {
			return err
		}
		// The round's own images (its inventory) go with its pages.
		if _, err := s.conn.SendImages(dir, preDumpDir(i), s.images); err != nil {
			return err
		}
		if err := s.conn.Send(migrate.PreDumpDone{Round: i}); err != nil {
			return err
		}
		m, err := expect[migrate.PreDumpStored](s.conn)
		if err != nil {
			return err
		}
		if m.Round != i {
			return fmt.Errorf("the destination stored round %d, expected %d", m.Round, i)
		}
	}
	return nil
}

// finalDump dumps the tree and returns once CRIU waits in the post-dump
// hook: the images are complete, the tree frozen. Plain: the memory goes
// into the local images, and travels with them (CRIU's page server is
// slower than a dump and a copy). Pre-copy: what changed since the last
// round goes to the destination's page server. Post-copy: it stays in the
// frozen tree, and the tree stays stopped once its pages are served,
// until the destination runs its copy (see serveLazily).
func (s *source) finalDump() error {
	if err := s.conn.Send(migrate.Dump{}); err != nil {
		return err
	}
	// Every mode leaves the tree stopped, not dead, once dumped: this copy
	// ends only when the destination says its copy runs (commit).
	opts := criu.DumpOpts{Hook: s.rt.Self, LeaveStopped: true}
	var sock *os.File
	if s.o.Lazy || s.o.PreCopy > 0 {
		var err error
		if sock, err = s.attach(0); err != nil {
			return err
		}
		opts.Remote = &criu.RemoteMemory{Socket: 5, Lazy: s.o.Lazy}
		if s.o.PreCopy > 0 {
			opts.Remote.PrevImagesDir, opts.Remote.TrackMem = preDumpDir(s.o.PreCopy), true
		}
	}
	var err error
	if s.dump, err = s.startCRIU(s.scratch, sock, opts, dumpLog); err != nil {
		return err
	}
	for {
		select {
		case call := <-s.hook.Calls():
			if call.Action == migrate.ActionPreDump {
				s.frozenAt = call.At
				s.stats.FrozenAtMs = ms(call.At.Sub(s.start))
				call.Answer(true)
				continue
			}
			s.postDump = &call
			return nil
		case <-s.dump.done:
			return s.dump.failure()
		case in := <-s.conn.Incoming():
			if in.Err != nil {
				return in.Err
			}
			return fmt.Errorf("the destination sent %s during the dump", migrate.Name(in.Msg))
		}
	}
}

// sendImages sends the images (plain: the memory too) on their data
// connection; CRIU waits meanwhile.
func (s *source) sendImages() error {
	done, err := s.conn.SendImages(s.scratch, "", s.images)
	s.stats.ImageFiles, s.stats.ImageBytes = done.Files, done.Bytes
	s.stats.ImagesSentAtMs = ms(time.Since(s.start))
	return err
}

// serveLazily (post-copy) lets CRIU go on from the hook at once: the
// destination's restore itself may need pages (its restorer writes on the
// tree's stacks), so they must be served before the restore is done.
// CRIU serves them from pipes that hold the frozen tree's memory and then
// leaves the tree stopped (--leave-stopped); if it fails, it resumes it.
func (s *source) serveLazily() error {
	if !s.o.Lazy {
		return nil
	}
	s.postDump.Answer(true)
	s.postDump, s.serving = nil, true
	return nil
}

// awaitRestored waits for the destination's restore, watching CRIU.
func (s *source) awaitRestored() error {
	done := s.dump.done
	for {
		select {
		case in := <-s.conn.Incoming():
			if in.Err != nil {
				return in.Err
			}
			if _, ok := in.Msg.(migrate.Restored); !ok {
				return fmt.Errorf("the destination sent %s, expected Restored", migrate.Name(in.Msg))
			}
			s.stats.RestoredAtMs = ms(time.Since(s.start))
			return nil
		case <-done:
			if err := s.dump.failure(); err != nil || !s.serving {
				// Plain: CRIU died in the hook; the tree was let go.
				// Post-copy: it failed serving; it resumed the tree.
				if err == nil {
					err = errors.New("criu dump ended before the destination restored the tree")
				}
				return err
			}
			// Every page is served already; the tree waits, stopped.
			done = nil
		}
	}
}

// commit hands the tree over. CRIU, let go from the hook, leaves this
// copy stopped; the destination resumes its own on Commit and says so
// (Running); only then is this copy ended. Post-copy: this copy ends only
// once CRIU has sent every page as well; until then any failure resumes
// this copy and ends the destination's, whose memory can never be
// completed.
func (s *source) commit() error {
	if !s.o.Lazy {
		s.postDump.Answer(true)
		s.postDump, s.handedOver = nil, true
		// CRIU writes the rest of the images and leaves the tree stopped.
		if err := s.dumpDone(); err != nil {
			s.abort(err) // the destination ends its copy
			return err
		}
	}
	if err := s.conn.Send(migrate.Commit{}); err != nil {
		return s.afterCommit(err)
	}
	if _, err := expect[migrate.Running](s.conn); err != nil {
		return s.afterCommit(err)
	}
	now := time.Now()
	s.stats.RunningAtMs = ms(now.Sub(s.start))
	s.stats.DowntimeMs = ms(now.Sub(s.frozenAt))
	if s.o.Lazy {
		if err := s.lastPages(); err != nil {
			return s.afterCommit(err)
		}
	}
	s.target.signal(unix.SIGKILL)
	s.committed = true
	return s.conn.Send(migrate.Done{})
}

// dumpDone waits for a dump let go from its hook to end; the tree is left
// stopped if it succeeded, and resumed by CRIU if it failed.
func (s *source) dumpDone() error {
	s.dump.finish(s.o.Timeout)
	if !s.dump.exited() {
		return fmt.Errorf("criu dump did not finish within %v of the hand-over", s.o.Timeout)
	}
	if err := s.dump.failure(); err != nil {
		s.handedOver = false // CRIU resumed the tree itself
		return err
	}
	return nil
}

// lastPages waits for CRIU to end (post-copy: to have sent every page),
// watching the destination; a lost destination cuts CRIU's connection.
func (s *source) lastPages() error {
	select {
	case <-s.dump.done:
		return s.dump.failure()
	case in := <-s.conn.Incoming():
		err := in.Err
		if err == nil {
			err = fmt.Errorf("the destination sent %s while the pages were being sent", migrate.Name(in.Msg))
		}
		return err
	}
}

// afterCommit is a failure once the destination may be running the tree.
// Where the destination said it failed, its copy is gone and this one
// resumes. Where the link was lost, nobody here can know whether the
// destination runs the tree: this copy is kept, stopped, so that the tree
// is neither lost nor run twice, and the error says how to go on.
func (s *source) afterCommit(err error) error {
	var lost *migrate.LostError
	if !errors.As(err, &lost) || s.o.Lazy {
		s.abort(err)
		if s.o.Lazy {
			return fmt.Errorf("%w, before every page had reached the destination: this copy was resumed, the destination ends its own", err)
		}
		return fmt.Errorf("%w: the destination did not run the tree; this copy was resumed", err)
	}
	s.kept = true
	resume := "SIGCONT to its processes"
	if s.o.ID != "" {
		resume = fmt.Sprintf("`criu-ns-runtime kill --all %s CONT`", s.o.ID)
	}
	return fmt.Errorf("%w after the hand-over: whether the tree runs on the destination is unknown; this copy is kept stopped "+
		"(if the destination does not run it, resume this one with %s; otherwise end it)", err, resume)
}

// criuRun is one CRIU dump or pre-dump in progress.
type criuRun struct {
	args   []string
	log    string // "" when it is not kept
	stderr bytes.Buffer
	done   chan struct{}
	err    error
	// logErrors are CRIU's own error lines of a failed run.
	logErrors []string
}

// startCRIU starts a dump (opts, with the common options and the tree
// filled in here) into dir; sock, if any, becomes its fd 5.
func (s *source) startCRIU(dir string, sock *os.File, opts criu.DumpOpts, log string) (*criuRun, error) {
	images, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer images.Close()
	opts.Common = criuCommon(s.o.CRIU, "/proc/self/fd/3", "/proc/self/fd/4", log)
	opts.Tree = s.target.pid
	r := &criuRun{args: opts.Args(), done: make(chan struct{})}
	logPath := filepath.Join(s.work.Name(), log)
	if s.o.WorkPath != "" {
		r.log = logPath
	}
	files := []*os.File{images, s.work}
	if sock != nil {
		files = append(files, sock)
	}
	cmd, release, err := s.target.command(s.criu, files, r.args)
	if err != nil {
		return nil, err
	}
	defer release()
	cmd.Stderr = &r.stderr
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, s.hook.Env())
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start criu: %w", err)
	}
	go func() {
		r.err = cmd.Wait()
		if r.err != nil {
			// Read now: a temporary work dir goes with the command.
			r.logErrors = criu.LogFileErrors(logPath)
		}
		close(r.done)
	}()
	return r, nil
}

// waitWatching waits for CRIU while the destination may report a failure.
func (r *criuRun) waitWatching(c *migrate.Conn) error {
	select {
	case <-r.done:
		return r.failure()
	case in := <-c.Incoming():
		if in.Err != nil {
			return in.Err
		}
		return fmt.Errorf("the destination sent %s during a pre-dump", migrate.Name(in.Msg))
	}
}

// finish waits for CRIU to end, at most timeout if not 0. After an abort
// it ends quickly (its sockets are cut, its hook said stop); one that does
// not is left to finish resuming the tree.
func (r *criuRun) finish(timeout time.Duration) {
	if timeout == 0 {
		<-r.done
		return
	}
	select {
	case <-r.done:
	case <-time.After(timeout):
	}
}

// exited says whether CRIU has ended.
func (r *criuRun) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// failure is how CRIU ended, with its own error lines; nil on success.
func (r *criuRun) failure() error {
	if r.err == nil {
		return nil
	}
	err := fmt.Errorf("criu %s failed (%w)", r.args[0], r.err)
	var exit *exec.ExitError
	if errors.As(r.err, &exit) && exit.ExitCode() > 128 {
		// setns-exec's parent passes on a signal as 128+n.
		err = fmt.Errorf("criu %s was killed (signal %d)", r.args[0], exit.ExitCode()-128)
	} else if errors.As(r.err, &exit) && exit.ExitCode() < 0 {
		err = fmt.Errorf("criu %s was killed (%v)", r.args[0], r.err)
	}
	if line := firstLine(strings.TrimSpace(r.stderr.String())); line != "" {
		err = fmt.Errorf("%w: %s", err, line)
	}
	if len(r.logErrors) > 0 {
		err = fmt.Errorf("%w: %s", err, strings.Join(r.logErrors, "; "))
	}
	if r.log != "" {
		err = fmt.Errorf("%w (log: %s)", err, r.log)
	}
	return err
}

// hostPids lists every process of the host.
func hostPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// childPids lists the children of every thread of pid.
func childPids(pid int) []int {
	var kids []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
