package shim

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"
)

// Tree containers live in /criu-ns-runtime/<hash of --root>/<id> of every
// cgroup hierarchy: apart from other runtimes' containers, and from those
// of another --root that use the same id. The runtime made the two
// parents, and removes them once they are empty.
const cgroupTop = "/criu-ns-runtime"

// cgroupsPath is container id's cgroup path (relative to each hierarchy).
func (rt *Runtime) cgroupsPath(id string) string {
	sum := sha256.Sum256([]byte(rt.Root.Dir))
	return fmt.Sprintf("%s/%x/%s", cgroupTop, sum[:4], id)
}

// cgroupLockPath serialises making and removing the shared parents across
// every runtime on the host: a removal of an empty /criu-ns-runtime
// between another restore's mkdir of it and of its child would fail that
// restore.
var cgroupLockPath = "/run/criu-ns-runtime.cgroup.lock"

// lockCgroupParents takes the host-wide lock on the shared parents,
// shared to make a cgroup below them, exclusive to remove them.
func lockCgroupParents(exclusive bool) (unlock func()) {
	f, err := os.OpenFile(cgroupLockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for unix.Flock(int(f.Fd()), how) == unix.EINTR {
	}
	return func() { f.Close() }
}

// containerCgroup is the cgroup of container id: from libcontainer's state
// when it can be read, else the path a tree container has (what a
// container whose state file is lost or corrupt had).
func (rt *Runtime) containerCgroup(id string, ct *libcontainer.Container) (cgroups.Manager, error) {
	if ct != nil {
		if st, err := ct.State(); err == nil {
			cfg := ct.Config()
			// A copy: libcontainer's Destroy empties the map it shares.
			return manager.NewWithPaths(cfg.Cgroups, maps.Clone(st.CgroupPaths))
		}
	}
	return manager.New(&cgroups.Cgroup{Path: rt.cgroupsPath(id), Resources: &cgroups.Resources{}})
}

// cgroupPids lists the processes of cgroup m; none if it does not exist.
func cgroupPids(m cgroups.Manager) []int {
	if !m.Exists() {
		return nil
	}
	pids, _ := m.GetAllPids()
	return pids
}

// signalCgroup sends sig to every process of cgroup m, frozen meanwhile so
// that none forks a child that escapes the signal; a cgroup that was
// frozen before stays frozen. SIGKILL goes through cgroup v2's
// cgroup.kill where there is one.
func signalCgroup(m cgroups.Manager, sig unix.Signal) error {
	if !m.Exists() {
		return nil
	}
	if sig == unix.SIGKILL {
		if p := m.Path(""); p != "" {
			err := cgroups.WriteFile(p, "cgroup.kill", "1")
			if err == nil || !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	// SIGCONT matters only to stopped tasks, which cannot fork: no freeze.
	// Tasks waiting on userfaultfd (a lazy restore) may not freeze at
	// all: then signal them as they are.
	was, _ := m.GetFreezerState()
	unfrozen := sig == unix.SIGCONT
	if !unfrozen && was != cgroups.Frozen && m.Freeze(cgroups.Frozen) != nil {
		m.Freeze(cgroups.Thawed) // undo a half-done freeze
		unfrozen = true
	}
	if unfrozen {
		pids, err := m.GetAllPids()
		for _, pid := range pids {
			unix.Kill(pid, sig)
		}
		return err
	}
	pids, err := m.GetAllPids()
	for _, pid := range pids {
		unix.Kill(pid, sig) // frozen: no pid can be reused meanwhile
	}
	// A frozen cgroup v1 task takes SIGKILL only once thawed.
	if was != cgroups.Frozen || sig == unix.SIGKILL {
		if terr := m.Freeze(cgroups.Thawed); err == nil {
			err = terr
		}
	}
	return err
}

// killCgroup SIGKILLs every process of cgroup m and waits until they are
// gone.
func killCgroup(m cgroups.Manager) error {
	if err := signalCgroup(m, unix.SIGKILL); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	if cgroups.IsCgroup2UnifiedMode() {
		// cgroup.kill also killed whatever forked meanwhile: only wait,
		// woken by the kernel, without taking CPU from the dying.
		if waitUnpopulated(m.Path(""), deadline) {
			return nil
		}
	}
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		pids := cgroupPids(m)
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v did not end after SIGKILL", pids)
		}
		signalCgroup(m, unix.SIGKILL)
		time.Sleep(pause)
	}
}

// waitUnpopulated waits until cgroup v2 dir holds no live process
// ("populated 0" in its cgroup.events, which the kernel signals with
// POLLPRI) and says whether that came before deadline. A cgroup that does
// not exist holds none.
func waitUnpopulated(dir string, deadline time.Time) bool {
	f, err := os.Open(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	buf := make([]byte, 256)
	for {
		n, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return false
		}
		if strings.Contains(string(buf[:n]), "populated 0") {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, int(left/time.Millisecond)+1); err != nil && err != unix.EINTR {
			return false
		}
	}
}

// removeCgroup removes cgroup m in every hierarchy, then the parents the
// runtime made for it, where they are empty.
func removeCgroup(m cgroups.Manager) error {
	paths := maps.Clone(m.GetPaths()) // Destroy empties the manager's map
	err := m.Destroy()
	unlock := lockCgroupParents(true)
	defer unlock()
	for _, p := range paths {
		removeEmptyParents(p)
	}
	return err
}

// removeEmptyParents removes the directories between a container's cgroup
// path and the hierarchy's root, up to and including /criu-ns-runtime,
// while they are empty (rmdir refuses a cgroup with children).
func removeEmptyParents(path string) {
	i := strings.Index(path, cgroupTop+"/")
	if i < 0 {
		return
	}
	top := path[:i+len(cgroupTop)]
	for dir := filepath.Dir(path); len(dir) >= len(top); dir = filepath.Dir(dir) {
		if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
			return
		}
	}
}
