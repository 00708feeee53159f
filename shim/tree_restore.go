package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagecheck"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/mountns"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/nsinit"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/phasetrace"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
	"github.com/criu-ns-runtime/criu-ns-runtime/specgen"
)

// treeKind is a plain process tree restored from CRIU images: pid 1 is
// our init (internal/nsinit), the root is the host's own, and dumps run
// inside the container's namespaces.
type treeKind struct{}

const (
	restoreLog  = "restore.log"
	rootPidFile = "criu-root.pid"
)

// treeRestore is one restore of a tree, run phase by phase: prepare
// (check the input, claim the id), stage (the host's root), launch (the
// container and its init, which runs CRIU), await (the init's report) and
// record (pids and pid file). A phase that makes something registers how
// to undo it; when a later phase fails, everything made is undone, newest
// first.
//
// A restore killed at any point leaves what the next command needs to
// report the container truthfully: meta.json says PhaseRestoring from the
// first phase on, our init holds the container's lock until CRIU is done
// (we hand it over once our init runs, see handOver), and CRIU writes the
// root's pid into the container dir. If the tree runs the next command
// records it (recover); otherwise the container is stopped, and delete
// removes it.
type treeRestore struct {
	rt   *Runtime
	o    RestoreOptions
	criu string

	images, work *os.File // handed to CRIU as descriptors
	lock         *bundle.Lock
	meta         *bundle.Meta
	rootfs       string
	proc         *libcontainer.Process // the init
	report       *net.UnixConn         // our end of the init's report socket
	initLock     *os.File              // the init's own open file of the container dir
	rep          nsinit.Report
	root         pidfd.Ref
	deadline     time.Time // zero: none
	janitorDone  *os.File  // write end: the janitor acts once it is closed
	job          *shellJob // a shell job's caller side (tree_shelljob.go)

	undo []func()
}

func (treeKind) restore(rt *Runtime, o RestoreOptions) (*Restored, error) {
	if err := refuse(bundle.KindTree,
		flag{"--bundle", o.Bundle.Dir != ""}, flag{"--console-socket", o.Bundle.IO.ConsoleSocket != ""},
		flag{"--no-pivot", o.Bundle.NoPivot}, flag{"--no-new-keyring", o.Bundle.NoNewKeyring},
		flag{"--systemd-cgroup", o.Bundle.SystemdCgroup},
		flag{"--lsm-profile", o.OCI.LsmProfile != ""}, flag{"--lsm-mount-context", o.OCI.LsmMountContext != ""},
		flag{"--empty-ns", len(o.OCI.EmptyNs) > 0}, flag{"--manage-cgroups-mode", o.OCI.ManageCgroupsMode != ""},
	); err != nil {
		return nil, err
	}
	r := &treeRestore{rt: rt, o: o}
	if o.Timeout > 0 {
		r.deadline = time.Now().Add(o.Timeout)
	}
	defer r.release()
	for _, phase := range []func() error{r.prepare, r.stage, r.launch, r.await, r.record} {
		if err := phase(); err != nil {
			r.rollback()
			if r.janitorDone != nil {
				r.janitorDone.Close() // the janitor finds nothing left to do
			}
			return nil, err
		}
	}
	return &Restored{ID: o.ID, RootPid: r.root.Pid, RootNsPid: r.rep.RootPid, process: r.proc, rt: rt,
		janitor: r.janitorDone, job: r.job}, nil
}

// onUndo registers how to undo what a phase just made.
func (r *treeRestore) onUndo(f func()) { r.undo = append(r.undo, f) }

func (r *treeRestore) rollback() {
	crashpoint.Hit("restore.rollback")
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
}

// release closes what only the restore itself needed.
func (r *treeRestore) release() {
	for _, f := range []*os.File{r.images, r.work, r.initLock} {
		if f != nil {
			f.Close()
		}
	}
	if r.report != nil {
		r.report.Close()
	}
	r.lock.Unlock()
}

