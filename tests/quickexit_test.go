package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitRootScript writes a CRIU action script that, after a restore has
// resumed the tree, returns only once the restored root has ended: the
// restoring command then looks for a root that is gone already, as it does
// on a slow machine when the tree ends as soon as it runs (CRIU's own
// criu-ns tests restore such trees).
func waitRootScript(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wait-root")
	script := `#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = post-resume ] || exit 0
pid=$CRTOOLS_INIT_PID
while [ -e /proc/$pid/stat ] && [ "$(cut -d' ' -f3 /proc/$pid/stat)" != Z ]; do sleep 0.05; done
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRestoreOfTreeThatEndsAtOnce: a tree that has ended by the time the
// restoring command looks for it is still restored: the command succeeds
// (a foreground one with the tree's status), and nothing is left.
func TestRestoreOfTreeThatEndsAtOnce(t *testing.T) {
	const lifetime = 2 * time.Second
	for _, tc := range []struct {
		name           string
		criuNs, detach bool
	}{
		{"runtime/foreground", false, false},
		{"runtime/detached", false, true},
		{"criu-ns/foreground", true, false},
		{"criu-ns/detached", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			dir := t.TempDir()
			script := waitRootScript(t)
			started := time.Now()
			// It exits 5 once its lifetime has passed: restored after
			// that, it ends as soon as its timer wait returns.
			w := startWorkload(t, dir, "-exit-after", lifetime.String())
			img := filepath.Join(dir, "img")
			criuDump(t, w.pid(), img)
			w.waitExit(t)
			time.Sleep(time.Until(started.Add(lifetime)))

			id := cid("quick")
			var r result
			switch {
			case tc.criuNs && tc.detach:
				r = e.criuNs(runtimeBin, "criu", "restore", "--action-script", script, "-D", img, "-d", "--pidfile", "p")
			case tc.criuNs:
				r = e.criuNs(runtimeBin, "criu", "restore", "--action-script", script, "-D", img)
			case tc.detach:
				r = e.run("restore", "-d", "--image-path", img, "--", "--action-script", script, id)
			default:
				r = e.run("restore", "--image-path", img, "--", "--action-script", script, id)
			}
			want := 0 // criu-ns exits as CRIU does; -d once the tree ran
			if !tc.criuNs && !tc.detach {
				want = 5 // the tree's own status
			}
			if r.code != want {
				t.Fatalf("restore of a tree that ended at once: exit %d, want %d: %s\nrestore.log:\n%s", r.code, want, r, restoreLog(img))
			}
			if want == 0 && strings.TrimSpace(r.stderr) != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			if tc.criuNs {
				eventually(t, settleTime, "criu-ns's container to go", func() error {
					if ids, err := e.listIDs(); err != nil || len(ids) > 0 {
						return fmt.Errorf("containers %q (%v)", ids, err)
					}
					return nil
				})
			} else if tc.detach {
				e.waitStatus(id, "stopped")
				e.mustRun("delete", id)
			}
			e.assertNothingLeft()
		})
	}
}

// TestShellJobThatEndsAtOnce: the same for a shell job, whose root the
// job host reaps.
func TestShellJobThatEndsAtOnce(t *testing.T) {
	const lifetime = 2 * time.Second
	e := newEnv(t)
	script := waitRootScript(t)
	sh1 := startShell(t, e)
	started := time.Now()
	sh1.typeIn(shellQuote(workloadBin) + " -echo -exit-after " + lifetime.String() + "\n")
	job := sh1.jobPid()
	img := filepath.Join(t.TempDir(), "img")
	criuDump(t, job, img, "--shell-job")
	waitGone(t, job)
	time.Sleep(time.Until(started.Add(lifetime)))

	sh2 := startShell(t, e)
	sh2.typeIn(strings.Join([]string{shellQuote(runtimeBin), "--root", shellQuote(e.root), "restore", "--shell-job",
		"--image-path", shellQuote(img), cid("sjquick"), "--", "--action-script", shellQuote(script)}, " ") + "; echo restore-exit=$?\n")
	if got := sh2.expect(`restore-exit=\d+`); got != "restore-exit=5" {
		t.Errorf("restore of a shell job that ended at once: %s, want the job's status 5; terminal:\n%s\nrestore.log:\n%s",
			got, sh2.out, restoreLog(img))
	}
	sh2.works()
	e.assertNothingLeft()
}
