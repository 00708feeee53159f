package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadRestoreInput: every bad restore fails with one line, exit 1,
// touches no image and leaves nothing behind.
func TestBadRestoreInput(t *testing.T) {
	img := makeImages(t, "-child")

	corrupt := func(t *testing.T, name string, mangle func([]byte) []byte) string {
		dir := copyImages(t, img.dir)
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, mangle(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	core := fmt.Sprintf("core-%d.img", img.origPid)

	cases := []struct {
		name string
		dir  func(t *testing.T) string // the --image-path to restore from
		want []string                  // the message names one of these
	}{
		{"missing image dir", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "no-such-dir")
		}, []string{"no-such-dir", "no such file", "does not exist", "not found"}},
		{"empty image dir", func(t *testing.T) string {
			return t.TempDir()
		}, []string{"inventory", "image", "empty"}},
		{"image path is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(p, []byte("not images\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, []string{"not a directory", "/file"}},
		{"truncated pstree.img", func(t *testing.T) string {
			return corrupt(t, "pstree.img", func(b []byte) []byte { return b[:len(b)/2] })
		}, []string{"restore", "criu", "pstree", "image"}},
		{"corrupt core image", func(t *testing.T) string {
			return corrupt(t, core, func(b []byte) []byte {
				for i := 64; i < len(b) && i < 160; i++ {
					b[i] = 'X'
				}
				return b
			})
		}, []string{"restore", "criu", "core", "image"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			dir := c.dir(t)
			var before map[string]string
			if st, err := os.Stat(dir); err == nil && st.IsDir() {
				before = hashDir(t, dir)
			}
			e.mustFail(c.want, "restore", "-d", "--image-path", dir, cid("bad"))
			if before != nil {
				assertSameImages(t, before, dir)
			}
			e.mustFail([]string{"does not exist"}, "state", cid("bad"))
			counterStopped(t, img.counter)
			e.assertNothingLeft()
		})
	}
}

func TestBadIDs(t *testing.T) {
	img := makeImages(t)
	before := hashDir(t, img.dir)

	for _, id := range []string{"a/b", "..", "../escape", "/abs", ".", "with space", "tab\tid", ""} {
		t.Run(fmt.Sprintf("%q", id), func(t *testing.T) {
			e := newEnv(t)
			// Where a careless runtime would put (or delete) this id's
			// directory, when that is outside the root: keep something
			// there and check it survives.
			target := filepath.Join(e.root, id)
			var sentinel string
			var fresh bool // target did not exist before
			if target != e.root && !strings.HasPrefix(target, e.root+"/") {
				_, err := os.Stat(target)
				fresh = err != nil
				sentinel = filepath.Join(target, "sentinel-"+runToken)
				if err := os.MkdirAll(target, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(sentinel, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					os.Remove(sentinel)
					if fresh {
						os.Remove(target)
					}
				})
			}

			e.mustFail([]string{"id", "invalid"}, "restore", "-d", "--image-path", img.dir, id)
			for _, cmd := range [][]string{
				{"state", id}, {"kill", id}, {"ps", id}, {"delete", id}, {"delete", "--force", id},
				{"checkpoint", "--image-path", filepath.Join(t.TempDir(), "ck"), id},
			} {
				e.mustFail(nil, cmd...)
			}
			assertSameImages(t, before, img.dir)
			if sentinel != "" {
				if _, err := os.Stat(sentinel); err != nil {
					t.Errorf("%s, outside the root, was removed: %v", sentinel, err)
				}
				if ents, _ := os.ReadDir(target); fresh && len(ents) != 1 {
					t.Errorf("%s, outside the root, was written to: %d entries", target, len(ents))
				}
			}
			counterStopped(t, img.counter)
			e.assertNothingLeft()
		})
	}
}

func TestUnknownAndExistingIDs(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-child")
	before := hashDir(t, img.dir)

	ckpt := filepath.Join(t.TempDir(), "ckpt")
	for _, cmd := range [][]string{
		{"state", cid("ghost")},
		{"kill", cid("ghost")},
		{"kill", cid("ghost"), "KILL"},
		{"delete", cid("ghost")},
		{"ps", cid("ghost")},
		{"checkpoint", "--image-path", ckpt, cid("ghost")},
	} {
		e.mustFail([]string{"does not exist"}, cmd...)
	}
	e.assertNothingLeft()

	// Restoring into an existing id fails and leaves the existing one be.
	e.mustRun("restore", "-d", "--image-path", img.dir, cid("dup"))
	host := e.checkTree(cid("dup"), img, true)
	st := e.state(cid("dup"))
	e.mustFail([]string{"already exists"}, "restore", "-d", "--image-path", img.dir, cid("dup"))
	assertSameImages(t, before, img.dir)
	if st2 := e.state(cid("dup")); st2.Pid != st.Pid || st2.Annotations[annRootPid] != st.Annotations[annRootPid] || st2.Status != "running" {
		t.Errorf("state changed after a refused restore: %+v -> %+v", st, st2)
	}
	waitCounterAdvances(t, img.counter)
	kids := childrenOf(host)
	e.mustRun("delete", "--force", cid("dup"))
	waitGone(t, append(kids, host)...)
	e.assertNothingLeft()
}

