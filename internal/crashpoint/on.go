//go:build faultinject

package crashpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// target is read once: the processes this one starts (the container's
// init, helpers) must not die at a point of the same name.
var target = os.Getenv(Env)

func init() { os.Unsetenv(Env) }

// Hit SIGKILLs this process if name is the point $CRIU_NS_CRASHPOINT named.
func Hit(name string) {
	if name != "" && name == target {
		unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // SIGKILL is not deliverable late, but never run on
	}
}
