package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCommandsKillAllStopped: `kill --all` of a container whose init has
// exited succeeds, and kills what is left in the container, as runc does;
// containerd's shim sends it for every container that shares a pid
// namespace once its init has exited. A plain `kill` of a stopped
// container still fails.
func TestCommandsKillAllStopped(t *testing.T) {
	e := newCmdsEnv(t)
	// The init leaves a child behind and exits. Without a pid namespace of
	// its own (here: the host's, as a pod's shared one would be) that
	// child outlives it.
	b := e.bundle("bundle", "sh", "-c", "sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/child; exit 0")
	e.editConfig(b, func(c map[string]any) {
		linux := c["linux"].(map[string]any)
		var kept []any
		for _, ns := range linux["namespaces"].([]any) {
			if ns.(map[string]any)["type"] != "pid" {
				kept = append(kept, ns)
			}
		}
		linux["namespaces"] = kept
	})
	id := cmdsID(t, "killall")
	e.track(id)
	if r := e.detached(nil, "run", "-d", "--bundle", b, id); r.code != 0 {
		t.Fatalf("run -d: %v", r)
	}
	childFile := filepath.Join(b, "rootfs", "tmp", "child")
	var child int
	waitFor(t, 10*time.Second, "the init to exit and leave its child", func() (bool, string) {
		data, err := os.ReadFile(childFile)
		if err != nil {
			return false, err.Error()
		}
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		s := e.state(id)
		return child > 0 && s.Status == "stopped", fmt.Sprintf("status %s, child %q", s.Status, data)
	})
	if !alive(child) {
		t.Fatalf("the init's child %d is gone already; nothing left to kill", child)
	}

	r := e.rt(rtCall{}, "kill", id, "KILL")
	if r.code == 0 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("kill %s KILL (stopped): %v; want a failure saying it is not running", id, r)
	}
	if r := e.rt(rtCall{}, "kill", "--all", id, "9"); r.code != 0 {
		t.Fatalf("kill --all %s 9 (stopped, with a process left): %v; want exit 0, as runc", id, r)
	}
	waitFor(t, 10*time.Second, fmt.Sprintf("the left-over process %d to die", child), func() (bool, string) {
		return !alive(child), "still alive"
	})
	// Nothing left at all: still no error.
	if r := e.rt(rtCall{}, "kill", "--all", id, "9"); r.code != 0 {
		t.Errorf("kill --all %s 9 (stopped, empty): %v; want exit 0, as runc", id, r)
	}
	e.ok("delete", id)
	e.wantGone(id)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}
