package shim

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
