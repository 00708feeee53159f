package shim

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim/nsinit"
	"github.com/criu-ns-runtime/criu-ns-runtime/specgen"
)

// RestoreOptions describe a restore of a plain process tree.
type RestoreOptions struct {
	ID        string
	ImagePath string
	WorkPath  string // default: ImagePath
	PidFile   string // gets the restored root's host pid
	CRIU      CRIUOptions
	LazyPages bool
	// Ephemeral containers are deleted once their tree is gone (criu-ns mode).
	Ephemeral bool
	// Stdio hands the caller's stdio to the init and CRIU (a foreground or
	// shell-job restore); otherwise they get /dev/null.
	Stdio bool
}

// Restored is a container whose tree runs.
type Restored struct {
	ID        string
	RootPid   int // host pid of the restored root
	RootNsPid int // its pid in the container
	InitPid   int
	process   *libcontainer.Process
	rt        *Runtime
}

const (
	restoreLog  = "restore.log"
	rootPidFile = "criu-root.pid"
)

// Restore restores the images into a new container and returns once the
// tree runs, or with CRIU's own errors if it does not. On failure nothing
// is left behind.
func (rt *Runtime) Restore(o RestoreOptions) (_ *Restored, retErr error) {
	criuPath, err := rt.CRIU()
	if err != nil {
		return nil, err
	}
	warmCgroupAttach()
	imageDir, workDir, err := openDirs(o.ImagePath, o.WorkPath)
	if err != nil {
		return nil, err
	}
	defer imageDir.Close()
	defer workDir.Close()

	lock, err := rt.Root.Create(o.ID)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	var ct *libcontainer.Container
	defer func() {
		if retErr != nil {
			rt.abandon(lock.Dir, ct)
		}
	}()

	if err := stageRootfs(bundle.RootfsPath(lock.Dir)); err != nil {
		return nil, err
	}
	work, log, lazyLog := dirFd(1), restoreLog, "lazy-pages.log"
	if o.LazyPages {
		// The restore and the lazy-pages daemon meet at a socket in their
		// work dir: use the container's own directory, so two lazy
		// restores of the same images never share one, and keep the logs
		// in the work path.
		work = fmt.Sprintf("/proc/self/fd/%d", nsinit.LockFd)
		log, lazyLog = dirFd(1)+"/"+log, dirFd(1)+"/"+lazyLog
	}
	opts := criu.RestoreOpts{
		Common:    criuCommon(o.CRIU, dirFd(0), work, log),
		PidFile:   fmt.Sprintf("/proc/self/fd/%d/%s", nsinit.LockFd, rootPidFile),
		LazyPages: o.LazyPages,
	}
	cfg := nsinit.Config{CRIU: criuPath, Args: opts.Args(), Dirs: 2, PidFile: rootPidFile}
	if o.LazyPages {
		cfg.LazyPages = criu.LazyPagesArgs(criuCommon(CRIUOptions{}, dirFd(0), work, lazyLog))
	}
	cfgJSON, _ := json.Marshal(cfg)
	spec := specgen.Restore(specgen.Options{
		Args:        []string{rt.Self, "nsinit", o.ID},
		Env:         []string{"PATH=" + os.Getenv("PATH"), nsinit.ConfigEnv + "=" + string(cfgJSON)},
		CgroupsPath: rt.cgroupsPath(o.ID),
	})
	if err := bundle.WriteSpec(lock.Dir, spec); err != nil {
		return nil, err
	}
	ct, err = createContainer(lock.Dir, o.ID, spec)
	if err != nil {
		return nil, err
	}

	// The init gets its own open file of the container directory: the one
	// we hold carries our lock, which the init would otherwise keep.
	initLock, err := os.Open(lock.Dir)
	if err != nil {
		return nil, err
	}
	defer initLock.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer reportR.Close()
	p := &libcontainer.Process{
		Args:       spec.Process.Args,
		Env:        spec.Process.Env,
		Cwd:        "/",
		Init:       true,
		ExtraFiles: []*os.File{reportW, initLock, imageDir, workDir},
	}
	if o.Stdio {
		p.Stdin, p.Stdout, p.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	err = ct.Run(p)
	reportW.Close()
	if err != nil {
		return nil, fmt.Errorf("start container: %w", err)
	}
	// The container has its own copy of the staged root now. Dropping
	// ours keeps the host's mount table as it was and stops this copy
	// from pinning every host mount point for the container's life. The
	// empty directory stays: libcontainer starts exec'd processes in it.
	if err := unmountRootfs(bundle.RootfsPath(lock.Dir)); err != nil {
		return nil, err
	}
	var rep nsinit.Report
	if err := json.NewDecoder(reportR).Decode(&rep); err != nil {
		return nil, fmt.Errorf("container init died before reporting: %w", initExit(p))
	}
	logPath := filepath.Join(workDir.Name(), restoreLog)
	if rep.Error != "" {
		return nil, criu.WithLog(errors.New(rep.Error), logPath)
	}
	initPid, _ := p.Pid()
	rootPid, err := childWithNsPid(initPid, rep.RootPid)
	if err != nil {
		return nil, err
	}
	meta := &bundle.Meta{
		ID: o.ID, ImagePath: imageDir.Name(), RootPid: rootPid, RootNsPid: rep.RootPid,
		CRIU: criuPath, Created: time.Now().UTC(), Ephemeral: o.Ephemeral,
	}
	if err := bundle.WriteMeta(lock.Dir, meta); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, rootPid); err != nil {
			return nil, err
		}
	}
	return &Restored{ID: o.ID, RootPid: rootPid, RootNsPid: rep.RootPid, InitPid: initPid, process: p, rt: rt}, nil
}

