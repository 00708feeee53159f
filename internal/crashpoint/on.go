//go:build faultinject

package crashpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// target stays in the environment: a re-exec of this process (criu-ns
// mode's private mount namespace) must die at the same point. Helpers
// that run runtime code are started without it (Strip).
var target = os.Getenv(Env)

// Hit SIGKILLs this process if name is the point $CRIU_NS_CRASHPOINT named.
func Hit(name string) {
	if name != "" && name == target {
		unix.Kill(os.Getpid(), unix.SIGKILL)
		select {} // SIGKILL is not deliverable late, but never run on
	}
}
