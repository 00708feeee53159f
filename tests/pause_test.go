package tests

import (
	"encoding/json"
	"testing"
)

// TestPauseShowsInStateAndList: a paused tree (its freezer cgroup frozen)
// is "paused" in state and list, and "running" again once resumed; its
// memory is intact. state and list read the freezer themselves, not
// through libcontainer.Load.
func TestPauseShowsInStateAndList(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "1", "-child")
	id := cid("pz")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, true)
	listed := func() string {
		var list []state
		r := e.mustRun("list", "--format", "json")
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 || list[0].ID != id {
			t.Fatalf("list --format json: %v: %s", err, r.stdout)
		}
		return list[0].Status
	}

	e.mustRun("pause", id)
	if s := e.state(id); s.Status != "paused" || s.Pid == 0 {
		t.Errorf("state of a paused tree: %+v, want status paused with its init's pid", s)
	}
	if s := listed(); s != "paused" {
		t.Errorf("list says %s for a paused tree, want paused", s)
	}
	counterStopped(t, img.counter)

	e.mustRun("resume", id)
	if s := e.state(id); s.Status != "running" {
		t.Errorf("state after resume: %s, want running", s.Status)
	}
	if s := listed(); s != "running" {
		t.Errorf("list says %s after resume, want running", s)
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, host, img.status)
}
