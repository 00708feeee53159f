package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const validationTimeout = 90 * time.Second

// tapResult is the parsed outcome of one validation executable.
type tapResult struct {
	planned  int  // sum of the "1..N" plans (some print two streams), -1 when none
	diagErr  bool // a YAML diagnostic with "error" outside any test point
	ok       int  // "ok" points, skips included
	skipped  int  // "ok ... # SKIP" points
	notOK    []string
	exitErr  error
	timedOut bool
	stderr   string
	duration time.Duration
}

// passed: the executable exited 0, printed a non-empty plan, and every
// planned point is "ok" (skips count as ok).
func (r tapResult) passed() bool {
	// Lifecycle validations (hooks, prestart, ...) print "1..0" and report
	// a failure only as an "error" diagnostic.
	if r.planned == 0 {
		return r.exitErr == nil && !r.timedOut && !r.diagErr
	}
	return r.exitErr == nil && !r.timedOut && r.planned > 0 && len(r.notOK) == 0 && r.ok == r.planned
}

// allSkipped: every point was a skip (nothing was actually checked).
func (r tapResult) allSkipped() bool { return r.passed() && r.ok > 0 && r.skipped == r.ok }

var (
	tapPlanRe = regexp.MustCompile(`^1\.\.(\d+)`)
	tapOKRe   = regexp.MustCompile(`^ok\b`)
	tapNotRe  = regexp.MustCompile(`^not ok\b`)
	tapSkipRe = regexp.MustCompile(`(?i)#\s*skip`)
)

func parseTAP(out string) tapResult {
	r := tapResult{planned: -1}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	points := 0
	for sc.Scan() {
		line := sc.Text()
		if points == 0 && strings.HasPrefix(strings.TrimSpace(line), `"error":`) {
			r.diagErr = true
		}
		switch {
		case tapPlanRe.MatchString(line):
			n, _ := strconv.Atoi(tapPlanRe.FindStringSubmatch(line)[1])
			if r.planned < 0 {
				r.planned = 0
			}
			r.planned += n
		case tapNotRe.MatchString(line):
			points++
			r.notOK = append(r.notOK, line)
		case tapOKRe.MatchString(line):
			points++
			r.ok++
			if tapSkipRe.MatchString(line) {
				r.skipped++
			}
		}
	}
	return r
}

// baselineEntry is one line of testdata/runtime-tools-baseline.txt.
type baselineEntry struct {
	pass   bool
	minOK  int // for failing ones: "ok" points runc got, which we must reach too
	reason string
}

// readBaseline parses lines "pass NAME" and "fail NAME [min-ok=N] # reason".
func readBaseline(t *testing.T) map[string]baselineEntry {
	t.Helper()
	path := filepath.Join("testdata", "runtime-tools-baseline.txt")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading baseline: %v", err)
	}
	base := map[string]baselineEntry{}
	for i, line := range strings.Split(string(data), "\n") {
		body, comment, _ := strings.Cut(line, "#")
		f := strings.Fields(body)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || (f[0] != "pass" && f[0] != "fail") {
			t.Fatalf("%s:%d: malformed line %q", path, i+1, line)
		}
		e := baselineEntry{pass: f[0] == "pass", reason: strings.TrimSpace(comment)}
		for _, opt := range f[2:] {
			if v, ok := strings.CutPrefix(opt, "min-ok="); ok {
				e.minOK, err = strconv.Atoi(v)
				if err != nil {
					t.Fatalf("%s:%d: bad %q", path, i+1, opt)
				}
			}
		}
		base[f[1]] = e
	}
	return base
}

