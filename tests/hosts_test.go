package tests

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Two test hosts on this machine: network namespaces joined by a veth
// pair, each end with its own address in a private /30 of 10.199.0.0/16
// (traffic goes nowhere else), each host with its own --root. They share
// the machine's pid namespace and filesystem, as hosts of a cluster share
// a network filesystem: the trees' files are where they were.

// host is one test host.
type host struct {
	*env
	name string // network namespace, in /run/netns
	addr string // its address on the veth pair
	veth string // its end of the pair
}

// hosts is a source and a destination.
type hosts struct {
	src, dst *host
	subnet   int // the third byte of their 10.199.x.0/30
}

var hostsSeq int

// newHosts makes two fresh hosts; t's cleanup removes them.
func newHosts(t *testing.T) *hosts {
	t.Helper()
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to make the test hosts (scripts/install-test-deps.sh installs it): %v", tool, err)
		}
	}
	hostsSeq++
	tag := fmt.Sprintf("%s%d", runToken[len(runToken)-5:], hostsSeq)
	subnet := 10 + (int(crc32.ChecksumIEEE([]byte(runToken)))+hostsSeq)%240
	h := &hosts{subnet: subnet,
		src: &host{env: newEnv(t), name: "cn" + tag + "s", addr: fmt.Sprintf("10.199.%d.1", subnet), veth: "v" + tag + "s"},
		dst: &host{env: newEnv(t), name: "cn" + tag + "d", addr: fmt.Sprintf("10.199.%d.2", subnet), veth: "v" + tag + "d"},
	}
	// `ip netns del` removes the name; a namespace (and its veth end)
	// goes with the last process in it, whichever cleanup kills that.
	t.Cleanup(func() {
		for _, x := range []*host{h.src, h.dst} {
			exec.Command("ip", "netns", "del", x.name).Run()
		}
	})
	steps := [][]string{
		{"netns", "add", h.src.name}, {"netns", "add", h.dst.name},
		{"link", "add", h.src.veth, "type", "veth", "peer", "name", h.dst.veth},
	}
	for _, x := range []*host{h.src, h.dst} {
		steps = append(steps,
			[]string{"link", "set", x.veth, "netns", x.name},
			[]string{"-n", x.name, "addr", "add", x.addr + "/30", "dev", x.veth},
			[]string{"-n", x.name, "link", "set", "lo", "up"},
			[]string{"-n", x.name, "link", "set", x.veth, "up"})
	}
	for _, s := range steps {
		ip(t, s...)
	}
	return h
}

func ip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// in runs args in h's network namespace.
func (h *host) in(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=/run/netns/" + h.name, "--"}, args...)...)
}

// command is the runtime with h's --root, in h's network namespace.
func (h *host) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := h.in(ctx, append([]string{runtimeBin, "--root", h.root}, args...)...)
	cmd.Dir = h.dir
	return cmd
}

func (h *host) run(args ...string) result {
	h.t.Helper()
	return runCmd(h.t, h.command, args...)
}

func (h *host) mustRun(args ...string) result {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("on %s: unexpected failure: %s", h.name, r)
	}
	return r
}

// mustFail is env's mustFail, run on h.
func (h *host) mustFail(want []string, args ...string) string {
	h.t.Helper()
	return checkFailure(h.t, h.run(args...), want)
}

// startWorkload starts the workload on h, as startWorkload does.
func (h *host) startWorkload(t *testing.T, dir string, args ...string) *workload {
	t.Helper()
	w := &workload{counter: filepath.Join(dir, "counter"), status: filepath.Join(dir, "status"), done: make(chan struct{})}
	full := append([]string{workloadBin, "-counter", w.counter, "-status", w.status}, args...)
	w.cmd = h.in(context.Background(), full...)
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return w.start(t)
}

// netnsIno is the inode that names h's network namespace.
func (h *host) netnsIno() uint64 {
	var st unix.Stat_t
	if unix.Stat("/run/netns/"+h.name, &st) != nil {
		return 0
	}
	return st.Ino
}

// processes lists the live processes in h's network namespace.
func (h *host) processes() []string {
	want := fmt.Sprintf("net:[%d]", h.netnsIno())
	var out []string
	for _, pid := range allPids() {
		if pid != os.Getpid() && procState(pid) != "Z" && nsOf(pid, "net") == want {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			out = append(out, fmt.Sprintf("  pid %d: %s", pid, strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")))
		}
	}
	return out
}

// assertNoProcesses checks nothing runs on h any more.
func (h *host) assertNoProcesses() {
	h.t.Helper()
	var left []string
	eventually(h.t, settleTime, "the processes on "+h.name+" to end", func() error {
		if left = h.processes(); len(left) > 0 {
			return fmt.Errorf("still running:\n%s", strings.Join(left, "\n"))
		}
		return nil
	})
}

// background is a long-running command (a receive) the test waits for.
type background struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	err  error
	done chan struct{}
}

// start runs the runtime on h in the background.
func (h *host) start(t *testing.T, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan struct{})}
	b.cmd = h.command(context.Background(), args...)
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	b.cmd.WaitDelay = pipeDelay
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.cmd.Process.Kill()
		<-b.done
	})
	return b
}

