package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// criuSourceDir is CRIU's source tree, which scripts/install-criu.sh
// keeps (checked by sha256) for these tests.
func criuSourceDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CRIU_SRC")
	if dir == "" {
		dir = "/var/cache/criu-ns-runtime/criu-build/criu-4.1.1"
	}
	if _, err := os.Stat(filepath.Join(dir, "test", "others", "criu-ns", "run.py")); err != nil {
		t.Fatalf("CRIU's criu-ns test suite is missing: %v (scripts/install-criu.sh keeps it: run `make deps`, or set CRIU_SRC)", err)
	}
	return dir
}

// python3 is Debian's, as scripts/install-test-deps.sh installs it.
func python3(t *testing.T) string {
	t.Helper()
	const py = "/usr/bin/python3"
	out, err := exec.Command(py, "-c", "import fcntl, pathlib, pty, shutil, subprocess, termios").CombinedOutput()
	if err != nil {
		t.Fatalf("%s cannot run CRIU's criu-ns tests: %v %s (run scripts/install-test-deps.sh)", py, err, out)
	}
	return py
}

// suiteDriver runs CRIU's run.py, unchanged and where it is, against
// another criu-ns and criu: run.py names both as module constants. It
// reports each test in a file (run.py's own output comes through a pty
// that may lose its last lines): run.py itself ignores how the children it
// forks for some tests exit, so the driver checks every status it waits
// for.
const suiteDriver = `
import os, sys
suite, criu_ns, criu, verdicts = sys.argv[1:5]
sys.path.insert(0, suite)
import run
run.CRIU_NS, run.CRIU_BIN = criu_ns, criu
failures = []
real_waitpid = os.waitpid
def waitpid(pid, options):
    got, status = real_waitpid(pid, options)
    if got == pid and status != 0:
        failures.append(status)
    return got, status
def reported(name, test):
    def run_test(*args, **kwargs):
        before = len(failures)
        test(*args, **kwargs)
        verdict = "PASS" if len(failures) == before else "FAIL"
        line = "criu-ns suite: %s %s%r" % (verdict, name, kwargs)
        print(line, flush=True)
        with open(verdicts, "a") as f:
            f.write(line + "\n")
    return run_test
for name in ("test_dump_and_restore_with_shell_job",
             "test_dump_and_restore_without_shell_job",
             "test_dump_and_restore_in_pidns"):
    setattr(run, name, reported(name, getattr(run, name)))
def main():
    os.waitpid = waitpid
    run.main()
    sys.exit(1 if failures else 0)
run.run_task_with_own_pty(main)
`

// TestCRIUCriuNsSuite runs CRIU's own test suite for criu-ns
// (test/others/criu-ns/run.py of the CRIU source tree) against this
// runtime as criu-ns: all four of its tests must pass.
func TestCRIUCriuNsSuite(t *testing.T) {
	suite := filepath.Join(criuSourceDir(t), "test", "others", "criu-ns")
	py := python3(t)
	e := newEnv(t)
	link := criuNsLink(t)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	verdictFile := filepath.Join(t.TempDir(), "verdicts")
	cmd := exec.CommandContext(ctx, py, "-c", suiteDriver, suite, link, criuBin, verdictFile)
	cmd.Dir = e.dir // run.py works in its current directory
	cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+e.root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = pipeDelay
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("CRIU's criu-ns suite did not finish in time; output:\n%s", tail(out.String(), 60))
	}
	b, _ := os.ReadFile(verdictFile)
	verdicts := regexp.MustCompile(`criu-ns suite: (PASS|FAIL) .*`).FindAllString(string(b), -1)
	passed := 0
	for _, v := range verdicts {
		t.Log(v)
		if strings.Contains(v, ": PASS ") {
			passed++
		}
	}
	if err != nil || passed != 4 || len(verdicts) != 4 {
		t.Fatalf("CRIU's criu-ns suite: %d of 4 passed (%v); output:\n%s", passed, err, tail(out.String(), 80))
	}
	if !strings.Contains(out.String(), "Test criu-ns dump and restore in namespaces") {
		t.Fatalf("the suite skipped its pid namespace test; output:\n%s", tail(out.String(), 40))
	}
	t.Logf("CRIU's criu-ns suite: %d of 4 passed", passed)

	// Its trees end once the suite removed their "running" file, and
	// criu-ns removes their containers then.
	eventually(t, settleTime, "the suite's trees and their containers to go", func() error {
		if ids, err := e.listIDs(); err != nil || len(ids) > 0 {
			return fmt.Errorf("containers %q (%v)", ids, err)
		}
		return nil
	})
	e.assertNothingLeft()
}
