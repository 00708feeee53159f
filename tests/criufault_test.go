package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// CRIU killed, CRIU too slow, the disk full: the tree keeps running (or,
// for a restore, nothing is left), the image dir keeps what it held, and
// the error says what happened.

// killCRIUAt writes an action script that SIGKILLs CRIU (the script's
// nearest ancestor named criu) when it reaches stage action: a kill at
// an exact point of CRIU's run, from the inside.
func killCRIUAt(t *testing.T, action string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kill-at-"+action+".sh")
	script := fmt.Sprintf(`#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = %q ] || exit 0
p=$$
while [ "$p" -gt 1 ] && [ "$(cat /proc/$p/comm)" != criu ]; do
	p=$(sed 's/.*) [A-Z] \([0-9]*\).*/\1/' /proc/$p/stat)
done
kill -KILL "$p"
exit 0
`, action)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// killCRIUOnLog writes a --criu wrapper that runs CRIU and SIGKILLs it
// once its log shows pattern (for the CRIU command verb only): a kill
// in the middle of a phase no action script marks, such as while CRIU's
// parasite runs in the tree.
func killCRIUOnLog(t *testing.T, verb, pattern string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kill-on-log.sh")
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = %q ] || exec %q "$@"
work=. log=
prev=
for a in "$@"; do
	case "$prev" in -W) work=$a ;; -o) log=$a ;; esac
	prev=$a
done
%q "$@" &
pid=$!
while kill -0 $pid 2>/dev/null; do
	if grep -q -F -- %q "$work/$log" 2>/dev/null; then
		kill -KILL $pid
		break
	fi
