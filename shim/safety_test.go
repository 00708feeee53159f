package shim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

func TestRemoveEmptyParents(t *testing.T) {
	mnt := t.TempDir() // stands for a hierarchy's mount point
	leaf := filepath.Join(mnt, "criu-ns-runtime", "abcd", "id")
	other := filepath.Join(mnt, "criu-ns-runtime", "ef01", "id2")
	for _, d := range []string{leaf, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(leaf) // the container's own cgroup is gone already
	removeEmptyParents(leaf)
	if _, err := os.Stat(filepath.Dir(leaf)); !os.IsNotExist(err) {
		t.Errorf("the empty parent %s is left", filepath.Dir(leaf))
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another root's cgroup went: %v", err)
	}
	os.Remove(other)
	removeEmptyParents(other)
	if _, err := os.Stat(filepath.Join(mnt, "criu-ns-runtime")); !os.IsNotExist(err) {
		t.Errorf("the empty /criu-ns-runtime is left: %v", err)
	}
	if _, err := os.Stat(mnt); err != nil {
		t.Errorf("removed above /criu-ns-runtime: %v", err)
	}
	// Paths that are not the runtime's are never touched.
	foreign := filepath.Join(mnt, "podman", "x")
	os.MkdirAll(foreign, 0o755)
	removeEmptyParents(filepath.Join(foreign, "y"))
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("a cgroup that is not ours went: %v", err)
	}
}

func TestDumpLogSaysDone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "dump.log")
	for log, want := range map[string]bool{
		"(00.1) Dumping finished successfully\n":     true,
		"(00.1) Pre-dumping finished successfully\n": true,
		"(00.1) Dumping FAILED.\n":                   false,
		"(00.1) Unfreezing tasks into 2\n":           false,
	} {
		os.WriteFile(p, []byte(strings.Repeat("(00.0) filler line\n", 1000)+log), 0o600)
		if got := dumpLogSaysDone(p); got != want {
			t.Errorf("dumpLogSaysDone(...%q) = %v, want %v", log, got, want)
		}
	}
	if dumpLogSaysDone(filepath.Join(dir, "missing")) {
		t.Error("a missing log says done")
	}
}

func TestUnreadable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	os.WriteFile(p, nil, 0o600)
	if err := unreadable(p, errors.New("EOF")); !strings.Contains(err.Error(), p+" is corrupt: the file is empty") {
		t.Errorf("empty: %v", err)
	}
	os.WriteFile(p, []byte(`{"id":`), 0o600)
	if err := unreadable(p, errors.New("x")); !strings.Contains(err.Error(), p+" is corrupt") {
		t.Errorf("garbage: %v", err)
	}
}

// A tree container whose restore never finished is stopped, whatever of
// it is left, and deleting it needs no force.
func TestHalfMadeIsStopped(t *testing.T) {
	c := &container{id: "x", meta: &bundle.Meta{Kind: bundle.KindTree, Phase: bundle.PhaseRestoring}}
	if st, err := c.status(); err != nil || st != libcontainer.Stopped {
		t.Errorf("status = %v, %v; want stopped", st, err)
	}
	if !c.leftover() || reasonStopped(c) == "" {
		t.Errorf("leftover = %v, reason %q", c.leftover(), reasonStopped(c))
	}
	c = &container{id: "y"} // no meta.json at all
	if st, _ := c.status(); st != libcontainer.Stopped || !c.leftover() || reasonStopped(c) == "" {
		t.Errorf("no meta: status %v leftover %v reason %q", st, c.leftover(), reasonStopped(c))
	}
	c = &container{id: "z", broken: errors.New("meta.json is corrupt")}
	if _, err := c.status(); err == nil || c.leftover() {
		t.Errorf("a broken container: status err %v, leftover %v", err, c.leftover())
	}
}
