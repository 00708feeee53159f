package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatecri"
)

// TestCRIRestoreSharedPidNamespace: 30 restores of one checkpoint into
// pods whose containers share the pod's pid namespace, three copies per
// pod. The pids the tree had are often taken in a new pod (its pause forks
// a sleep a second), and always in a pod that runs a copy restored with
// them. Every restore must succeed with the tree's pids as they were:
// straight into the pod's namespace when they are free there, else into a
// namespace nested in it. The test checks what the README says the pod
// sees then, and that a copy restored nested can be checkpointed and
// restored again.
func TestCRIRestoreSharedPidNamespace(t *testing.T) {
	requireE2E(t)
	start := time.Now()
	c := startCRI(t)
	a := c.runPod("a", privatecri.NamespacePod)
	orig := c.runCounter(a, "counter")
	origPid, _ := c.inspect(orig)
	treePid := nsPid(t, origPid)
	ck, before := c.checkpoint(orig, "ck.tar")
	c.removePod(a)

	const pods, copies = 10, 3
	tally := map[string]int{}       // where the 30 copies went
	firstCopies := map[string]int{} // where each pod's first copy went
	var lastNested, viewer string
	checked := false
	for i := 0; i < pods; i++ {
		pod := c.runPod(fmt.Sprintf("p%d", i), privatecri.NamespacePod)
		straight := 0
		for j := 1; j <= copies; j++ {
			id := c.restore(pod, fmt.Sprintf("copy%d", j), ck)
			c.waitCounter(id, before.token, before.n)
			where, root := c.pidNamespaceOf(id, pod)
			if got := nsPid(t, root); got != treePid {
				t.Fatalf("pod %d copy %d: restored root has pid %d in %s, the tree had %d", i, j, got, where, treePid)
			}
			tally[where]++
			if j == 1 {
				firstCopies[where]++
			}
			switch where {
			case pidnsPod:
				straight++
			case pidnsNested:
				lastNested = id
				// In the first pod, from its second copy on (one of
				// them is nested: the first holds the pids or did not
				// get them), look at it closely.
				if i == 0 && viewer != "" && !checked {
					c.checkNested(pod, id, root, viewer)
					checked = true
				}
			default:
				t.Fatalf("pod %d copy %d lives in %s", i, j, where)
			}
			if i == 0 && j == 1 {
				// A container of the pod's own, to see what the pod sees.
				viewer = c.createContainer(pod, "viewer", criCounterImage, "/bin/sh", "-c", "while :; do sleep 1; done")
				c.must(time.Minute, "start", viewer)
			}
		}
		if straight > 1 {
			t.Fatalf("pod %d: %d copies restored straight into the pod's namespace with the same pids", i, straight)
		}
		if i < pods-1 {
			c.removePod(pod)
		}
	}
	restores := 0
	for _, call := range readRuntimeCalls(t, c.callLog) {
		if call.sub == "restore" {
			restores++
			if call.exit != 0 {
				t.Errorf("a restore failed: %s", call)
			}
		}
	}
	if restores != pods*copies {
		t.Errorf("the runtime served %d restores, want %d", restores, pods*copies)
	}
	if !checked {
		t.Errorf("the first pod had no nested copy after its first: nothing checked what the pod sees")
	}
	t.Logf("%d restores into shared pod pid namespaces: %d straight into the pod's, %d nested in it (pids taken), 0 failed; "+
		"of the %d first copies in a fresh pod, %d straight, %d nested",
		pods*copies, tally[pidnsPod], tally[pidnsNested], pods, firstCopies[pidnsPod], firstCopies[pidnsNested])

	// A copy restored nested is checkpointed like any other and restored
	// again in a new pod.
	if lastNested == "" {
		t.Fatalf("no restore went nested: the test exercised only the pod's own namespace")
	}
	ck2, before2 := c.checkpoint(lastNested, "ck2.tar")
	again := c.restore(c.runPod("again", privatecri.NamespacePod), "again", ck2)
	after := c.waitCounter(again, before2.token, before2.n+3)
	t.Logf("nested copy checkpointed and restored again: %s -> %s", before2, after)
	t.Logf("%d CRI restores took %.1fs", pods*copies+1, time.Since(start).Seconds())
}

