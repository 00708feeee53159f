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

func firstErrorLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Error") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(out)
}