// prepare checks the input and claims the id.
func (r *treeRestore) prepare() error {
	if !mountns.Private() {
		// The staged root would land in the host's mount table.
		return errors.New("internal error: a tree restore must run in a mount namespace of its own (internal/mountns)")
	}
	var err error
	if r.criu, err = r.rt.CRIU(); err != nil {
		return err
	}
	images := r.o.ImagePath
	if r.o.RPC == nil {
		if images, err = r.openDirs(); err != nil {
			return err
		}
	}
	if err := bundle.ValidateID(r.o.ID); err != nil {
		return err
	}
	created := time.Now().UTC()
	if r.o.Ephemeral {
		// Before the id is claimed: an ephemeral container is removed
		// once its tree ends, even if this restore dies at once.
		if r.janitorDone, err = r.rt.startJanitor(r.o.ID, created); err != nil {
			return err
		}
	}
	if r.o.CRIU.ShellJob {
		if r.o.LazyPages {
			// The lazy-pages daemon would be the job host's child, which
			// watches only the job.
			return errors.New("--lazy-pages and --shell-job cannot be combined")
		}
		if r.job, err = newShellJob(); err != nil {
			return err
		}
		r.onUndo(r.job.close)
	}
	if r.lock, err = r.rt.Root.Create(r.o.ID); err != nil {
		return err
	}
	r.onUndo(func() { r.rt.Root.Remove(r.o.ID) })
	// The kind is on disk from the start: whatever happens next, later
	// commands know what this container is, and that its restore has
	// not finished.
	r.meta = &bundle.Meta{
		ID: r.o.ID, Kind: bundle.KindTree, Phase: bundle.PhaseRestoring, ImagePath: images, CRIU: r.criu,
		Created: created, Ephemeral: r.o.Ephemeral,
	}
	if err := bundle.WriteMeta(r.lock.Dir, r.meta); err != nil {
		return err
	}
	crashpoint.Hit("restore.after-meta")
	return nil
}

// openDirs opens the image and work directories the init hands CRIU, and
// returns the images' absolute path.
func (r *treeRestore) openDirs() (string, error) {
	images, err := imageDir(r.o.ImagePath)
	if err != nil {
		return "", err
	}
	if err := imagecheck.Check(images); err != nil {
		return "", err
	}
	if r.images, err = os.Open(images); err != nil {
		return "", err
	}
	if r.work, err = openWorkDir(r.o.WorkPath, images); err != nil {
		return "", err
	}
	return images, nil
}

// stage binds the host's root where libcontainer will pivot into it.
func (r *treeRestore) stage() error {
	r.rootfs = bundle.RootfsPath(r.lock.Dir)
	if err := stageRootfs(r.rootfs); err != nil {
		return err
	}
	r.onUndo(func() { unstageRootfs(r.rootfs) })
	crashpoint.Hit("restore.after-stage")
	return nil
}

// launch creates the container and starts its init, which runs CRIU.
func (r *treeRestore) launch() error {
	spec, err := r.spec()
	if err != nil {
		return err
	}
	if err := bundle.WriteSpec(r.lock.Dir, spec); err != nil {
		return err
	}
	ct, err := createContainer(r.lock.Dir, r.o.ID, spec)
	if err != nil {
		return err
	}
	r.onUndo(func() { r.rt.destroyHalfMade(r.o.ID, ct) })
	crashpoint.Hit("restore.after-create")
	// The init gets its own open file of the container directory: the one
	// we hold carries our lock, which the init would otherwise keep.
	if r.initLock, err = os.Open(r.lock.Dir); err != nil {
		return err
	}
	reportW, err := r.reportSocket()
	if err != nil {
		return err
	}
	// The descriptors are laid out as the init's Config says: the report,
	// the container dir, the directories (or the RPC channel), and a page
	// server's socket if any. Our locked descriptor is not among them: it
	// goes to our init only once it runs (handOver).
	extra := []*os.File{reportW, r.initLock, r.images, r.work}
	if r.o.RPC != nil {
		extra = []*os.File{reportW, r.initLock, r.o.RPC.Channel}
	}
	if r.o.LazyPagesFrom != nil {
		extra = append(extra, r.o.LazyPagesFrom)
	}
	r.proc = &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: "/", Init: true,
		ExtraFiles: extra,
	}
	if r.job != nil {
		r.proc.ExtraFiles = append(r.proc.ExtraFiles, r.job.hostReportR)
	}
	if r.o.Stdio {
		r.proc.Stdin, r.proc.Stdout, r.proc.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	unlock := lockCgroupParents(false) // libcontainer makes the cgroup in Start
	phasetrace.Mark("container.start")
	err = ct.Start(r.proc)
	phasetrace.Mark("container.started")
	unlock()
	reportW.Close()
	if err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	// libcontainer's init now waits at its exec fifo, for good if we die
	// here, until we let it exec ours.
	crashpoint.Hit("restore.after-init-start")
	if err := ct.Exec(); err != nil {
		return fmt.Errorf("start container: %w", err)
	}
	crashpoint.Hit("restore.after-exec")
	if err := r.handOver(); err != nil {
		return err
	}
	crashpoint.Hit("restore.after-start")
	if r.o.RPC != nil {
		pid, err := r.proc.Pid()
		if err != nil {
			return err
		}
		r.o.RPC.Started(pid)
	}
	if r.job != nil {
		if err := r.spawnJobHost(ct); err != nil {
			return err
		}
	}
	// The container has its own copy of the staged root now. Dropping ours
	// keeps a foreground restore from pinning every host mount point for
	// the container's life. The empty directory stays: libcontainer starts
	// exec'd processes in it.
	return unmountRootfs(r.rootfs)
}

