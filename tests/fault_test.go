package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"
)

// The fault-injection suite: the runtime, CRIU, or the disk fails at
// named points, and afterwards nothing may be lost. The runtime is the
// faultinject build (make build-faultinject), which SIGKILLs itself at the
// point $CRIU_NS_CRASHPOINT names (internal/crashpoint); CRIU is killed by
// its own action scripts or by a wrapper that watches its log. After each
// case: the image dir holds exactly the old or exactly the new checkpoint
// (the new one as CRIU wrote it: a --criu wrapper records the sums of what
// a successful dump wrote), a tree that should run runs with its memory
// intact and can be checkpointed, the next command said what it finished
// or undid, and once the containers are deleted nothing is left.

const crashpointEnv = "CRIU_NS_CRASHPOINT"

// outcomes collects one row per case, printed at the end of each test as
// a table to quote.
type outcomes struct {
	mu   sync.Mutex
	rows [][]string
}

func newOutcomes(t *testing.T, header ...string) *outcomes {
	o := &outcomes{rows: [][]string{header}}
	t.Cleanup(func() { o.log(t) })
	return o
}

func (o *outcomes) add(cols ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.rows = append(o.rows, cols)
}

func (o *outcomes) log(t *testing.T) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 4, 1, 2, ' ', 0)
	for i, r := range o.rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
		if i == 0 {
			dashes := make([]string, len(r))
			for j, c := range r {
				dashes[j] = strings.Repeat("-", len(c))
			}
			fmt.Fprintln(w, strings.Join(dashes, "\t"))
		}
	}
	w.Flush()
	t.Logf("%d cases:\n%s", len(o.rows)-1, b.String())
}

// runFaulted runs the fault-injection runtime, which kills itself at
// point, and fails the test unless it died there.
func (e *env) runFaulted(point string, extraEnv []string, args ...string) result {
	e.t.Helper()
	r := runCmd(e.t, func(ctx context.Context, a ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, faultBin, append([]string{"--root", e.root}, a...)...)
		cmd.Dir = e.dir
		cmd.Env = append(append(os.Environ(), crashpointEnv+"="+point), extraEnv...)
		return cmd
	}, args...)
	var exit *exec.ExitError
	if !errors.As(r.err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		e.t.Fatalf("the runtime did not die at %s: %s", point, r)
	}
	return r
}

// notes are the "note:" lines a command printed: what it finished or
// undid of a command that died.
func notes(r result) string {
	var out []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if _, n, ok := strings.Cut(l, ": note: "); ok {
			out = append(out, n)
		}
	}
	return strings.Join(out, " | ")
}

// gist shortens what a command said for the table: its first clause and
// CRIU's status, without paths.
func gist(said string) string {
	first, _, _ := strings.Cut(said, " | ")
	head, _, _ := strings.Cut(first, " of ")
	if i := strings.Index(first, "("); i >= 0 {
		if j := strings.Index(first[i:], ")"); j >= 0 {
			head += " " + first[i:i+j+1]
		}
	}
	return head
}

// settle runs `state` until no command holds the container (a dump a
// killed runtime left may still run), and returns the last state and the
// notes every run printed.
func (e *env) settle(id string) (state, string) {
	e.t.Helper()
	var st state
	var said []string
	eventually(e.t, settleTime, "container "+id+" to settle", func() error {
		r := e.run("state", id)
		if n := notes(r); n != "" {
			said = append(said, n)
		}
		if r.code != 0 {
			return fmt.Errorf("%s", r)
		}
		st = state{}
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			return err
		}
		if st.Status == "creating" || st.Annotations["io.criu-ns-runtime.checkpoint"] != "" {
			return fmt.Errorf("still busy: %+v", st)
		}
		return nil
	})
	return st, strings.Join(said, " | ")
}

