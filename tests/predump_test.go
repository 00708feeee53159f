package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// A pre-dump runs inside the tree's namespaces like a dump, and leaves the
// tree running either way. CRIU needs the kernel's soft-dirty tracking for
// it: where that is missing (as on the machine this was written on), the
// runtime refuses it in one line before CRIU runs, with nothing made.
func TestPreDump(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t)
	id := cid("pre")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, false)
	dirty := haveSoftDirty(t)

	// The two ways to ask for a pre-dump into dir; criu-ns mode finds the
	// container by the root's pid.
	ways := map[string]struct {
		run    func(dir string) result
		prefix string // of its error messages
	}{
		"checkpoint --pre-dump": {func(dir string) result {
			return e.run("checkpoint", "--pre-dump", "--image-path", dir, id)
		}, errPrefix},
		"criu-ns pre-dump": {func(dir string) result {
			return e.criuNs(runtimeBin, "criu", "pre-dump", "-t", strconv.Itoa(host), "-D", dir)
		}, "criu-ns: "},
	}
	for name, way := range ways {
		dir := filepath.Join(t.TempDir(), "sub", "pre")
		r := way.run(dir)
		t.Logf("%s -> exit %d: %s", name, r.code, r.stderr)
		if dirty {
			if r.code != 0 {
				t.Errorf("%s failed on a kernel with dirty tracking: %s", name, r)
			}
			if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
				t.Errorf("%s wrote no images: %v", name, err)
			}
		} else {
			checkFailureFrom(t, r, way.prefix, []string{"pre-dump " + refusedNoSoftDirty})
			mustNotExist(t, filepath.Dir(dir), name+" was refused, but made the image path's directory")
		}
		if syscall.Kill(host, 0) != nil {
			t.Fatalf("%s ended the tree", name)
		}
		waitCounterAdvances(t, img.counter)
		if st := e.state(id); st.Status != "running" {
			t.Errorf("after %s the container is %q, want running", name, st.Status)
		}
	}
	e.mustRun("delete", "--force", id)
	waitGone(t, host)
	e.assertNothingLeft()
}