// failScript writes an action script that fails at CRIU stage action.
func failScript(t *testing.T, action string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fail-"+action+".sh")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = %q ] && exit 1\nexit 0\n", action)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckpointFailureKeepsTreeRunning: a failed dump, early or after the
// tree was frozen and dumped, leaves the tree running and the container
// usable.
func TestCheckpointFailureKeepsTreeRunning(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	e.mustRun("restore", "-d", "--image-path", img.dir, cid("ck"))
	host := e.checkTree(cid("ck"), img, true)
	kids := childrenOf(host)

	stillRunning := func(t *testing.T) {
		t.Helper()
		if h, _ := e.on(t).rootPids(cid("ck")); h != host {
			t.Fatalf("root host pid changed from %d to %d", host, h)
		}
		waitCounterAdvances(t, img.counter)
		checkMemory(t, host, img.status)
		if got := childrenOf(host); len(got) != 1 || got[0] != kids[0] {
			t.Errorf("root's children %v, want %v", got, kids)
		}
	}

	t.Run("unknown criu option", func(t *testing.T) {
		e := e.on(t)
		e.mustFail([]string{"criu", "dump", "checkpoint", "bogus"},
			"checkpoint", "--image-path", filepath.Join(t.TempDir(), "x"), "--", "--bogus-criu-flag", cid("ck"))
		stillRunning(t)
	})
	t.Run("image path is a file", func(t *testing.T) {
		e := e.on(t)
		p := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.mustFail([]string{"not a directory", "/file", "exists"}, "checkpoint", "--image-path", p, cid("ck"))
		stillRunning(t)
	})
	t.Run("post-dump script fails", func(t *testing.T) {
		e := e.on(t)
		// CRIU freezes and dumps the whole tree, then fails: it must
		// thaw the tree, and the runtime must not kill it.
		e.mustFail([]string{"criu", "dump", "checkpoint", "script"},
			"checkpoint", "--image-path", filepath.Join(t.TempDir(), "x"),
			"--", "--action-script", failScript(t, "post-dump"), cid("ck"))
		stillRunning(t)
	})
	t.Run("checkpoint still works", func(t *testing.T) {
		e := e.on(t)
		e.mustRun("checkpoint", "--leave-running", "--image-path", filepath.Join(t.TempDir(), "ok"), cid("ck"))
		stillRunning(t)
	})
	e.mustRun("delete", "--force", cid("ck"))
	waitGone(t, append(kids, host)...)
	e.assertNothingLeft()
}

// TestRestoreFailureMidway: CRIU fails after it forked (part of) the tree;
// nothing may survive, and the id is free again afterwards.
func TestRestoreFailureMidway(t *testing.T) {
	img := makeImages(t, "-child")
	before := hashDir(t, img.dir)

	t.Run("file of the tree missing", func(t *testing.T) {
		e := newEnv(t)
		moved := img.counter + ".moved"
		if err := os.Rename(img.counter, moved); err != nil {
			t.Fatal(err)
		}
		e.mustFail([]string{"criu", "restore", "counter"}, "restore", "-d", "--image-path", img.dir, cid("mid"))
		if err := os.Rename(moved, img.counter); err != nil {
			t.Fatal(err)
		}
		assertSameImages(t, before, img.dir)
		e.mustFail([]string{"does not exist"}, "state", cid("mid"))
		e.assertNothingLeft()

		// The same id works once the file is back.
		e.mustRun("restore", "-d", "--image-path", img.dir, cid("mid"))
		host := e.checkTree(cid("mid"), img, true)
		e.mustRun("delete", "--force", cid("mid"))
		waitGone(t, host)
		e.assertNothingLeft()
	})
	t.Run("post-restore script fails", func(t *testing.T) {
		// The whole tree exists (stopped) when post-restore runs.
		e := newEnv(t)
		e.mustFail([]string{"criu", "restore", "script"}, "restore", "-d", "--image-path", img.dir,
			"--", "--action-script", failScript(t, "post-restore"), cid("mid"))
		assertSameImages(t, before, img.dir)
		e.mustFail([]string{"does not exist"}, "state", cid("mid"))
		counterStopped(t, img.counter)
		e.assertNothingLeft()
	})
}
