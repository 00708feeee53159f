// Package crashpoint names the places where the fault-injection suite
// (tests/fault_test.go) kills the runtime. Hit(name) does nothing in a
// normal build; a build with the tag "faultinject" (make build-faultinject)
// SIGKILLs its own process at the point named by $CRIU_NS_CRASHPOINT, as
// an OOM kill or a power cut of the runtime alone would. Only the runtime
// itself dies there: CRIU, the container's init and any helper live on, as
// they would in real life.
package crashpoint

import "strings"

// Env names the point at which a faultinject build kills itself.
const Env = "CRIU_NS_CRASHPOINT"

// Strip returns env without the crash point, for helper processes of the
// runtime (the janitor) that must not die where the command does.
func Strip(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, Env+"=") {
			out = append(out, kv)
		}
	}
	return out
}
