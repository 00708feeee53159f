// Package mountns gives a tree restore a mount namespace of its own, made
// by a C constructor (mountns.c) before the Go runtime starts. The
// runtime stages the host's root for the container there: the host's
// mount table never holds the staged copy, no container copies another's,
// and the kernel removes it when the process ends, however it ends.
//
// The constructor acts on `criu-ns-runtime [global flags] restore` without
// --bundle, on criu-ns swrk mode when the first request waiting on its
// socket is a RESTORE, and on any run with _CRIU_NS_PRIVATE_MOUNTS=1 in
// the environment: front ends that restore otherwise (criu-ns mode) re-exec
// themselves with it (Reexec).
//
// There it also starts the wait of the restore's first cgroup attach
// early, in a thread of its own (cgroupwarm.c).
package mountns

// #cgo CFLAGS: -Wall
// #cgo LDFLAGS: -pthread
// #include <stdlib.h>
// #include "mountns.h"
import "C"

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

const env = "_CRIU_NS_PRIVATE_MOUNTS"

func init() {
	// Children (libcontainer's init, CRIU) must not unshare again.
	os.Unsetenv(env)
}

// Private says whether this process runs in a mount namespace of its own.
func Private() bool { return C.criu_ns_private_mounts() == 1 }

// Reexec runs this program again, with the same arguments, in a mount
// namespace of its own; it returns only on failure.
func Reexec() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	err = syscall.Exec(self, os.Args, append(os.Environ(), env+"=1"))
	return fmt.Errorf("re-exec into a private mount namespace: %w", err)
}

// IsValueFlag says whether the constructor takes the global flag name to
// have a value; cmd tests it against the command line's own flags.
func IsValueFlag(name string) bool {
	c := C.CString(name)
	defer C.free(unsafe.Pointer(c))
	return C.criu_ns_is_value_flag(c) == 1
}

// swrkFd and swrkRestores expose the constructor's swrk checks to tests.
func swrkFd(args []string) int {
	argv := make([]*C.char, len(args)+1)
	for i, a := range args {
		argv[i] = C.CString(a)
		defer C.free(unsafe.Pointer(argv[i]))
	}
	return int(C.criu_ns_swrk_fd(C.int(len(args)), &argv[0]))
}

func swrkRestores(fd int) bool { return C.criu_ns_swrk_restores(C.int(fd)) == 1 }

// cliRestoresTree exposes the constructor's parsing to tests.
func cliRestoresTree(args []string) bool {
	argv := make([]*C.char, len(args)+1)
	for i, a := range args {
		argv[i] = C.CString(a)
		defer C.free(unsafe.Pointer(argv[i]))
	}
	return C.criu_ns_cli_restores_tree(C.int(len(args)), &argv[0]) == 1
}

// cgroupProcsPath exposes the warm-up's choice of cgroup.procs (for the
// cgroups that cgroupFile, a /proc/PID/cgroup, names) to tests.
func cgroupProcsPath(cgroupFile string) (string, bool) {
	c := C.CString(cgroupFile)
	defer C.free(unsafe.Pointer(c))
	buf := make([]byte, 4096)
	if C.criu_ns_cgroup_procs_path(c, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf))) != 0 {
		return "", false
	}
	return C.GoString((*C.char)(unsafe.Pointer(&buf[0]))), true
}
