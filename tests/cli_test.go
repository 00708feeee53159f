package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkState checks the runc-style fields of a running container's state.
func (e *env) checkState(id string, img images) state {
	e.t.Helper()
	st := e.state(id)
	t := e.t
	if st.OCIVersion == "" {
		t.Errorf("state %s: empty ociVersion", id)
	}
	if st.ID != id {
		t.Errorf("state %s: id %q", id, st.ID)
	}
	if st.Status != "running" {
		t.Errorf("state %s: status %q, want running", id, st.Status)
	}
	if _, err := time.Parse(time.RFC3339, st.Created); err != nil {
		t.Errorf("state %s: created %q is not RFC3339: %v", id, st.Created, err)
	}
	if st.Pid <= 0 || innermostPid(st.Pid) != 1 {
		t.Errorf("state %s: pid %d is not the container's init (its ns pid is %d, want 1)", id, st.Pid, innermostPid(st.Pid))
	}
	host, _ := e.rootPids(id)
	if nsOf(st.Pid, "pid") != nsOf(host, "pid") || nsOf(st.Pid, "mnt") != nsOf(host, "mnt") {
		t.Errorf("state %s: init %d and root %d are not in the same pid+mnt namespaces", id, st.Pid, host)
	}
	if got := st.Annotations[annImagePath]; filepath.Clean(got) != img.dir {
		t.Errorf("state %s: %s is %q, want %q", id, annImagePath, got, img.dir)
	}
	return st
}

func TestStateListPsKillDelete(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "1", "-child")

	e.mustRun("restore", "-d", "--image-path", img.dir, cid("alpha"))
	e.mustRun("restore", "-d", "--image-path", img.dir, cid("beta"))
	alphaSt := e.checkState(cid("alpha"), img)
	e.checkState(cid("beta"), img)
	alpha := e.checkTree(cid("alpha"), img, true)
	beta := e.checkTree(cid("beta"), img, true)

	// list
	if got := strings.Fields(e.mustRun("list", "-q").stdout); !slices.Equal(sorted(got), []string{cid("alpha"), cid("beta")}) {
		t.Errorf("list -q: %q, want alpha and beta", got)
	}
	var list []state
	r := e.mustRun("list", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		t.Fatalf("list --format json: %v: %s", err, r)
	}
	if len(list) != 2 {
		t.Errorf("list --format json has %d entries, want 2: %s", len(list), r.stdout)
	}
	for _, st := range list {
		if st.ID == cid("alpha") && (st.Pid != alphaSt.Pid || st.Status != "running" || st.Annotations[annRootPid] != alphaSt.Annotations[annRootPid]) {
			t.Errorf("list --format json says %+v, state says %+v", st, alphaSt)
		}
	}
	if out := e.mustRun("list").stdout; !strings.Contains(out, cid("alpha")) || !strings.Contains(out, cid("beta")) {
		t.Errorf("list (table) does not show both containers:\n%s", out)
	}

	// ps
	var pids []int
	r = e.mustRun("ps", "--format", "json", cid("alpha"))
	if err := json.Unmarshal([]byte(r.stdout), &pids); err != nil {
		t.Fatalf("ps --format json: %v: %s", err, r)
	}
	for _, p := range append([]int{alpha}, childrenOf(alpha)...) {
		if !slices.Contains(pids, p) {
			t.Errorf("ps --format json alpha = %v lacks tree process %d", pids, p)
		}
	}
	for _, p := range append([]int{beta}, childrenOf(beta)...) {
		if slices.Contains(pids, p) {
			t.Errorf("ps --format json alpha = %v lists beta's process %d", pids, p)
		}
	}
	if out := e.mustRun("ps", cid("alpha")).stdout; !strings.Contains(out, itoa(alpha)) {
		t.Errorf("ps (table) alpha does not show the root %d:\n%s", alpha, out)
	}

	// kill: name, SIG-name and number all reach the root.
	for _, sig := range []string{"USR1", "SIGUSR1", "10"} {
		os.Remove(img.status)
		e.mustRun("kill", cid("alpha"), sig)
		expectStatus(t, img.status, "ok")
	}
	e.mustFail([]string{"BOGUS", "signal"}, "kill", cid("alpha"), "BOGUS")
	e.mustFail([]string{"signal", "999"}, "kill", cid("alpha"), "999")
	if !isWorkload(alpha) {
		t.Fatalf("alpha's root died after bad kill commands")
	}

	// delete of a running container needs --force, and loses nothing.
	kids := childrenOf(alpha)
	e.mustFail([]string{"running"}, "delete", cid("alpha"))
	if h, _ := e.rootPids(cid("alpha")); h != alpha {
		t.Errorf("alpha's root changed from %d to %d", alpha, h)
	}
	waitCounterAdvances(t, img.counter)
	if len(childrenOf(alpha)) != 1 {
		t.Errorf("alpha's root lost its child after a refused delete")
	}

	// Default signal is TERM: the workload exits 42, the container stops.
	e.mustRun("kill", cid("alpha"))
	waitGone(t, append(kids, alpha)...)
	e.waitStatus(cid("alpha"), "stopped")
	e.mustFail([]string{"container not running"}, "kill", cid("alpha"), "KILL")
	e.mustRun("kill", "--all", cid("alpha"), "KILL") // as runc 1.1: nothing to signal is no error
	e.mustRun("delete", cid("alpha"))
	e.mustFail([]string{"does not exist"}, "state", cid("alpha"))

	// kill --all reaches every process of the tree.
	bkids := childrenOf(beta)
	e.mustRun("kill", "--all", cid("beta"), "KILL")
	waitGone(t, append(bkids, beta)...)
	e.waitStatus(cid("beta"), "stopped")
	e.mustRun("delete", cid("beta"))

	// delete --force of a running container.
	e.mustRun("restore", "-d", "--image-path", img.dir, cid("gamma"))
	gamma := e.checkTree(cid("gamma"), img, true)
	gkids := childrenOf(gamma)
	e.mustRun("delete", "--force", cid("gamma"))
	waitGone(t, append(gkids, gamma)...)
	e.mustFail([]string{"does not exist"}, "state", cid("gamma"))
	if out := strings.TrimSpace(e.mustRun("list", "-q").stdout); out != "" {
		t.Errorf("list -q after deleting everything: %q", out)
	}
	r = e.mustRun("list", "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 0 {
		t.Errorf("list --format json with no containers: %v: %q, want []", err, r.stdout)
	}
	counterStopped(t, img.counter)
	e.assertNothingLeft()
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestCheckAndVersion(t *testing.T) {
	e := newEnv(t)
	// check says whether incremental dumps are possible, as CRIU sees
	// it, and passes either way: they are optional.
	out := e.mustRun("check").stdout
	want := "incremental dumps (pre-dump, --parent-path): no, this kernel lacks soft-dirty memory tracking (criu check --feature mem_dirty_track: Dirty tracking is OFF. Memory snapshot will not work.)\n"
	if haveSoftDirty(t) {
		want = "incremental dumps (pre-dump, --parent-path): yes, this kernel tracks soft-dirty memory\n"
	}
	if !strings.HasPrefix(out, want) || !strings.HasSuffix(out, "Looks good.\n") {
		t.Errorf("check printed %q, want %q and then Looks good.", out, want)
	}
	if out := e.mustRun("--version").stdout; strings.TrimSpace(out) == "" {
		t.Errorf("--version printed nothing")
	}
	e.mustFail(nil, "no-such-command")
	e.assertNothingLeft()
}