done
wait $pid
`, verb, criuBin, criuBin, pattern)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// stallAt writes an action script that never returns at stage action.
func stallAt(t *testing.T, action string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "stall-at-"+action+".sh")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = %q ] || exit 0\nwhile :; do sleep 1; done\n", action)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCRIUKilledDuringDump(t *testing.T) {
	img := makeImages(t, "-mem", "32", "-child")
	table := newOutcomes(t, "CRIU killed", "mode", "image dir", "tree", "parasite maps left", "error")
	for _, tc := range []struct {
		name string
		args func(t *testing.T) (global, extra []string)
		// late: the kill may come after CRIU is done, so the dump may
		// succeed; ending mode only (with the tree left running, CRIU's
		// last phase is too short to hit)
		late bool
	}{
		{"at its pre-dump script (before it seized the tree)", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "pre-dump")}
		}, false},
		{"once its parasite is in the tree", func(t *testing.T) ([]string, []string) {
			return []string{"--criu", killCRIUOnLog(t, "dump", "Wait for parasite being daemonized")}, nil
		}, false},
		{"while it dumps pages", func(t *testing.T) ([]string, []string) {
			return []string{"--criu", killCRIUOnLog(t, "dump", "Dumping pages (type")}, nil
		}, false},
		{"at its post-dump script (images written, tree frozen)", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "post-dump")}
		}, false},
		{"while it ends the tree", func(t *testing.T) ([]string, []string) {
			return []string{"--criu", killCRIUOnLog(t, "dump", "Unfreezing tasks into")}, nil
		}, true},
	} {
		for _, leave := range []bool{true, false} {
			mode := map[bool]string{true: "--leave-running", false: "ending"}[leave]
			if tc.late && leave {
				continue
			}
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				id := cid("ck")
				e.mustRun("restore", "-d", "--image-path", img.dir, id)
				host := e.checkTree(id, img, true)
				ck := filepath.Join(t.TempDir(), "ck")
				e.mustRun("checkpoint", "--leave-running", "--image-path", ck, id)
				old := hashDir(t, ck)

				global, extra := tc.args(t)
				args := append(global, "checkpoint", "--image-path", ck)
				if leave {
					args = append(args, "--leave-running")
				}
				args = append(args, id)
				if extra != nil {
					args = append(append(args, "--"), extra...)
				}
				r := e.run(args...)
				if tc.late && r.code == 0 {
					// CRIU was done before it was killed.
					table.add(tc.name, mode, "new", "ended", "-", "(none: the dump finished first)")
					waitGone(t, host)
					e.checkRestores(ck, img)
					e.mustRun("delete", id)
					assertNothingBeside(t, ck)
					e.assertNothingLeft()
					return
				}
				msg := checkFailure(t, r, []string{"criu dump"})
				images := "old"
				assertSameImages(t, old, ck)
				tree := "runs"
				if !isWorkload(host) {
					tree = "ended"
				}
				kept, _ := filepath.Glob(ck + ".unverified-*")
				if len(kept) > 0 {
					images = "old, dump kept beside"
				}
				maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", host))
				table.add(tc.name, mode, images, tree, itoa(strings.Count(string(maps), "CRIUMFD")), strings.TrimPrefix(msg, errPrefix))
				switch {
				case tree == "runs":
					if len(kept) != 0 {
						t.Errorf("the tree runs, yet a dump was kept: %v", kept)
					}
					e.checkRuns(id, host, img)
					assertNothingBeside(t, ck, ".failed-dump.log")
				case leave:
					t.Fatalf("the tree ended under --leave-running: %s", msg)
				default:
					// CRIU was ending the tree: its dump is kept, and restores.
					if len(kept) != 1 || !strings.Contains(msg, kept[0]) {
						t.Fatalf("the tree ended; want its dump kept and named in the error, have %v: %s", kept, msg)
					}
					e.checkRestores(kept[0], img)
					assertNothingBeside(t, ck, ".unverified-")
				}
				e.mustRun("delete", "--force", id)
				waitGone(t, host)
				e.assertNothingLeft()
			})
		}
	}
}

func TestCRIUKilledDuringRestore(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	before := hashDir(t, img.dir)
	table := newOutcomes(t, "CRIU killed", "error")
	for _, tc := range []struct {
		name string
		args func(t *testing.T) (global, extra []string)
	}{
		{"at its pre-restore script", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "pre-restore")}
		}},
		{"while it forks the tree", func(t *testing.T) ([]string, []string) {
			return []string{"--criu", killCRIUOnLog(t, "restore", "Forking task with")}, nil
		}},
		{"while the tree is in its restorer", func(t *testing.T) ([]string, []string) {
			return []string{"--criu", killCRIUOnLog(t, "restore", "Switched to the restorer")}, nil
		}},
		{"at its post-restore script", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "post-restore")}
		}},
		{"at its pre-resume script", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "pre-resume")}
		}},
		{"at its post-resume script (the tree runs)", func(t *testing.T) ([]string, []string) {
			return nil, []string{"--action-script", killCRIUAt(t, "post-resume")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := cid("rs")
			global, extra := tc.args(t)
			args := append(global, "restore", "-d", "--image-path", img.dir, id)
			if extra != nil {
				args = append(append(args, "--"), extra...)
			}
			msg := e.mustFail([]string{"criu restore", "init"}, args...)
			table.add(tc.name, strings.TrimPrefix(msg, errPrefix))
			assertSameImages(t, before, img.dir)
			e.mustFail([]string{"does not exist"}, "state", id)
			counterStopped(t, img.counter)
			e.assertNothingLeft()
		})
	}
}

func TestTimeouts(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	table := newOutcomes(t, "command", "stalled where", "error")

	dump := func(t *testing.T, global []string, extra []string, leave bool, where string) {
		e := newEnv(t)
		id := cid("to")
		e.mustRun("restore", "-d", "--image-path", img.dir, id)
		host := e.checkTree(id, img, true)
		ck := filepath.Join(t.TempDir(), "ck")
		e.mustRun("checkpoint", "--leave-running", "--image-path", ck, id)
		old := hashDir(t, ck)
		args := append(append([]string{}, global...), "checkpoint", "--timeout", "1s", "--image-path", ck)
		if leave {
			args = append(args, "--leave-running")
		}
		args = append(args, id)
		if extra != nil {
			args = append(append(args, "--"), extra...)
		}
		msg := e.mustFail([]string{"timed out after 1s"}, args...)
		table.add(strings.Join(args[len(global):len(global)+3], " ")+map[bool]string{true: " --leave-running"}[leave], where, strings.TrimPrefix(msg, errPrefix))
		assertSameImages(t, old, ck)
		e.checkRuns(id, host, img)
		e.mustRun("delete", "--force", id)
		waitGone(t, host)
		assertNothingBeside(t, ck, ".failed-dump.log")
		e.assertNothingLeft()
	}
	for _, leave := range []bool{true, false} {
		t.Run(fmt.Sprintf("checkpoint at post-dump leave=%v", leave), func(t *testing.T) {
			dump(t, nil, []string{"--action-script", stallAt(t, "post-dump")}, leave, "post-dump script (tree frozen)")
		})
	}
	t.Run("checkpoint with a CRIU that ignores SIGALRM", func(t *testing.T) {
		// Stopping CRIU gently does not work here: it is killed.
		p := filepath.Join(t.TempDir(), "deaf-criu")
		script := fmt.Sprintf("#!/bin/sh\ntrap '' ALRM\nsleep 30\nexec %q \"$@\"\n", criuBin)
		if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		dump(t, []string{"--criu", p}, nil, true, "a CRIU deaf to SIGALRM (killed)")
	})

	restore := func(t *testing.T, where string, run func(e *env, id string) string) {
		e := newEnv(t)
		before := imageSums(hashDir(t, img.dir))
		id := cid("tr")
		msg := run(e, id)
		table.add("restore --timeout 1s", where, strings.TrimPrefix(msg, errPrefix))
		if !sameSums(before, imageSums(hashDir(t, img.dir))) {
			t.Errorf("the images changed")
		}
		counterStopped(t, img.counter)
		e.assertNothingLeft()
	}
	t.Run("restore at post-restore", func(t *testing.T) {
		restore(t, "post-restore script (tree restored, stopped)", func(e *env, id string) string {
			return e.mustFail([]string{"timed out after 1s"}, "restore", "-d", "--timeout", "1s", "--image-path", img.dir, id,
				"--", "--action-script", stallAt(t, "post-restore"))
		})
	})
	t.Run("criu-ns restore", func(t *testing.T) {
		restore(t, "criu-ns: post-restore script", func(e *env, id string) string {
			r := e.criuNs(runtimeBin, "criu", "restore", "--criu-ns-timeout", "1s", "-D", img.dir, "-d",
				"--action-script", stallAt(t, "post-restore"))
			if r.code == 0 || !strings.Contains(r.stderr, "timed out after 1s") {
				t.Errorf("want a failure saying it timed out: %s", r)
			}
			return strings.TrimSpace(r.stderr)
		})
	})
}

// TestFullFilesystem: a checkpoint into a filesystem that cannot hold it
// fails with ENOSPC and changes nothing.
func TestFullFilesystem(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	table := newOutcomes(t, "filesystem", "mode", "error")
	for _, tc := range []struct {
		name string
		fill bool // fill what is left, so that not even the staging dir fits
	}{{"room for one checkpoint", false}, {"completely full", true}} {
		for _, leave := range []bool{true, false} {
			mode := map[bool]string{true: "--leave-running", false: "ending"}[leave]
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				id := cid("full")
				e.mustRun("restore", "-d", "--image-path", img.dir, id)
				host := e.checkTree(id, img, true)
				// A tmpfs with room for the old checkpoint and half another.
				probe := filepath.Join(t.TempDir(), "probe")
				e.mustRun("checkpoint", "--leave-running", "--image-path", probe, id)
				size := int64(0)
				for name := range hashDir(t, probe) {
					if fi, err := os.Stat(filepath.Join(probe, name)); err == nil {
						size += fi.Size()
					}
				}
				mnt := filepath.Join(t.TempDir(), "small")
				if err := os.Mkdir(mnt, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", size*3/2)); err != nil {
					t.Fatalf("mounting a small tmpfs: %v", err)
				}
				t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) })
				ck := filepath.Join(mnt, "ck")
				e.mustRun("checkpoint", "--leave-running", "--image-path", ck, id)
				old := hashDir(t, ck)
				if tc.fill {
					f, err := os.Create(filepath.Join(mnt, "filler"))
					if err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 1<<20)
					for {
						if _, err := f.Write(buf); err != nil {
							break
						}
					}
					f.Close()
				}
				args := []string{"checkpoint", "--image-path", ck}
				if leave {
					args = append(args, "--leave-running")
				}
				msg := e.mustFail([]string{"no space", "criu dump failed"}, append(args, id)...)
				table.add(tc.name, mode, strings.TrimPrefix(msg, errPrefix))
				assertSameImages(t, old, ck)
				e.checkRuns(id, host, img)
				e.mustRun("delete", "--force", id)
				waitGone(t, host)
				os.Remove(filepath.Join(mnt, "filler"))
				assertNothingBeside(t, ck, ".failed-dump.log")
				e.assertNothingLeft()
			})
		}
	}
}
