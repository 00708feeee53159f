package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A pre-dump runs inside the tree's namespaces like a dump, and leaves the
// tree running either way. CRIU needs the kernel's soft-dirty tracking for
// it: where that is missing (as on the machine this was written on), CRIU's
// own error must come through, with nothing else changed.
func TestPreDump(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t)
	id := cid("pre")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, false)
	dirty := exec.Command("criu", "check", "--feature", "mem_dirty_track").Run() == nil

	// The two ways to ask for a pre-dump into dir; criu-ns mode finds the
	// container by the root's pid.
	ways := map[string]func(dir string) result{
		"checkpoint --pre-dump": func(dir string) result {
			return e.run("checkpoint", "--pre-dump", "--image-path", dir, id)
		},
		"criu-ns pre-dump": func(dir string) result {
			return e.criuNs(runtimeBin, "criu", "pre-dump", "-t", strconv.Itoa(host), "-D", dir)
		},
	}
	for name, run := range ways {
		dir := filepath.Join(t.TempDir(), "pre")
		r := run(dir)
		t.Logf("%s -> exit %d: %s", name, r.code, r.stderr)
		if dirty {
			if r.code != 0 {
				t.Errorf("%s failed on a kernel with dirty tracking: %s", name, r)
			}
			if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err != nil {
				t.Errorf("%s wrote no images: %v", name, err)
			}
		} else {
			// CRIU's own verdict, from inside the namespaces (from outside
			// it would complain about the mount table instead).
			if r.code == 0 || !strings.Contains(r.stderr, "criu pre-dump failed") || !strings.Contains(r.stderr, "criu/mem.c") {
				t.Errorf("%s: want CRIU's pre-dump error: %s", name, r)
			}
			if imgs, _ := filepath.Glob(filepath.Join(dir, "*.img")); len(imgs) != 0 {
				t.Errorf("%s failed but left images: %v", name, imgs)
			}
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
