package setns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

const (
	spawnArg        = "setns-spawn"
	spawnPidfdEnv   = "_CRIU_NS_SPAWN_PIDFD"
	spawnCgroupsEnv = "_CRIU_NS_SPAWN_CGROUPS"
)

// Spawn returns a command that starts path with args inside the pid and
// mount namespaces of target (a container's init) and in the cgroup
// directories cgroups, and exits as soon as it started it: the started
// process lives on as the init's child (spawn.c says why it takes two
// forks). It inherits the caller's session and stdio, starts in a new
// process group (its own parent's, which the namespace can see), and gets
// env as its environment; extra become its fds 3, 4, .... The caller
// must call Close after Start.
func Spawn(target *pidfd.Proc, cgroups []string, extra []*os.File, env []string, path string, args ...string) (*Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	pfd, err := target.File()
	if err != nil {
		return nil, fmt.Errorf("pidfd of %d: %w", target.Pid, err)
	}
	cmd := exec.Command(self, append([]string{spawnArg, path}, args...)...)
	cmd.ExtraFiles = append(append([]*os.File{}, extra...), pfd)
	cmd.Env = append(append([]string{}, env...),
		fmt.Sprintf("%s=%d", spawnPidfdEnv, 2+len(cmd.ExtraFiles)),
		spawnCgroupsEnv+"="+strings.Join(cgroupProcs(cgroups), "\n"))
	return &Cmd{Cmd: cmd, closers: []*os.File{pfd}}, nil
}

// cgroupProcs lists the cgroup.procs file of each directory once (cgroup
// v1 controllers mounted together share a directory).
func cgroupProcs(dirs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if real, err := filepath.EvalSymlinks(d); err == nil {
			d = real
		}
		if !seen[d] {
			seen[d] = true
			out = append(out, filepath.Join(d, "cgroup.procs"))
		}
	}
	sort.Strings(out)
	return out
}