// recorder is a --criu wrapper that runs CRIU and, when a dump succeeds,
// writes the sums of what it wrote to $CRIU_NS_TEST_MANIFEST: what
// "exactly the new checkpoint" is. It runs inside the container's
// namespaces, where the images are fd 3.
func recorder(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "criu-recorder")
	script := `#!/bin/sh
"` + criuBin + `" "$@"
rc=$?
if [ $rc -eq 0 ] && [ "$1" = dump ] && [ -n "$CRIU_NS_TEST_MANIFEST" ]; then
	(cd /proc/self/fd/3 && sha256sum -- *) >"$CRIU_NS_TEST_MANIFEST.tmp" &&
		mv "$CRIU_NS_TEST_MANIFEST.tmp" "$CRIU_NS_TEST_MANIFEST"
fi
exit $rc
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// imageSums drops logs and stats from a hashDir result: what makes a
// checkpoint.
func imageSums(all map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range all {
		if !isLog(filepath.Base(k)) {
			out[k] = v
		}
	}
	return out
}

// readManifest reads what the recorder wrote; nil if nothing.
func readManifest(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sum, name, ok := strings.Cut(sc.Text(), "  "); ok {
			sums[name] = sum
		}
	}
	return imageSums(sums)
}

func sameSums(a, b map[string]string) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// classify says what dir holds: "old", "new" (what the recorder saw
// CRIU write), or a failure of the test.
func classify(t *testing.T, dir string, old map[string]string, manifest string) string {
	t.Helper()
	now := imageSums(hashDir(t, dir))
	switch {
	case sameSums(now, old):
		return "old"
	case sameSums(now, readManifest(t, manifest)):
		return "new"
	}
	var names []string
	for k := range now {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Fatalf("%s holds neither the old nor the new checkpoint (a mix?): %v", dir, names)
	return ""
}

// assertNothingBeside checks that beside the image dir there is no
// staging directory and nothing but what want names.
func assertNothingBeside(t *testing.T, imageDir string, want ...string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Dir(imageDir))
	for _, e := range ents {
		name := e.Name()
		ok := name == filepath.Base(imageDir)
		for _, w := range want {
			ok = ok || strings.HasPrefix(name, filepath.Base(imageDir)+w)
		}
		if !ok {
			t.Errorf("%s is left beside the image dir %s", name, imageDir)
		}
	}
}

// checkRuns checks the tree with root host is the container's, runs with
// its memory intact, and can be checkpointed again.
func (e *env) checkRuns(id string, host int, img images) {
	e.t.Helper()
	if h, _ := e.rootPids(id); h != host {
		e.t.Fatalf("root host pid changed from %d to %d", host, h)
	}
	waitCounterAdvances(e.t, img.counter)
	checkMemory(e.t, host, img.status)
	again := filepath.Join(e.t.TempDir(), "again")
	e.mustRun("checkpoint", "--leave-running", "--image-path", again, id)
	checkMemory(e.t, host, img.status)
}

// checkRestores restores dir into a new container and checks its tree.
func (e *env) checkRestores(dir string, img images) {
	e.t.Helper()
	id := cid("verify")
	e.mustRun("restore", "-d", "--image-path", dir, id)
	host := e.checkTree(id, img, true)
	checkMemory(e.t, host, img.status)
	e.mustRun("delete", "--force", id)
	waitGone(e.t, host)
}

func TestFaultCheckpoint(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	rec := recorder(t)
	fail := failScript(t, "post-dump")
	table := newOutcomes(t, "crash point", "mode", "next command", "image dir", "tree", "what the next command said")
	for _, tc := range []struct {
		point string
		// images: what the image dir must hold once the next command has
		// run; "new" means the tree ended too without --leave-running.
		images  string
		failing bool // CRIU fails (a post-dump script), so the abort path runs
	}{
		{"checkpoint.after-journal", "old", false},
		{"checkpoint.after-staging", "old", false},
		{"checkpoint.after-criu-start", "new", false},
		{"checkpoint.after-criu-exit", "new", false},
		{"checkpoint.after-carry-over", "new", false},
		{"checkpoint.after-exchange", "new", false},
		{"checkpoint.after-commit", "new", false},
		{"checkpoint.after-tree-exit", "new", false},
		{"checkpoint.abort.after-log", "old", true},
		{"checkpoint.abort.after-remove", "old", true},
	} {
		for _, leave := range []bool{true, false} {
			mode := "ending"
			if leave {
				mode = "--leave-running"
			}
			if leave && tc.point == "checkpoint.after-tree-exit" {
				continue // a dump that leaves the tree running never waits for it
			}
			t.Run(tc.point+"/"+mode, func(t *testing.T) {
				e := newEnv(t)
				id := cid("ck")
				e.mustRun("restore", "-d", "--image-path", img.dir, id)
				host := e.checkTree(id, img, true)
				ck := filepath.Join(t.TempDir(), "ck")
				e.mustRun("checkpoint", "--leave-running", "--image-path", ck, id)
				old := imageSums(hashDir(t, ck))

				manifest := filepath.Join(t.TempDir(), "manifest")
				args := []string{"--criu", rec, "checkpoint", "--image-path", ck}
				if leave {
					args = append(args, "--leave-running")
				}
				args = append(args, id)
				if tc.failing {
					args = append(args, "--", "--action-script", fail)
				}
				e.runFaulted(tc.point, []string{"CRIU_NS_TEST_MANIFEST=" + manifest}, args...)

				st, said := e.settle(id)
				got := classify(t, ck, old, manifest)
				tree := "runs"
				if !isWorkload(host) {
					tree = "ended"
				}
				table.add(tc.point, mode, "state", got, tree, gist(said))
				if got != tc.images {
					t.Errorf("the image dir holds the %s checkpoint, want the %s one", got, tc.images)
				}
				wantRuns := leave || tc.images == "old"
				switch {
				case wantRuns && tree != "runs":
					t.Fatalf("the tree ended; it should run (state %+v)", st)
				case !wantRuns && tree == "runs":
					t.Fatalf("the tree runs; the dump should have ended it (state %+v)", st)
				}
				// The next command says what it did with what was left.
				switch {
				case tc.point == "checkpoint.after-tree-exit":
				case got == "new" && !strings.Contains(said, "finished the checkpoint"):
					t.Errorf("the next command did not say it finished the checkpoint: %q", said)
				case got == "old" && !strings.Contains(said, "rolled back"):
					t.Errorf("the next command did not say it rolled the checkpoint back: %q", said)
				}
				if wantRuns {
					if st.Status != "running" {
						t.Errorf("state says %q, the tree runs", st.Status)
					}
					e.checkRuns(id, host, img)
				} else {
					waitGone(t, host)
					e.waitStatus(id, "stopped")
				}
				if got == "new" {
					e.checkRestores(ck, img)
				}
				e.mustRun("delete", "--force", id)
				waitGone(t, host)
				if tc.failing {
					assertNothingBeside(t, ck, ".failed-dump.log")
				} else {
					assertNothingBeside(t, ck)
				}
				e.assertNothingLeft()
			})
		}
	}
}

// A command that finishes a killed command's checkpoint can be killed in
// turn; the command after it finishes the job.
func TestFaultRecoveryKilled(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	rec := recorder(t)
	table := newOutcomes(t, "first crash", "second crash (in the next command)", "image dir", "tree", "what the third command said")
	for _, second := range []string{"checkpoint.after-carry-over", "checkpoint.after-exchange", "checkpoint.after-commit"} {
		t.Run(second, func(t *testing.T) {
			e := newEnv(t)
			id := cid("rr")
			e.mustRun("restore", "-d", "--image-path", img.dir, id)
			host := e.checkTree(id, img, true)
			ck := filepath.Join(t.TempDir(), "ck")
			e.mustRun("checkpoint", "--leave-running", "--image-path", ck, id)
			old := imageSums(hashDir(t, ck))
			manifest := filepath.Join(t.TempDir(), "manifest")
			env := []string{"CRIU_NS_TEST_MANIFEST=" + manifest}
			e.runFaulted("checkpoint.after-criu-start", env, "--criu", rec, "checkpoint", "--leave-running", "--image-path", ck, id)
			// The recovering state waits for nobody: poll until CRIU is
			// done and the state command gets to the commit, and dies.
			eventually(t, settleTime, "a state command to die recovering", func() error {
				r := runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
					cmd := exec.CommandContext(ctx, faultBin, append([]string{"--root", e.root}, a...)...)
					cmd.Env = append(os.Environ(), crashpointEnv+"="+second)
					return cmd
				}, "state", id)
				if r.code == -1 {
					return nil
				}
				return fmt.Errorf("state did not die: %s", r)
			})
			_, said := e.settle(id)
			got := classify(t, ck, old, manifest)
			table.add("checkpoint.after-criu-start", second, got, map[bool]string{true: "runs", false: "ended"}[isWorkload(host)], gist(said))
			if got != "new" {
				t.Errorf("the image dir holds the %s checkpoint, want the new one", got)
			}
			e.checkRuns(id, host, img)
			e.checkRestores(ck, img)
			e.mustRun("delete", "--force", id)
			waitGone(t, host)
			assertNothingBeside(t, ck)
			e.assertNothingLeft()
		})
	}
}

func TestFaultRestore(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	table := newOutcomes(t, "crash point", "state after", "reason", "then")
	for _, tc := range []struct {
		point   string
		running bool // the tree runs once the next command looked
		failing bool // CRIU fails (a file of the tree is missing): the rollback runs
	}{
		{"restore.after-meta", false, false},
		{"restore.after-stage", false, false},
		{"restore.after-create", false, false},
		// libcontainer's init waits at its exec fifo, for good.
		{"restore.after-init-start", false, false},
		// our init runs, but was never handed the container's lock.
		{"restore.after-exec", false, false},
		{"restore.after-start", true, false},
		{"restore.after-report", true, false},
		{"restore.after-record", true, false},
		{"restore.rollback", false, true},
		{"restore.rollback.after-kill", false, true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			e := newEnv(t)
			id := cid("rs")
			if tc.failing {
				moved := img.counter + ".moved"
				if err := os.Rename(img.counter, moved); err != nil {
					t.Fatal(err)
				}
				e.runFaulted(tc.point, nil, "restore", "-d", "--image-path", img.dir, id)
				if err := os.Rename(moved, img.counter); err != nil {
					t.Fatal(err)
				}
			} else {
				e.runFaulted(tc.point, nil, "restore", "-d", "--image-path", img.dir, id)
			}
			if m := mountsBelow(e.root); len(m) > 0 {
				t.Errorf("the killed restore left mounts on the host: %q", m)
			}
			st, said := e.settle(id)
			reason := st.Annotations["io.criu-ns-runtime.reason"]
			then := ""
			if tc.running {
				if st.Status != "running" {
					t.Fatalf("state %+v: want running, the tree was restored", st)
				}
				if tc.point != "restore.after-record" && !strings.Contains(said, "recorded its root") {
					t.Errorf("the next command did not say it recorded the tree: %q", said)
				}
				host := e.checkTree(id, img, true)
				e.checkRuns(id, host, img)
				e.mustFail([]string{"running"}, "delete", id)
				e.mustRun("delete", "--force", id)
				waitGone(t, host)
				then = "checkpointed; delete refused; delete --force"
			} else {
				if st.Status != "stopped" || reason == "" || st.Pid != 0 {
					t.Fatalf("state %+v: want stopped, pid 0, with a reason", st)
				}
				if st.Created == "" || strings.HasPrefix(st.Created, "0001") {
					t.Errorf("state says it was created at %q", st.Created)
				}
				if ids, _ := e.listIDs(); len(ids) != 1 || ids[0] != id {
					t.Errorf("list -q says %q", ids)
				}
				e.mustFail([]string{"not running"}, "checkpoint", "--image-path", filepath.Join(t.TempDir(), "x"), id)
				e.mustRun("delete", id)
				then = "checkpoint refused; delete"
			}
			table.add(tc.point, st.Status, reason, then)
			counterStopped(t, img.counter)
			e.assertNothingLeft()
			// The id is free again.
			e.mustRun("restore", "-d", "--image-path", img.dir, id)
			host := e.checkTree(id, img, true)
			e.mustRun("delete", "--force", id)
			waitGone(t, host)
			e.assertNothingLeft()
		})
	}
}

// A restore killed once its init has the container restores a tree that
// runs on, whatever the tree does with signals. The init's report then
// goes to a runtime that is gone; were that to raise SIGPIPE, the init
// would forward it to the tree. The workload (Go) ignores a SIGPIPE it
// is sent; a shell dies of it.
func TestFaultRestoreShellTree(t *testing.T) {
	dir := t.TempDir()
	ticks := filepath.Join(dir, "ticks")
	script := filepath.Join(dir, "loop.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nwhile :; do echo x >>"+ticks+"; sleep 0.05; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command(script)
	sh.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { sh.Wait(); close(done) }()
	t.Cleanup(func() { sh.Process.Kill(); <-done })
	waitGrows(t, ticks)
	img := filepath.Join(dir, "img")
	criuDump(t, sh.Process.Pid, img)
	select {
	case <-done:
	case <-time.After(settleTime):
		t.Fatalf("the dumped shell %d still runs", sh.Process.Pid)
	}

	e := newEnv(t)
	id := cid("sh")
	e.runFaulted("restore.after-start", nil, "restore", "-d", "--image-path", img, id)
	st, said := e.settle(id)
	if st.Status != "running" {
		t.Fatalf("state %+v (the next command said %q): want running, CRIU restored the tree", st, said)
	}
	root, _ := strconv.Atoi(st.Annotations[annRootPid])
	if root <= 0 || procState(root) == "" || procState(root) == "Z" {
		t.Fatalf("the restored shell (root pid %q) is gone", st.Annotations[annRootPid])
	}
	waitGrows(t, ticks)
	e.mustRun("delete", "--force", id)
	e.assertNothingLeft()
}

// waitGrows waits until file has grown three times.
func waitGrows(t *testing.T, file string) {
	t.Helper()
	size := func() int64 {
		fi, err := os.Stat(file)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	start := size()
	eventually(t, settleTime, file+" to grow", func() error {
		if n := size(); n < start+3*2 {
			return fmt.Errorf("%d bytes, %d at first", n, start)
		}
		return nil
	})
}

func TestFaultDelete(t *testing.T) {
	img := makeImages(t, "-mem", "1", "-child")
	table := newOutcomes(t, "crash point", "state after", "then")
	for _, point := range []string{"delete.after-kill", "delete.after-destroy", "delete.after-cgroups"} {
		t.Run(point, func(t *testing.T) {
			e := newEnv(t)
			id := cid("del")
			e.mustRun("restore", "-d", "--image-path", img.dir, id)
			host := e.checkTree(id, img, true)
			e.runFaulted(point, nil, "delete", "--force", id)
			waitGone(t, host)
			st, _ := e.settle(id)
			if st.Status != "stopped" {
				t.Errorf("after a delete killed at %s the container is %q, want stopped", point, st.Status)
			}
			e.mustRun("delete", id)
			table.add(point, st.Status, "delete")
			e.assertNothingLeft()
		})
	}
}

// criu-ns mode's containers have a janitor, which must remove them even
// when the restore that made them was killed.
func TestFaultCriuNsRestore(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	table := newOutcomes(t, "crash point", "tree", "then")
	for _, tc := range []struct {
		point   string
		running bool
	}{
		{"restore.after-meta", false},
		{"restore.after-init-start", false},
		{"restore.after-exec", false},
		{"restore.after-start", true},
		{"restore.after-report", true},
		{"restore.after-record", true},
	} {
		t.Run(tc.point, func(t *testing.T) {
			e := newEnv(t)
			pidFile := filepath.Join(t.TempDir(), "root.pid")
			r := runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
				cmd := exec.CommandContext(ctx, faultBin, a...)
				cmd.Env = append(os.Environ(), crashpointEnv+"="+tc.point, "CRIU_NS_RUNTIME_ROOT="+e.root)
				return cmd
			}, "criu", "restore", "-D", img.dir, "-d", "--pidfile", pidFile)
			if r.code != -1 {
				t.Fatalf("the runtime did not die at %s: %s", tc.point, r)
			}
			then := "the janitor removed it"
			if tc.running {
				// The tree runs on; once it ends, its container goes.
				var root int
				eventually(t, settleTime, "the restored tree to run", func() error {
					for _, p := range allPids() {
						if isWorkload(p) && innermostPid(p) == img.origPid {
							root = p
							return nil
						}
					}
					return fmt.Errorf("no restored root")
				})
				checkMemory(t, root, img.status)
				if ids, _ := e.listIDs(); len(ids) != 1 {
					t.Fatalf("list -q says %q, want the one container", ids)
				}
				syscall.Kill(root, syscall.SIGTERM)
				waitGone(t, root)
				then = "tree ended by SIGTERM; the janitor removed it"
			}
			eventually(t, settleTime, "the janitor to remove the container", func() error {
				if ids, _ := e.listIDs(); len(ids) > 0 {
					return fmt.Errorf("containers %q", ids)
				}
				return nil
			})
			table.add(tc.point, map[bool]string{true: "ran", false: "never ran"}[tc.running], then)
			e.assertNothingLeft()
		})
	}
}

// A checkpoint retried while the CRIU of a killed one still runs waits for
// it (the CRIU's waiting parent holds the container's lock), finishes the
// killed one's transaction, and then dumps: it never runs a second CRIU
// on a tree the first one holds.
func TestFaultRetryWhileCRIURuns(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	rec := recorder(t)
	id := cid("retry")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, true)
	ck := filepath.Join(t.TempDir(), "ck")
	manifest := filepath.Join(t.TempDir(), "manifest")
	// A post-dump script that takes a second: the killed command's CRIU
	// is still at work when the retry starts.
	slow := filepath.Join(t.TempDir(), "slow.sh")
	if err := os.WriteFile(slow, []byte("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = post-dump ] && sleep 1\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e.runFaulted("checkpoint.after-criu-start", []string{"CRIU_NS_TEST_MANIFEST=" + manifest},
		"--criu", rec, "checkpoint", "--leave-running", "--image-path", ck, id, "--", "--action-script", slow)
	again := filepath.Join(t.TempDir(), "again")
	r := e.mustRun("checkpoint", "--leave-running", "--image-path", again, id)
	if !strings.Contains(notes(r), "finished the checkpoint") {
		t.Errorf("the retry did not say it finished the killed checkpoint: %s", r)
	}
	if got := classify(t, ck, nil, manifest); got != "new" {
		t.Errorf("the killed checkpoint's image dir holds the %s images", got)
	}
	e.checkRuns(id, host, img)
	e.checkRestores(again, img)
	e.mustRun("delete", "--force", id)
	waitGone(t, host)
	assertNothingBeside(t, ck)
	e.assertNothingLeft()
}
