package tests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The CRIU source tree with CRIU's own RPC clients built (pycriu with its
// rpc_pb2, libcriu): scripts/install-rpc-clients.sh (make deps) puts it
// there, or CRIU_NS_CRIU_SRC names another.
func criuSource(t *testing.T) string {
	t.Helper()
	src := os.Getenv("CRIU_NS_CRIU_SRC")
	if src == "" {
		src = "/var/cache/criu-ns-runtime/criu-src"
	}
	for _, f := range []string{"lib/pycriu/rpc_pb2.py", "lib/c/libcriu.a", "lib/c/criu.h", "images/rpc.pb-c.h"} {
		if _, err := os.Stat(filepath.Join(src, f)); err != nil {
			t.Fatalf("CRIU's RPC clients are not built in %s (%v): run `make deps` (scripts/install-rpc-clients.sh) or set CRIU_NS_CRIU_SRC", src, err)
		}
	}
	return src
}

// rpcClientFlow is what every RPC client must be able to do through
// criu-ns: run(restore DIR) prints the restored root's pid, run(dump PID
// DIR) dumps the tree and leaves it running. It restores while the pids
// are taken, dumps the restored tree by the pid it got, and restores that
// dump while the first copy runs, checking memory on the way.
func (e *env) rpcClientFlow(run func(args ...string) result) {
	t := e.t
	t.Helper()
	img, orig := takenImages(t, "-mem", "8", "-child")
	pidOf := func(r result) int {
		t.Helper()
		if r.code != 0 {
			t.Fatalf("restore through criu-ns: %s", r)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
		if err != nil {
			t.Fatalf("the client printed no pid: %s", r)
		}
		return pid
	}
	pid := pidOf(run("restore", img.dir))
	checkNsRoot(t, pid, img)

	img2 := filepath.Join(t.TempDir(), "img2")
	if err := os.Mkdir(img2, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := run("dump", strconv.Itoa(pid), img2); r.code != 0 {
		log, _ := os.ReadFile(filepath.Join(img2, "dump.log"))
		t.Fatalf("dump through criu-ns: %s\ndump.log:\n%s", r, tail(string(log), 20))
	}
	if _, err := os.Stat(filepath.Join(img2, "core-"+strconv.Itoa(img.origPid)+".img")); err != nil {
		t.Errorf("the dump has no core image for the ns pid %d: %v", img.origPid, err)
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, pid, img.status)

	pid2 := pidOf(run("restore", img2))
	if pid2 == pid {
		t.Fatalf("the second restore reports the first copy's pid %d", pid)
	}
	checkNsRoot(t, pid2, img)
	checkMemory(t, pid, img.status)

	endTree(t, pid)
	endTree(t, pid2)
	orig.cmd.Process.Kill()
	orig.waitExit(t)
	e.deleteAll()
	e.assertNothingLeft()
}

// client runs an RPC client program with the test's root.
func (e *env) client(env []string, prog ...string) func(args ...string) result {
	return func(args ...string) result {
		e.t.Helper()
		return runCmd(e.t, func(ctx context.Context, a ...string) *exec.Cmd {
			cmd := exec.CommandContext(ctx, prog[0], append(prog[1:], a...)...)
			cmd.Dir = e.dir
			cmd.Env = append(append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+e.root), env...)
			return cmd
		}, args...)
	}
}

// TestRPCPycriu: CRIU's own Python client, pycriu, with criu-ns as its
// binary (use_binary). It runs on Debian's python3, which has the
// protobuf module pycriu needs.
func TestRPCPycriu(t *testing.T) {
	src := criuSource(t)
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import google.protobuf").CombinedOutput(); err != nil {
		t.Fatalf("%s has no protobuf module (install python3-protobuf: make deps): %v: %s", python, err, out)
	}
	e := newEnv(t)
	script, err := filepath.Abs("rpcclients/pycriu_client.py")
	if err != nil {
		t.Fatal(err)
	}
	e.rpcClientFlow(e.client([]string{"PYTHONPATH=" + filepath.Join(src, "lib")}, python, script, criuNsLink(t)))
}

// TestRPCLibcriu: CRIU's C library, libcriu, with criu-ns as its service
// binary (criu_set_service_binary), from a small C program built here.
func TestRPCLibcriu(t *testing.T) {
	src := criuSource(t)
	e := newEnv(t)
	prog := filepath.Join(t.TempDir(), "libcriu_client")
	cc := exec.Command("gcc", "-Wall", "-o", prog, "rpcclients/libcriu_client.c",
		"-I", filepath.Join(src, "lib/c"), "-I", filepath.Join(src, "images"), "-iquote", filepath.Join(src, "criu/include"), // version.h only: its string.h is CRIU's own
		filepath.Join(src, "lib/c/libcriu.a"), "-lprotobuf-c")
	if out, err := cc.CombinedOutput(); err != nil {
		t.Fatalf("building the libcriu client: %v\n%s", err, out)
	}
	e.rpcClientFlow(e.client(nil, prog, criuNsLink(t)))
}