// reportSocket makes the socket between us and the init, and returns the
// init's end. On it we hand the init the container's lock (handOver), and
// the init sends its Report.
func (r *treeRestore) reportSocket() (*os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("report socket: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "report")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, fmt.Errorf("report socket: %w", err)
	}
	r.report = conn.(*net.UnixConn)
	return os.NewFile(uintptr(fds[1]), "report"), nil
}

// handOver sends our locked descriptor of the container directory to our
// init, which holds the lock until CRIU is done and runs no CRIU without
// it. Only our init gets it, never libcontainer's: that one waits at its
// exec fifo forever if we die before Exec, and holding the lock it would
// keep every later command on the container waiting, delete --force
// included. Killed before this, we leave the lock free: libcontainer's
// init is a leftover that delete kills, and our init, finding the socket
// closed, exits without restoring anything.
func (r *treeRestore) handOver() error {
	rights := unix.UnixRights(int(r.lock.File().Fd()))
	if _, _, err := r.report.WriteMsgUnix([]byte{0}, rights, nil); err != nil {
		return fmt.Errorf("hand the container over to its init: %w", err)
	}
	return nil
}

// spec is the restore container's spec; the init's configuration rides
// in its environment.
func (r *treeRestore) spec() (*specs.Spec, error) {
	o := r.o
	work, log, lazyLog := dirFd(1), o.CRIU.logFile(restoreLog), "lazy-pages.log"
	if o.LazyPages {
		// The restore and the lazy-pages daemon meet at a socket in their
		// work dir: use the container's own directory, so two lazy
		// restores of the same images never share one, and keep the logs
		// in the work path.
		work = fmt.Sprintf("/proc/self/fd/%d", nsinit.LockFd)
		log, lazyLog = logPath(dirFd(1), log), dirFd(1)+"/"+lazyLog
	}
	opts := criu.RestoreOpts{
		Common:    criuCommon(o.CRIU, dirFd(0), work, log),
		PidFile:   fmt.Sprintf("/proc/self/fd/%d/%s", nsinit.LockFd, rootPidFile),
		LazyPages: o.LazyPages,
		TCPClose:  o.CRIU.TCPClose,
	}
	cfg := &nsinit.Config{CRIU: r.criu, Args: opts.Args(), Dirs: 2, PidFile: rootPidFile}
	if o.RPC != nil {
		// The RPC channel takes the directories' place.
		cfg = &nsinit.Config{CRIU: r.criu, RPC: true}
	}
	if o.LazyPages {
		cfg.LazyPages = criu.LazyPagesArgs(criuCommon(CRIUOptions{}, dirFd(0), work, lazyLog))
		cfg.PageServerSocket = o.LazyPagesFrom != nil
	}
	cfgJSON, err := r.jobConfig(cfg)
	if err != nil {
		return nil, err
	}
	env := []string{"PATH=" + os.Getenv("PATH"), nsinit.ConfigEnv + "=" + string(cfgJSON)}
	if e := phasetrace.EnvEntry(); e != "" {
		env = append(env, e)
	}
	spec := specgen.Restore(specgen.Options{
		Args: []string{r.rt.Self, "nsinit", o.ID}, Env: env, CgroupsPath: r.rt.cgroupsPath(o.ID),
	})
	return spec, nil
}

