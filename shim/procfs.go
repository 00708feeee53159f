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
	pids, err := nsPids(pid)
	if err != nil {
		return 0, err
	}
	return pids[len(pids)-1], nil
}

// nsPids returns pid's numbers from our pid namespace down to its own
// (the NSpid field of /proc/PID/status).
func nsPids(pid int) ([]int, error) { return procStatusInts(pid, "NSpid:") }

// procStatusInts returns the numbers of the field of /proc/PID/status
// that starts with name ("NSpid:", "NSsid:").
func procStatusInts(pid int, name string) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte(name)); ok {
			var nums []int
			for _, f := range strings.Fields(string(rest)) {
				n, err := strconv.Atoi(f)
				if err != nil {
					return nil, fmt.Errorf("bad %s in /proc/%d/status: %q", name, pid, rest)
				}
				nums = append(nums, n)
			}
			if len(nums) > 0 {
				return nums, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s in /proc/%d/status", name, pid)
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

// descendantWithNsPid finds the process below init whose pid, in init's
// pid namespace, is ns. It looks at every descendant: a shell job's root
// is the job host's child, and a root that is the init of a pid namespace
// of its own has another pid in that one.
func descendantWithNsPid(init, ns int) (int, error) {
	level, err := nsLevel(init)
	if err != nil {
		return 0, err
	}
	queue := children(init)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if n, err := nsPidAt(pid, level); err == nil && n == ns {
			return pid, nil
		}
		queue = append(queue, children(pid)...)
	}
	return 0, fmt.Errorf("no process in the container of %d has pid %d in its namespace", init, ns)
}

// nsLevel is the depth of pid's own pid namespace below ours.
func nsLevel(pid int) (int, error) {
	pids, err := nsPids(pid)
	if err != nil {
		return 0, err
	}
	return len(pids) - 1, nil
}

// nsPidAt is pid's number in the pid namespace level deep below ours.
func nsPidAt(pid, level int) (int, error) {
	pids, err := nsPids(pid)
	if err != nil {
		return 0, err
	}
	if level >= len(pids) {
		return 0, fmt.Errorf("%d is not that deep", pid)
	}
	return pids[level], nil
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
