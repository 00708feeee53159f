// Package tests holds the integration tests of criu-ns-runtime: they drive
// the real binary and a real CRIU against a small static workload
// (tests/workload). They need root and CRIU >= 4.0; when either is missing
// the suite fails loudly instead of passing without testing anything.
//
//	CRIU_NS_RUNTIME=/path/to/criu-ns-runtime  use this binary instead of
//	                                          building ./cmd/criu-ns-runtime
//	CRIU_NS_WORKLOAD=/path/to/workload        copy this static build of
//	                                          ./tests/workload instead of
//	                                          building it (tests/vm: no Go
//	                                          builds in the guest)
//	CRIU_NS_RUNTIME_FAULTINJECT=/path/to/bin  the same built with -tags
//	                                          faultinject (make
//	                                          build-faultinject), for the
//	                                          fault-injection suite
//	CRIU_NS_TEST_TMPDIR=DIR                   where temporary directories go
//	                                          (default /var/tmp)
//	CRIU_NS_TEST_SLOWDOWN=N                   the machine is N times slower
//	                                          than usual (tests/vm: TCG):
//	                                          every bound on a wait is N
//	                                          times longer
//	CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1         a kernel without soft-dirty
//	                                          tracking fails the tests that
//	                                          need it (tests/vm's guest has it)
//
// Each test fails on what it leaves behind (assertNothingLeft); whatever
// of the run is still left once every test has cleaned up fails the
// suite as a whole, even if every test passed.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var (
	runtimeBin  string // the criu-ns-runtime under test
	faultBin    string // the same with crash points (internal/crashpoint)
	workloadBin string // tests/workload, built static
	criuBin     string // the CRIU the runtime is expected to use
	baseDir     string // every temporary file of the suite lives below it
	runToken    string // in every container id of this run, see cid
)

func TestMain(m *testing.M) {
	// First of all: descriptors inherited from whoever started us (a shell
	// here leaks fd 10 and 251) must not reach the workloads, or CRIU
	// refuses to dump them.
	if err := cloexecStrayFds(); err != nil {
		fatalf("marking inherited descriptors close-on-exec: %v", err)
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fatalf("the integration tests must run as root (euid is %d); nothing was tested", os.Geteuid())
	}
	if err := scaleBounds(os.Getenv("CRIU_NS_TEST_SLOWDOWN")); err != nil {
		fatalf("%v", err)
	}
	var err error
	if criuBin, err = findCriu(); err != nil {
		fatalf("%v; install CRIU >= 4.0 (make deps); nothing was tested", err)
	}

	parent := os.Getenv("CRIU_NS_TEST_TMPDIR")
	if parent == "" {
		// /tmp is tmpfs on many CI machines; keep images on a disk.
		parent = "/var/tmp"
	}
	if baseDir, err = os.MkdirTemp(parent, "cnrt."); err != nil {
		fatalf("creating the temporary directory: %v", err)
	}
	runToken = fmt.Sprintf("cnrt%08x", uint32(os.Getpid()^int(time.Now().UnixNano())))
	// t.TempDir() goes below baseDir too.
	os.Setenv("TMPDIR", baseDir)

	code := func() int {
		binDir := filepath.Join(baseDir, "bin")
		if err := os.Mkdir(binDir, 0o755); err != nil {
			fatalf("%v", err)
		}
		modRoot, err := filepath.Abs("..")
		if err != nil {
			fatalf("%v", err)
		}
		if runtimeBin = os.Getenv("CRIU_NS_RUNTIME"); runtimeBin != "" {
			if runtimeBin, err = filepath.Abs(runtimeBin); err != nil {
				fatalf("%v", err)
			}
			if st, err := os.Stat(runtimeBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				fatalf("CRIU_NS_RUNTIME=%s is not an executable file (%v)", runtimeBin, err)
			}
		} else {
			runtimeBin = filepath.Join(binDir, "criu-ns-runtime")
			goBuild(modRoot, nil, runtimeBin, "./cmd/criu-ns-runtime")
		}
		if faultBin = os.Getenv("CRIU_NS_RUNTIME_FAULTINJECT"); faultBin != "" {
			if faultBin, err = filepath.Abs(faultBin); err != nil {
				fatalf("%v", err)
			}
			if st, err := os.Stat(faultBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				fatalf("CRIU_NS_RUNTIME_FAULTINJECT=%s is not an executable file (%v)", faultBin, err)
			}
		} else {
			faultBin = filepath.Join(binDir, "criu-ns-runtime-faultinject")
			goBuild(modRoot, []string{"CGO_ENABLED=1"}, faultBin, "./cmd/criu-ns-runtime", "-tags", "seccomp,faultinject")
		}
		workloadBin = filepath.Join(binDir, "workload")
		if src := os.Getenv("CRIU_NS_WORKLOAD"); src != "" {
			// A copy: the workload's path tells this run's processes apart.
			if err := copyFile(src, workloadBin, 0o755); err != nil {
				fatalf("CRIU_NS_WORKLOAD: %v", err)
			}
		} else {
			goBuild(modRoot, []string{"CGO_ENABLED=0"}, workloadBin, "./tests/workload")
		}

		fmt.Fprintf(os.Stderr, "tests: runtime %s, fault-injection runtime %s, criu %s, workload %s, tmp %s\n",
			runtimeBin, faultBin, criuBin, workloadBin, baseDir)
		return m.Run()
	}()

	if !checkRunLeftNothing() {
		code = 1
	}
	if code == 0 || os.Getenv("CRIU_NS_TEST_KEEP") == "" {
		os.RemoveAll(baseDir)
	} else {
		fmt.Fprintf(os.Stderr, "tests: kept %s\n", baseDir)
	}
	return code
}

