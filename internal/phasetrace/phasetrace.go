// Package phasetrace records when a command reaches each phase of its
// work, for the benchmark's breakdown of where a restore's time goes
// (bench/profile.go). With $CRIU_NS_RUNTIME_TRACE naming a file, Mark
// appends "<CLOCK_MONOTONIC ns> <phase>" to it; without, it does nothing.
// The runtime, the container's init and the benchmark share the clock,
// so their lines interleave in one timeline.
package phasetrace

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Env names the trace file.
const Env = "CRIU_NS_RUNTIME_TRACE"

var path = os.Getenv(Env)

// Enabled says whether this process traces.
func Enabled() bool { return path != "" }

// EnvEntry is the environment entry that keeps a child tracing into the
// same file, or "" when this process does not trace.
func EnvEntry() string {
	if path == "" {
		return ""
	}
	return Env + "=" + path
}

// Mark records that this process reached phase now.
func Mark(phase string) {
	if path != "" {
		Append(path, phase)
	}
}

// Append records phase now in the trace file at path (the benchmark marks
// its own side of a traced command with it).
func Append(path, phase string) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	// One write per line: O_APPEND keeps concurrent writers' lines whole.
	unix.Write(fd, []byte(strconv.FormatInt(ts.Nano(), 10)+" "+phase+"\n"))
	unix.Close(fd)
}
