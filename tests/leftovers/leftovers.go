// Package leftovers finds what a container manager run by the e2e tests
// or the bench may leave behind on the host once it is torn down: a
// manager keeps its state in one directory of the caller's and puts its
// containers' cgroups below one cgroup parent, so anything still running
// from there, mounted below there or left in there is a leftover. Whether
// a leftover fails a test or a bench run, and how it is reported, stays
// with the caller.
package leftovers

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Processes are the processes (but this one) whose command line names a
// path below dir or whose cgroup is cgParent or lies below it, with their
// command lines: a manager's daemons and shims name their state
// directory, its containers sit in its cgroups.
func Processes(dir, cgParent string) map[int]string {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" || filepath.Clean("/"+cgParent) == "/" {
		panic("leftovers.Processes: dir " + dir + ", cgroup " + cgParent) // would match every process
	}
	found := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if pid == os.Getpid() {
			continue
		}
		cmdline, _ := os.ReadFile(p + "/cmdline")
		cg, _ := os.ReadFile(p + "/cgroup")
		if bytes.Contains(cmdline, []byte(dir+"/")) || inCgroup(string(cg), cgParent) {
			found[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return found
}

// inCgroup says whether /proc/PID/cgroup's text puts the process in
// parent or below it, in any hierarchy.
func inCgroup(text, parent string) bool {
	for _, line := range strings.Split(text, "\n") {
		// hierarchy-ID:controllers:path
		if f := strings.SplitN(line, ":", 3); len(f) == 3 && (f[2] == parent || strings.HasPrefix(f[2], parent+"/")) {
			return true
		}
	}
	return false
}

// Mounts are the mount points at or below dir, deepest first, so that
// unmounting them in this order works.
func Mounts(dir string) []string {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) == "/" {
		panic("leftovers.Mounts " + dir)
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			if p := unescape(f[4]); p == dir || strings.HasPrefix(p, dir+"/") {
				points = append(points, p)
			}
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points
}

// Unmount lazily unmounts every mount point at or below dir, deepest
// first, and returns them, with the error where one failed.
func Unmount(dir string) (points []string, errs []error) {
	points = Mounts(dir)
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return points, errs
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupHierarchies are the cgroup v1 hierarchies and the v2 root.
func CgroupHierarchies() []string {
	hs, _ := filepath.Glob("/sys/fs/cgroup/*")
	var dirs []string
	for _, h := range hs {
		if fi, err := os.Stat(h); err == nil && fi.IsDir() {
			dirs = append(dirs, h)
		}
	}
	return append(dirs, "/sys/fs/cgroup")
}

// RemoveCgroupParent removes parent (a path such as /name) in every
// hierarchy, and its child cgroups before it: those named in expected (a
// manager's own, as podman's conmon) silently, any other as a leftover it
// names ("cgroup PATH"). A parent it could not remove is named too, with
// the error. The runtimes remove their containers' own cgroups; nobody
// removes the parent.
func RemoveCgroupParent(parent string, expected ...string) []string {
	if filepath.Clean("/"+parent) == "/" {
		panic("leftovers.RemoveCgroupParent " + parent) // would remove every cgroup
	}
	var left []string
	for _, h := range CgroupHierarchies() {
		p := filepath.Join(h, parent)
		subs, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, s := range subs {
			if !s.IsDir() {
				continue
			}
			known := false
			for _, e := range expected {
				known = known || s.Name() == e
			}
			if !known {
				left = append(left, "cgroup "+filepath.Join(p, s.Name()))
			}
			os.Remove(filepath.Join(p, s.Name()))
		}
		if err := os.Remove(p); err != nil {
			left = append(left, fmt.Sprintf("cgroup %s: %v", p, err))
		}
	}
	return left
}
