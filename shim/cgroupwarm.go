package shim

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// warmCgroupAttach moves this process into the cgroup it is already in,
// in the background, so the container's cgroup attach later is quick.
//
// Every write to cgroup.procs takes the kernel's global
// cgroup_threadgroup_rwsem for writing, and the first write after a quiet
// spell waits out an RCU grace period (5-12 ms measured here); writes
// within the next ~10 ms are fast. Paying that wait while the container is
// being prepared, instead of when libcontainer moves the init, takes it
// off a restore's critical path. Errors are ignored: this is only a head
// start.
func warmCgroupAttach() {
	path := ownCgroupProcs()
	if path == "" {
		return
	}
	go func() {
		if f, err := os.OpenFile(path, os.O_WRONLY, 0); err == nil {
			f.WriteString(strconv.Itoa(os.Getpid()))
			f.Close()
		}
	}()
}

// ownCgroupProcs is the cgroup.procs of this process's cgroup in some
// mounted hierarchy (v1 "pids" first, else the unified one).
func ownCgroupProcs() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	defer f.Close()
	var unified string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-id:controllers:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch parts[1] {
		case "pids":
			return "/sys/fs/cgroup/pids" + parts[2] + "/cgroup.procs"
		case "":
			for _, mnt := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
				p := mnt + parts[2] + "/cgroup.procs"
				if _, err := os.Stat(p); err == nil {
					unified = p
					break
				}
			}
		}
	}
	return unified
}
