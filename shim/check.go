package shim

import (
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/criu"
)

// Check reports everything the runtime needs that this host lacks.
func (rt *Runtime) Check() error {
	criuPath, err := rt.CRIU()
	if err != nil {
		return err
	}
	var missing []string
	out, err := exec.Command(criuPath, "--version").Output()
	if v, verr := criu.ParseVersion(out); err != nil || verr != nil {
		missing = append(missing, fmt.Sprintf("%s --version failed", criuPath))
	} else if !v.AtLeast(4, 0) {
		missing = append(missing, fmt.Sprintf("CRIU %s is too old (need 4.0 or later; `make deps` builds 4.1.1)", v))
	}
	if out, err := exec.Command(criuPath, "check").CombinedOutput(); err != nil {
		missing = append(missing, "criu check failed: "+firstErrorLine(string(out)))
	}
	for _, ns := range []string{"pid", "mnt"} {
		if _, err := os.Stat("/proc/self/ns/" + ns); err != nil {
			missing = append(missing, "no "+ns+" namespaces in this kernel")
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		missing = append(missing, "no cgroup filesystem at /sys/fs/cgroup")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "not running as root")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s", strings.Join(missing, "; "))
	}
	return nil
}

// CheckIncremental says, as one line of check's output, whether this
// kernel allows incremental dumps (pre-dump, --parent-path): CRIU's own
// verdict on soft-dirty tracking. They are optional, so the answer never
// fails check.
func (rt *Runtime) CheckIncremental() string {
	const what = "incremental dumps (pre-dump, --parent-path): "
	criuPath, err := rt.CRIU()
	if err != nil {
		return what + "unknown: " + err.Error()
	}
	out, err := exec.Command(criuPath, "check", "--feature", "mem_dirty_track").CombinedOutput()
	if err == nil {
		return what + "yes, this kernel tracks soft-dirty memory"
	}
	// "Warn  (criu/cr-check.c:824): Dirty tracking is OFF. ..."
	msg := firstLine(string(out))
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "irty track") {
			msg = l
			break
		}
	}
	if _, after, ok := strings.Cut(msg, "): "); ok {
		msg = after
	}
	return what + "no, this kernel lacks soft-dirty memory tracking (criu check --feature mem_dirty_track: " + strings.TrimSpace(msg) + ")"
}

func firstErrorLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(out)
}