func runValidation(dir, exe, runtime, tmp string) tapResult {
	ctx, cancel := context.WithTimeout(context.Background(), validationTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Dir = dir // the executables read ./rootfs-amd64.tar.gz and ./runtimetest
	// Bundles go to TMPDIR (ioutil.TempDir) and are not always removed.
	cmd.Env = append(os.Environ(), "RUNTIME="+runtime, "TMPDIR="+tmp)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := parseTAP(stdout.String())
	r.exitErr = err
	r.timedOut = ctx.Err() == context.DeadlineExceeded
	r.stderr = stderr.String()
	r.duration = time.Since(start)
	return r
}

// TestRuntimeToolsValidation runs every OCI runtime-tools validation
// executable against the runtime. Every validation that Debian's runc 1.1.5
// passes on this kind of machine (testdata/runtime-tools-baseline.txt) must
// pass; for the ones runc fails, at least as many points as runc got must be ok.
func TestRuntimeToolsValidation(t *testing.T) {
	requireE2E(t)
	dir := runtimeToolsDir()
	base := readBaseline(t)
	// Bundles land here; some validations leak mounts (proc, dev, sys)
	// into it, which makeTempDir's cleanup unmounts. 0755: containers with
	// user namespaces must reach their bundle.
	tmp := makeTempDir(t, "e2e-runtime-tools-")
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	exes, _ := filepath.Glob(filepath.Join(dir, "validation", "*.t"))
	if len(exes) == 0 {
		t.Fatalf("no validation executables in %s/validation (run scripts/install-e2e-deps.sh)", dir)
	}
	seen := map[string]bool{}
	var passed, failed, skipped []string
	start := time.Now()
	for _, exe := range exes {
		name := strings.TrimSuffix(filepath.Base(exe), ".t")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			r := runValidation(dir, exe, runtimePath(), tmp)
			// One retry against transient failures (seen once with runc:
			// an executable printing nothing); a retry is logged loudly.
			if e, known := base[name]; known && ((e.pass && !r.passed()) || r.ok < e.minOK) {
				t.Logf("FLAKY? %s fell short of runc's result (plan %d, ok %d, not ok %d, exit %v); retrying once",
					name, r.planned, r.ok, len(r.notOK), r.exitErr)
				r = runValidation(dir, exe, runtimePath(), tmp)
			}
			status := "FAIL"
			switch {
			case r.allSkipped():
				status = "SKIP"
				skipped = append(skipped, name)
			case r.passed():
				status = "PASS"
				passed = append(passed, name)
			default:
				failed = append(failed, name)
			}
			t.Logf("%s: %s (plan %d, ok %d, skipped %d, not ok %d, %.1fs)",
				name, status, r.planned, r.ok, r.skipped, len(r.notOK), r.duration.Seconds())
			details := func() string {
				var b strings.Builder
				if r.timedOut {
					fmt.Fprintf(&b, "timed out after %v\n", validationTimeout)
				}
				if r.exitErr != nil {
					fmt.Fprintf(&b, "exit: %v\n", r.exitErr)
				}
				for _, l := range r.notOK {
					fmt.Fprintf(&b, "%s\n", l)
				}
				if s := strings.TrimSpace(r.stderr); s != "" {
					fmt.Fprintf(&b, "stderr (tail):\n%s\n", tail(s, 15))
				}
				return b.String()
			}
			e, known := base[name]
			switch {
			case !known:
				t.Errorf("%s is not in testdata/runtime-tools-baseline.txt: record runc's result for it", name)
			case e.pass && status == "FAIL":
				t.Errorf("%s passes with runc but fails here:\n%s", name, details())
			case !e.pass:
				t.Logf("runc fails this one too (%s)\n%s", e.reason, details())
				if r.ok < e.minOK {
					t.Errorf("%s: %d ok points, runc gets %d", name, r.ok, e.minOK)
				}
			}
		})
	}
	for name, e := range base {
		if !seen[name] && e.pass {
			t.Errorf("baseline validation %s has no executable in %s/validation", name, dir)
		}
	}
	// Not "N passed, N failed": CI reads that shape as the run's closing line.
	t.Logf("runtime-tools tally for %s: pass=%d fail=%d skip=%d (of %d) in %.0fs; failing: %s",
		runtimePath(), len(passed), len(failed), len(skipped), len(exes), time.Since(start).Seconds(),
		strings.Join(failed, " "))
}
