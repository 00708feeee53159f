package shim

// A bundle container that joins a pod's pid namespace is restored as runc
// does: CRIU gives its processes the pids they had, in the pod's
// namespace. Those pids were the old pod's; in the new one any of them may
// be taken (the pause's sleeps, another container, an earlier copy of the
// same checkpoint), and CRIU fails: "Can't fork for N: File exists". Then,
// and only then, the restore is made once more, into a pid namespace
// nested in the pod's, with an init of its own (internal/pidnest): there
// only pid 1 is taken, so the tree gets its pids back.
//
// What the pod sees then: the restored processes, under pids the kernel
// picked in the pod's namespace, and one more process, the nested
// namespace's init ("criu-ns-runtime pidns-init", a child of the pod's
// init). Inside the container the processes see the pids they had, pid 1
// is that init, and nothing of the pod's other processes. The init belongs
// to the container's cgroup, holds no capability, is chrooted into an
// empty directory, and exits when the restored root exits, taking the
// rest of the nested namespace with it; killing it kills the container.
// Later checkpoints work as for any container of the pod: the nested
// namespace is recorded as the container's pid namespace, so its pids are
// what the images hold.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidnest"
)

// restoreTimedOut is the error of a bundle restore whose CRIU ran past
// --timeout.
func restoreTimedOut(o RestoreOptions, err error) error {
	return fmt.Errorf("restore %s timed out after %v: criu was killed, and the container removed (%v)", o.ID, o.Timeout, err)
}

// pidClashLog is where the first attempt's restore.log is kept when its
// pids were taken.
const pidClashLog = "restore-pid-clash.log"

// restoreBundle restores a bundle container: in the pid namespace its
// bundle names, or, if CRIU finds the tree's pids taken there, in a
// namespace nested in it.
func (rt *Runtime) restoreBundle(o RestoreOptions, opts *libcontainer.CriuOpts) (*libcontainer.Process, error) {
	// The first attempt leaves us in the bundle's directory: fix what the
	// caller's relative paths mean first.
	if o.Bundle.Dir == "" {
		o.Bundle.Dir = "."
	}
	for _, p := range []*string{&o.PidFile, &o.Bundle.Dir, &o.Bundle.IO.ConsoleSocket, &o.Bundle.IO.PidfdSocket} {
		if *p != "" {
			abs, err := filepath.Abs(*p)
			if err != nil {
				return nil, err
			}
			*p = abs
		}
	}
	var proc *libcontainer.Process
	timedOut := false
	restore := func(ct *libcontainer.Container, p *libcontainer.Process) error {
		proc = p
		stop := watchCRIU(o.Timeout, false)
		err := ct.Restore(p, opts)
		timedOut = stop()
		return err
	}
	first := rt.startBundle(o.ID, o.PidFile, o.Bundle, restore)
	if first == nil {
		return proc, nil
	}
	if timedOut {
		return nil, restoreTimedOut(o, first)
	}
	logDir := opts.WorkDirectory
	if logDir == "" {
		logDir = opts.ImagesDirectory
	}
	log := filepath.Join(logDir, "restore.log")
	if !pidClash(criu.LogFileErrors(log)) || o.Bundle.IO.ConsoleSocket != "" {
		// (A terminal's master may have gone to the console socket already.)
		return nil, criu.WithLog(first, log)
	}
	spec, err := loadBundleSpec(o.Bundle.Dir)
	if err != nil {
		return nil, criu.WithLog(first, log)
	}
	podNs, join, unshare, ok := podPidNamespace(spec)
	if !ok {
		return nil, criu.WithLog(first, log)
	}
	if os.Rename(log, filepath.Join(logDir, pidClashLog)) == nil {
		log = filepath.Join(logDir, pidClashLog)
	}
	first = criu.WithLog(first, log)
	logrus.Warnf("restore %s: the tree's pids are taken in the pod's pid namespace (%v); restoring it into a pid namespace nested in the pod's", o.ID, first)

	root, err := os.MkdirTemp(rt.Root.Dir, ".pidns-root-")
	if err != nil {
		return nil, err
	}
	init, err := pidnest.Start(podNs, join, unshare, root)
	os.Remove(root) // the init's root stays an empty, unlinked directory
	if err != nil {
		return nil, fmt.Errorf("%w; restoring into a nested pid namespace instead: %v", first, err)
	}
	nested := o.Bundle
	nested.pidNamespace = init.NsPath()
	err = rt.startBundle(o.ID, o.PidFile, nested, func(ct *libcontainer.Container, p *libcontainer.Process) error {
		if err := restore(ct, p); err != nil {
			return err
		}
		if err := joinCgroups(ct, init.Pid); err != nil {
			return err
		}
		pid, err := p.Pid()
		if err != nil {
			return err
		}
		return init.Watch(pid)
	})
	if err != nil && timedOut {
		init.Close()
		return nil, restoreTimedOut(o, err)
	}
	if err != nil {
		init.Close()
		return nil, fmt.Errorf("restore into a nested pid namespace (the pod's held the tree's pids: %v): %w",
			first, criu.WithLog(err, filepath.Join(logDir, "restore.log")))
	}
	return proc, nil
}

// pidClashRe matches CRIU's errors for a pid or tid that is taken.
var pidClashRe = regexp.MustCompile(`Can't fork for \d+: File exists|Unable to create a thread: -17\b|Pid \d+ do not match expected \d+`)

// pidClash reports whether CRIU's error lines say a pid was taken.
func pidClash(errs []string) bool {
	for _, e := range errs {
		if pidClashRe.MatchString(e) {
			return true
		}
	}
	return false
}

// podPidNamespace returns the path of the pid namespace the container
// joins, the paths of the network, IPC and UTS namespaces it joins, and
// the CLONE_NEW* flags of those it gets new. ok is false when it has a
// pid namespace of its own (no clash is possible) or a user namespace
// (the nested init is not made for one).
func podPidNamespace(spec *specs.Spec) (pidNs string, join []string, unshare int, ok bool) {
	if spec.Linux == nil {
		return "", nil, 0, false
	}
	flags := map[specs.LinuxNamespaceType]int{
		specs.NetworkNamespace: unix.CLONE_NEWNET, specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	}
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Type == specs.PIDNamespace:
			pidNs = ns.Path
		case ns.Type == specs.UserNamespace:
			return "", nil, 0, false
		case flags[ns.Type] != 0 && ns.Path != "":
			join = append(join, ns.Path)
		case flags[ns.Type] != 0:
			unshare |= flags[ns.Type]
		}
	}
	return pidNs, join, unshare, pidNs != ""
}

// setPidNamespace makes the container join the pid namespace at path.
func setPidNamespace(cfg *configs.Config, path string) {
	if path == "" {
		return
	}
	for i := range cfg.Namespaces {
		if cfg.Namespaces[i].Type == configs.NEWPID {
			cfg.Namespaces[i].Path = path
		}
	}
}

// joinCgroups moves pid into the container's cgroups.
func joinCgroups(ct *libcontainer.Container, pid int) error {
	st, err := ct.State()
	if err != nil {
		return err
	}
	for _, dir := range st.CgroupPaths {
		if err := cgroups.WriteCgroupProc(dir, pid); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move the nested init into %s: %w", dir, err)
		}
	}
	return nil
}