// await reads the init's report: CRIU's verdict. With a timeout, a CRIU
// that has not reported by then is killed with the whole container.
func (r *treeRestore) await() error {
	if !r.deadline.IsZero() {
		r.report.SetReadDeadline(r.deadline)
	}
	if err := json.NewDecoder(r.report).Decode(&r.rep); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return criu.WithLog(fmt.Errorf("restore %s timed out after %v: criu restore was killed, and the container removed",
				r.o.ID, r.o.Timeout), logPath(r.work.Name(), r.o.CRIU.logFile(restoreLog)))
		}
		return fmt.Errorf("container init died before reporting: %w", initExit(r.proc))
	}
	crashpoint.Hit("restore.after-report")
	if r.rep.Error != "" {
		if r.work == nil || r.rep.BeforeCRIU { // RPC: CRIU's errors go back in its answer
			return errors.New(r.rep.Error)
		}
		return criu.WithLog(errors.New(r.rep.Error), logPath(r.work.Name(), r.o.CRIU.logFile(restoreLog)))
	}
	return nil
}

// record finds the restored root's host pid and writes it down, with
// its start time: the pid alone may name another process later.
func (r *treeRestore) record() error {
	initPid, err := r.proc.Pid()
	if err != nil {
		return err
	}
	host, err := descendantWithNsPid(initPid, r.rep.RootPid)
	if err != nil {
		return err
	}
	if r.root, err = pidfd.Of(host); err != nil {
		return fmt.Errorf("restored root %d: %w", host, err)
	}
	if r.job != nil {
		r.job.restored(r.root.Pid, !r.o.Detach)
	}
	r.meta.Phase = bundle.PhaseReady
	r.meta.RootPid, r.meta.RootNsPid, r.meta.RootStartTime = r.root.Pid, r.rep.RootPid, r.root.StartTime
	if err := bundle.WriteMeta(r.lock.Dir, r.meta); err != nil {
		return err
	}
	crashpoint.Hit("restore.after-record")
	if r.o.PidFile != "" {
		return writePidFile(r.o.PidFile, r.root.Pid)
	}
	return nil
}

// dirFd is how CRIU, inside the container, reaches the i-th directory the
// init hands it.
func dirFd(i int) string { return "/proc/self/fd/" + strconv.Itoa(nsinit.DirFds+i) }

func criuCommon(o CRIUOptions, images, work, log string) criu.Common {
	return criu.Common{
		ImagesDir: images, WorkDir: work, LogFile: log, Verbosity: 4,
		TCPEstablished: o.TCPEstablished, ExtUnixSk: o.ExtUnixSk,
		FileLocks: o.FileLocks, ShellJob: o.ShellJob, Extra: o.Extra,
	}
}

// destroyHalfMade ends and removes what a failed restore made of
// container id: every process of its cgroup (the init first: with it the
// kernel ends the container's pid namespace, CRIU and the partial tree
// included), libcontainer's state and the cgroups. The container's
// directory is the next undo's.
func (rt *Runtime) destroyHalfMade(id string, ct *libcontainer.Container) {
	ct.Signal(unix.SIGKILL) // our child: its pid cannot be reused before we reap it
	cg, err := rt.containerCgroup(id, nil)
	if err == nil {
		killCgroup(cg)
	}
	crashpoint.Hit("restore.rollback.after-kill")
	ct.Destroy()
	if err == nil {
		removeCgroup(cg)
	}
}

// createContainer hands spec to libcontainer with the root made absolute
// (libcontainer would resolve it against our cwd).
func createContainer(dir, id string, spec *specs.Spec) (*libcontainer.Container, error) {
	s := *spec
	root := *spec.Root
	root.Path = bundle.RootfsPath(dir)
	s.Root = &root
	cfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, Spec: &s})
	if err != nil {
		return nil, fmt.Errorf("container config: %w", err)
	}
	return libcontainer.Create(bundle.LibcontainerRoot(dir), id, cfg)
}

// initExit describes how the init process ended, for error messages.
func initExit(p *libcontainer.Process) error {
	st, err := p.Wait()
	if err != nil && st == nil {
		return err
	}
	return fmt.Errorf("init %s", st)
}