// Wait forwards sigs to the container until its tree exits, then deletes
// the container and returns the root's exit code (128+n for signal n), as
// `runc run` does in the foreground.
func (r *Restored) Wait(sigs <-chan os.Signal) (int, error) {
	return r.rt.waitAndDelete(r.ID, r.process, sigs)
}

// exitCodeOf is a process's exit code, 128+n if signal n killed it.
func exitCodeOf(st *os.ProcessState) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(unix.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// openDirs opens the image dir (which must hold CRIU images) and the work
// dir (created if missing), returning them with absolute names.
func openDirs(imagePath, workPath string) (images, work *os.File, err error) {
	if imagePath == "" {
		return nil, nil, fmt.Errorf("image path is empty")
	}
	abs, err := filepath.Abs(imagePath)
	if err != nil {
		return nil, nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("image path %s: %w", imagePath, unwrapPathError(err))
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("image path %s is not a directory", imagePath)
	}
	if _, err := os.Stat(filepath.Join(abs, "inventory.img")); err != nil {
		return nil, nil, fmt.Errorf("image path %s holds no CRIU images (no inventory.img)", imagePath)
	}
	if images, err = os.Open(abs); err != nil {
		return nil, nil, err
	}
	if work, err = openWorkDir(workPath, abs); err != nil {
		images.Close()
		return nil, nil, err
	}
	return images, work, nil
}

// openWorkDir opens (creating it if needed) the work dir, def if empty.
func openWorkDir(workPath, def string) (*os.File, error) {
	if workPath == "" {
		workPath = def
	}
	abs, err := filepath.Abs(workPath)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("work path %s: %w", workPath, unwrapPathError(err))
	}
	f, err := os.Open(abs)
	if err != nil {
		return nil, fmt.Errorf("work path %s: %w", workPath, unwrapPathError(err))
	}
	return f, nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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

// cgroupsPath keeps our containers together, apart from other runtimes',
// and apart from those of another --root that use the same id.
func (rt *Runtime) cgroupsPath(id string) string {
	sum := sha256.Sum256([]byte(rt.Root.Dir))
	return fmt.Sprintf("/criu-ns-runtime/%x/%s", sum[:4], id)
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

// abandon removes everything a failed restore made. The caller holds the lock.
func (rt *Runtime) abandon(dir string, ct *libcontainer.Container) {
	if ct != nil {
		ct.Signal(unix.SIGKILL)
		ct.Destroy()
	}
	unstageRootfs(bundle.RootfsPath(dir))
	os.RemoveAll(dir)
}

// writePidFile writes pid atomically, as runc does.
func writePidFile(path string, pid int) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return os.Rename(tmp, path)
}