// checkRunLeftNothing says, loudly, what of the run is left once every
// test's cleanup has run, then kills and removes it: a leak no test
// caught still fails the suite.
func checkRunLeftNothing() bool {
	var left runState
	deadline := time.Now().Add(settleTime)
	for {
		left = currentRunState()
		if left.empty() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	killLeftovers()
	removeCgroups()
	if left.empty() {
		return true
	}
	fmt.Fprintf(os.Stderr, "tests: FAIL: the run left processes and cgroups behind after every test had cleaned up:\n")
	for _, p := range left.describeProcs() {
		fmt.Fprintln(os.Stderr, p)
	}
	for _, cg := range left.cgroupList() {
		fmt.Fprintln(os.Stderr, "  cgroup", cg)
	}
	if still := currentRunState(); !still.empty() {
		fmt.Fprintf(os.Stderr, "tests: even killing and removing them left %d processes and cgroups %q\n", len(still.procs), still.cgroupList())
	}
	return false
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "tests: FATAL: "+format+"\n", args...)
	os.Exit(1)
}

// cloexecStrayFds marks every descriptor above stderr close-on-exec.
func cloexecStrayFds() error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		// The descriptor ReadDir used is closed already: EBADF is fine.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}

// findCriu returns the criu on PATH or /usr/local/sbin/criu, checking it
// runs and is at least 4.0.
func findCriu() (string, error) {
	bin, err := exec.LookPath("criu")
	if err != nil {
		bin = "/usr/local/sbin/criu"
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("criu is neither on PATH nor at %s", bin)
		}
		// The runtime looks criu up on PATH by default.
		os.Setenv("PATH", filepath.Dir(bin)+":"+os.Getenv("PATH"))
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %v: %s", bin, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			major, _ := strconv.Atoi(strings.SplitN(strings.TrimSpace(v), ".", 2)[0])
			if major < 4 {
				return "", fmt.Errorf("%s is CRIU %s, need >= 4.0", bin, v)
			}
			return bin, nil
		}
	}
	return "", fmt.Errorf("%s --version printed no version: %s", bin, out)
}

func goBuild(dir string, env []string, out, pkg string, flags ...string) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, append(append([]string{"build", "-o", out}, flags...), pkg)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
