package shim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// nsPid returns pid's number in its innermost pid namespace (the last
// NSpid field of /proc/PID/status).
func nsPid(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok {
			f := strings.Fields(string(rest))
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[len(f)-1])
		}
	}
	return 0, fmt.Errorf("no NSpid in /proc/%d/status", pid)
}

// children lists pid's children; /proc/PID/task/TID/children is per
// thread, so every thread is read.
func children(pid int) []int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []int
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				kids = append(kids, n)
			}
		}
	}
	return kids
}

// childWithNsPid finds the child of parent whose innermost pid is ns.
func childWithNsPid(parent, ns int) (int, error) {
	for _, kid := range children(parent) {
		if n, err := nsPid(kid); err == nil && n == ns {
			return kid, nil
		}
	}
	return 0, fmt.Errorf("no child of %d has pid %d in its namespace", parent, ns)
}

// processGroup is pid's process group id (field 5 of /proc/PID/stat), 0
// if it cannot be read.
func processGroup(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(f[5-3])
	return n
}

// signalGroupMember sends sig to pid, through a pidfd, if pid is (still)
// in process group pgid.
func signalGroupMember(pid, pgid int, sig unix.Signal) {
	ref, err := pidfd.Of(pid)
	if err != nil {
		return
	}
	p, err := ref.Open()
	if err != nil {
		return
	}
	defer p.Close()
	if processGroup(pid) == pgid { // read after the pidfd pinned the process
		p.Signal(sig)
	}
}

// readPid reads a pid file; 0 if it cannot.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}