// wait waits, at most within, for the command to end.
func (b *background) wait(t *testing.T, within time.Duration) result {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(within):
		t.Fatalf("%s still running after %v; output: %s", strings.Join(b.cmd.Args, " "), within, b.out.String())
	}
	return result{args: b.cmd.Args, stdout: b.out.String(), stderr: b.out.String(), code: exitCode(b.cmd, b.err), err: b.err}
}

// criuHold is a CRIU wrapper that stops at one CRIU command until the
// test releases it: the way to hold a migration at a phase and inject a
// fault there.
type criuHold struct {
	path, dir, command string
}

func newCriuHold(t *testing.T, command string) *criuHold {
	t.Helper()
	h := &criuHold{dir: t.TempDir(), command: command}
	h.path = filepath.Join(h.dir, "criu")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = %q ]; then
	echo $$ > %s/held.tmp && mv %s/held.tmp %s/held
	while [ ! -e %s/release ]; do sleep 0.02; done
fi
exec %s "$@"
`, command, h.dir, h.dir, h.dir, h.dir, criuBin)
	if err := os.WriteFile(h.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.release)
	return h
}

// newActionHold is a CRIU action script (for --action-script) that
// stops CRIU at action until the test releases it.
func newActionHold(t *testing.T, action string) *criuHold {
	t.Helper()
	h := &criuHold{dir: t.TempDir(), command: action}
	h.path = filepath.Join(h.dir, "hold.sh")
	script := fmt.Sprintf(`#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = %q ] || exit 0
echo $$ > %s/held.tmp && mv %s/held.tmp %s/held
while [ ! -e %s/release ]; do sleep 0.02; done
`, action, h.dir, h.dir, h.dir, h.dir)
	if err := os.WriteFile(h.path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.release)
	return h
}

// waitHeld waits until CRIU's command is held and returns its pid; cmd
// is the migration that must get there.
func (h *criuHold) waitHeld(t *testing.T, cmd *background) int {
	t.Helper()
	var pid int
	eventually(t, migrateWait, "criu "+h.command+" to be held", func() error {
		select {
		case <-cmd.done:
			t.Fatalf("the migration ended before criu %s: %s", h.command, cmd.out.String())
		default:
		}
		b, err := os.ReadFile(filepath.Join(h.dir, "held"))
		if err != nil {
			return err
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err
	})
	return pid
}

func (h *criuHold) release() { os.WriteFile(filepath.Join(h.dir, "release"), nil, 0o644) }

// heldImages are images of a workload that still exists, stopped: it
// keeps holding the pids of the images on every host of this machine
// until release.
func heldImages(t *testing.T, args ...string) (img images, release func()) {
	t.Helper()
	dir := t.TempDir()
	w := startWorkload(t, dir, args...)
	dumped := filepath.Join(dir, "img")
	criuDump(t, w.pid(), dumped, "--leave-running")
	pids := append([]int{w.pid()}, childrenOf(w.pid())...)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	release = func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGKILL)
		}
		waitGone(t, pids...)
	}
	t.Cleanup(release)
	return images{dir: dumped, counter: w.counter, status: w.status, origPid: w.pid()}, release
}

// lazyPipes makes sure CRIU can get the pipes a post-copy's page server
// needs (see shim's checkLazyPipes): without CAP_SYS_RESOURCE, as on the
// machine this was written on, only up to fs.pipe-max-size, which the
// test raises for its duration.
func lazyPipes(t *testing.T) {
	t.Helper()
	const need = 8 * 4096 / 40 * 4096
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	_, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, need)
	unix.Close(p[0])
	unix.Close(p[1])
	if err == nil {
		return
	}
	const knob = "/proc/sys/fs/pipe-max-size"
	old, rerr := os.ReadFile(knob)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err := os.WriteFile(knob, []byte("4194304"), 0); err != nil {
		t.Fatalf("post-copy needs %d-byte pipes and this process lacks CAP_SYS_RESOURCE; raising %s failed: %v", need, knob, err)
	}
	t.Logf("raised %s from %s to 4194304 for the test", knob, strings.TrimSpace(string(old)))
	t.Cleanup(func() { os.WriteFile(knob, old, 0) })
}

// assertRootEmpty checks h's --root holds no container, no directory and
// no mount, and no cgroup of a container of it is left. (Unlike
// assertNothingLeft it does not look at the machine's processes, which
// the other host shares; assertNoProcesses looks at h's.)
func (h *host) assertRootEmpty() {
	h.t.Helper()
	if ids, err := h.listIDs(); err != nil || len(ids) > 0 {
		h.t.Errorf("containers left in %s: %q (%v)", h.root, ids, err)
	}
	ents, _ := os.ReadDir(h.root)
	for _, e := range ents {
		if e.IsDir() {
			h.t.Errorf("directory %s left in the root %s", e.Name(), h.root)
		}
	}
	if m := mountsBelow(h.root); len(m) > 0 {
		h.t.Errorf("mounts left below %s: %q", h.root, m)
	}
	// The cgroups of a root are named after a hash of it (shim's
	// cgroupsPath): none of them may hold a directory.
	sum := sha256.Sum256([]byte(h.root))
	matches, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/*/criu-ns-runtime/%x/*", sum[:4]))
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.IsDir() {
			h.t.Errorf("cgroup %s of %s's containers left", m, h.name)
		}
	}
}