// checkNested checks what the README says of a copy restored into a pid
// namespace nested in pod's: the pod sees the tree under new pids and one
// process more, the nested init; inside, the tree sees its own pids and
// that init as pid 1, and nothing of the pod. The init is in the
// container's cgroup, a child of the pod's init, holds no capability, is
// chrooted into a removed directory, and goes away with the container.
// viewer is another container of the pod.
func (c *criEnv) checkNested(pod criPod, id string, root int, viewer string) {
	t := c.t
	t.Helper()
	rootNs := nsInode(t, fmt.Sprintf("/proc/%d/ns/pid", root))
	var init int
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/pid")
	for _, p := range procs {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil || st.Ino != rootNs {
			continue
		}
		if pid, _ := strconv.Atoi(strings.Split(p, "/")[2]); nsPid(t, pid) == 1 {
			init = pid
		}
	}
	if init == 0 {
		t.Fatalf("copy %s: no pid 1 in its nested namespace", id[:12])
	}
	st := procStatus(t, init)
	if st["CapEff"] != "0000000000000000" || st["CapBnd"] != "0000000000000000" || st["NoNewPrivs"] != "1" {
		t.Errorf("nested init %d keeps privileges: CapEff %s CapBnd %s NoNewPrivs %s", init, st["CapEff"], st["CapBnd"], st["NoNewPrivs"])
	}
	if ppid, _ := strconv.Atoi(st["PPid"]); ppid != c.podPid(pod) {
		t.Errorf("nested init %d: parent %d, want the pod's init %d", init, ppid, c.podPid(pod))
	}
	if rootLink, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", init)); !strings.HasSuffix(rootLink, "(deleted)") {
		t.Errorf("nested init %d: root %q, want a removed directory", init, rootLink)
	}
	cgInit, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", init))
	cgRoot, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", root))
	if string(cgInit) != string(cgRoot) {
		t.Errorf("nested init %d is not in the container's cgroups:\n%s\nvs the root's:\n%s", init, cgInit, cgRoot)
	}

	// What the pod sees, from another container sharing its namespace:
	// the init (parent: the pod's init) and the tree's root under their
	// pids one level up.
	podView := c.must(30*time.Second, "exec", viewer, "ps", "-o", "pid,ppid,args")
	initInPod := podLevelPid(t, init)
	rootInPod := podLevelPid(t, root)
	if !psHas(podView, initInPod, "1", "pidns-init") || !psHas(podView, rootInPod, "0", "/counter") {
		t.Errorf("the pod does not see the nested init as %s (parent 1) and the tree's root as %s:\n%s", initInPod, rootInPod, podView)
	}
	// What the copy sees: the init as pid 1, its tree at its own pids,
	// none of the pod's processes (their `sleep 1`).
	inside := c.must(30*time.Second, "exec", id, "ps", "-o", "pid,ppid,args")
	if !psHas(inside, "1", "0", "pidns-init") || !psHas(inside, strconv.Itoa(nsPid(t, root)), "0", "/counter") ||
		strings.Contains(inside, "sleep 1") {
		t.Errorf("inside the nested copy: want pid 1 the nested init, the tree at its pids, no pod process:\n%s", inside)
	}
	t.Logf("the pod's view:\n%s\nthe nested copy's view:\n%s", podView, inside)

	// Stopping the copy ends its init too.
	c.must(time.Minute, "stop", "--timeout", "0", id)
	waitFor(t, 10*time.Second, fmt.Sprintf("nested init %d to exit with its container", init), func() (bool, string) {
		return !alive(init), "alive"
	})
}

// podLevelPid is pid's pid one pid namespace up from its own.
func podLevelPid(t *testing.T, pid int) string {
	t.Helper()
	f := strings.Fields(procStatus(t, pid)["NSpid"])
	if len(f) < 2 {
		t.Fatalf("process %d: NSpid %q has no parent level", pid, f)
	}
	return f[len(f)-2]
}

// psHas reports whether busybox `ps -o pid,ppid,args` output has a line
// for pid with parent ppid whose command line contains what.
func psHas(ps, pid, ppid, what string) bool {
	for _, line := range strings.Split(ps, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == pid && f[1] == ppid && strings.Contains(line, what) {
			return true
		}
	}
	return false
}
