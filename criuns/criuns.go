package criuns

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/criuns/swrk"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/mountns"
	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// Env is what criu-ns mode takes from its environment.
type Env struct {
	Root string // where its containers live ($CRIU_NS_RUNTIME_ROOT)
}

// Main runs a CRIU command line and returns the exit code.
func Main(args []string, env Env) int {
	code, err := run(args, env)
	if err != nil {
		fmt.Fprintf(os.Stderr, "criu-ns: %v\n", err)
		return 1
	}
	return code
}

func run(args []string, env Env) (int, error) {
	c, err := Parse(args)
	if err != nil {
		return 1, err
	}
	if c.Help || c.Version {
		return passthrough(c.CRIU, args)
	}
	if opt := c.migrateOnly(); opt != "" && c.Command != "migrate" {
		return 1, fmt.Errorf("%s is an option of criu-ns migrate, not of %s", opt, c.Command)
	}
	switch c.Command {
	case "migrate":
		return migrateTree(c, env)
	case "restore":
		if err := c.checkRestore(); err != nil {
			return 1, err
		}
		return restore(c, env)
	case "dump", "pre-dump":
		if len(c.Args) > 0 {
			return 1, fmt.Errorf("%s: unexpected argument %q", c.Command, c.Args[0])
		}
		return dump(c, args, env)
	case "swrk":
		return swrk.Main(c.Args, swrk.Env{Root: env.Root, NewID: newID}), nil
	}
	return passthrough(c.CRIU, args)
}

// checkRestore refuses what a restore into a new namespace cannot do.
func (c *Cmdline) checkRestore() error {
	switch {
	case c.Sibling:
		// As the old criu-ns: the root is the child of the namespace's
		// init, not a sibling of the caller.
		return fmt.Errorf("restore: --restore-sibling is not supported")
	case c.ExecCmd:
		return fmt.Errorf("restore: --exec-cmd is not supported")
	case len(c.Args) > 0:
		return fmt.Errorf("restore: unexpected argument %q", c.Args[0])
	}
	return nil
}

func runtime(c *Cmdline, env Env) (*shim.Runtime, error) {
	rt, err := shim.New(env.Root, c.CRIU)
	if err != nil {
		return nil, err
	}
	rt.Notify = func(msg string) { fmt.Fprintf(os.Stderr, "criu-ns: note: %s\n", msg) }
	return rt, nil
}

// timeout is --criu-ns-timeout; zero if not given.
func timeout(c *Cmdline) (time.Duration, error) {
	if c.Timeout == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--criu-ns-timeout %q: want a positive duration such as 30s", c.Timeout)
	}
	return d, nil
}

// restore restores into a new, ephemeral container; -d returns once the
// tree runs, otherwise it waits for the tree like `criu restore` does.
func restore(c *Cmdline, env Env) (int, error) {
	if !mountns.Private() {
		// The staged root must not land in the host's mount table.
		return 1, mountns.Reexec()
	}
	limit, err := timeout(c)
	if err != nil {
		return 1, err
	}
	rt, err := runtime(c, env)
	if err != nil {
		return 1, err
	}
	images := c.ImagesDir
	if images == "" {
		images = "."
	}
	pidFile := c.PidFile
	if pidFile != "" && !filepath.IsAbs(pidFile) {
		// CRIU's rule: relative to the work dir, which defaults to -D.
		base := c.WorkDir
		if base == "" {
			base = images
		}
		pidFile = filepath.Join(base, pidFile)
	}
	var sigs chan os.Signal
	if !c.Detach {
		sigs = make(chan os.Signal, 16)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
	}
	r, err := rt.Restore(shim.RestoreOptions{
		Kind: bundle.KindTree, ID: newID(), ImagePath: images, WorkPath: c.WorkDir, PidFile: pidFile, Detach: c.Detach,
		CRIU: shim.CRIUOptions{ShellJob: c.ShellJob, LogFile: c.LogFile, Extra: c.Rest}, Timeout: limit,
		Ephemeral: true, Stdio: !c.Detach || c.ShellJob,
	})
	if err != nil {
		return 1, err
	}
	if c.Detach {
		return 0, nil
	}
	// CRIU's rule, which callers of criu-ns rely on: a foreground
	// `criu restore` exits 0 once the tree it restored has ended,
	// however the tree ended.
	if _, err := r.Wait(sigs); err != nil {
		return 1, err
	}
	return 0, nil
}

// dump checkpoints (or pre-dumps) a tree restored by criu-ns, inside its
// namespaces; other trees go to CRIU.
func dump(c *Cmdline, args []string, env Env) (int, error) {
	pid, err := strconv.Atoi(c.Tree)
	if err != nil {
		return passthrough(c.CRIU, args)
	}
	limit, err := timeout(c)
	if err != nil {
		return 1, err
	}
	rt, err := runtime(c, env)
	if err != nil {
		return 1, err
	}
	id, err := rt.FindByRootPid(pid)
	if err != nil || id == "" {
		return passthrough(c.CRIU, args)
	}
	images := c.ImagesDir
	if images == "" {
		images = "."
	}
	return 0, rt.Checkpoint(shim.CheckpointOptions{
		ID: id, ImagePath: images, WorkPath: c.WorkDir, LeaveRunning: c.Leave, PreDump: c.Command == "pre-dump", Timeout: limit,
		TrackMem: c.TrackMem, CRIU: shim.CRIUOptions{ShellJob: c.ShellJob, LogFile: c.LogFile, Extra: c.Rest},
		OCI: shim.OCICRIUOptions{ParentPath: c.PrevImagesDir},
	})
}

// passthrough replaces this process with CRIU.
func passthrough(criu string, args []string) (int, error) {
	path, err := shim.LookCRIU(criu)
	if err != nil {
		return 1, err
	}
	// --criu-binary and --criu-ns-timeout are ours, not CRIU's.
	pass := withoutCRIUNsOptions(args)
	return 1, syscall.Exec(path, append([]string{path}, pass...), os.Environ())
}

// newID names a criu-ns container: sortable by time, unique.
func newID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("criu-ns-%s-%s", time.Now().UTC().Format("20060102T150405"), hex.EncodeToString(b))
}
