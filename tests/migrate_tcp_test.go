package tests

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// An established TCP connection survives the move where the destination
// can take the tree's address. The tree talks from a service address of
// its own (10.199.x.5) to an echo peer on the destination host; the
// destination's restore runs a CRIU action script (receive's `--
// --action-script`) that moves that address over, as a cluster moves a
// service address. The peer sees one connection, unbroken, and the tree,
// which ends itself if its echoes stop, keeps running.
//
// CRIU 4.1.1 cannot dump an inet socket on kernels from 6.16 on (CRIU
// issues #2705, #2718: getsockopt(SO_PASSCRED) is refused there). The
// test asks bare CRIU first; where it cannot, the migration must fail with
// CRIU's own error and leave the tree, and its connection, as they were.
func TestMigrateTCPEstablished(t *testing.T) {
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Fatalf("CRIU locks a dumped tree's connections with iptables, which is missing (scripts/install-test-deps.sh installs it): %v", err)
	}
	h := newHosts(t)
	service := fmt.Sprintf("10.199.%d.5", h.subnet)
	ip(t, "-n", h.src.name, "addr", "add", service+"/32", "dev", "lo")
	ip(t, "-n", h.dst.name, "route", "add", service+"/32", "via", h.src.addr)
	peer := echoPeer(t, h.dst.name, h.dst.addr+":7299")

	script := filepath.Join(t.TempDir(), "take-address.sh")
	os.WriteFile(script, []byte(fmt.Sprintf(`#!/bin/sh
[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0
ip -n %[1]s addr del %[3]s/32 dev lo &&
ip -n %[2]s route del %[3]s/32 &&
ip -n %[2]s addr add %[3]s/32 dev lo
`, h.src.name, h.dst.name, service)), 0o755)

	dir := t.TempDir()
	w := h.src.startWorkload(t, dir, "-mem", "16", "-child", "-tcp", h.dst.addr+":7299", "-tcp-from", service)
	before := peer.echoed.Load()
	eventually(t, settleTime, "the tree's echoes", func() error {
		if peer.echoed.Load() < before+64 {
			return fmt.Errorf("%d bytes echoed", peer.echoed.Load())
		}
		return nil
	})

	probe := filepath.Join(t.TempDir(), "probe")
	os.Mkdir(probe, 0o755)
	out, err := h.src.in(context.Background(), criuBin, "dump", "-t", fmt.Sprint(w.pid()), "-D", probe, "--tcp-established", "--leave-running").CombinedOutput()
	canDump := err == nil

	id := cid("tcp")
	to := h.dst.addr + ":" + migratePort
	dstImg := filepath.Join(h.dst.dir, "img")
	recv := h.dst.start(t, "receive", "--listen", to, "--image-path", dstImg, "--timeout", migrateTimeout, id, "--", "--action-script", script)
	r := runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
		cmd := h.src.in(ctx, append([]string{runtimeBin, "criu"}, a...)...)
		cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+h.src.root)
		return cmd
	}, "migrate", "--to", to, "-t", fmt.Sprint(w.pid()), "--tcp-established", "--criu-ns-timeout", migrateTimeout)
	if !canDump {
		t.Logf("bare CRIU cannot dump the tree's connection on this kernel (%s): checking that the migration fails cleanly", firstError(out))
		if r.code == 0 || !strings.Contains(r.stderr, "criu dump failed") || !strings.Contains(r.stderr, "sockets") || !strings.Contains(r.stderr, "still runs here") {
			t.Fatalf("want CRIU's own socket error, and the tree still here: %s", r)
		}
		if rr := recv.wait(t, migrateWait); rr.code == 0 {
			t.Errorf("the receive succeeded: %s", rr)
		}
		echoed := peer.echoed.Load()
		eventually(t, settleTime, "the tree's echoes after the failed move", func() error {
			if !isWorkload(w.pid()) {
				return fmt.Errorf("the tree ended: its connection broke")
			}
			if peer.echoed.Load() < echoed+64 {
				return fmt.Errorf("%d bytes echoed since", peer.echoed.Load()-echoed)
			}
			return nil
		})
		checkMemory(t, w.pid(), w.status)
		if n, closed := peer.accepted.Load(), peer.closed.Load(); n != 1 || closed != 0 {
			t.Errorf("the peer accepted %d connections and saw %d end; want the one, unbroken", n, closed)
		}
		h.dst.assertNoProcesses()
		h.dst.assertRootEmpty()
		if _, err := os.Stat(dstImg); !os.IsNotExist(err) {
			t.Errorf("the destination's image path is still there: %v", err)
		}
		return
	}
	if r.code != 0 {
		t.Fatalf("criu-ns migrate failed: %s", r)
	}
	if rr := recv.wait(t, migrateWait); rr.code != 0 {
		t.Fatalf("receive failed: %s", rr)
	}
	w.waitExit(t)
	root := h.dst.checkTree(id, images{counter: w.counter, origPid: w.pid()}, true)
	moved := peer.echoed.Load()
	eventually(t, settleTime, "echoes from the moved tree", func() error {
		if !isWorkload(root) {
			return fmt.Errorf("the moved tree ended: its connection broke")
		}
		if peer.echoed.Load() < moved+64 {
			return fmt.Errorf("%d bytes echoed since the move", peer.echoed.Load()-moved)
		}
		return nil
	})
	if n, closed := peer.accepted.Load(), peer.closed.Load(); n != 1 || closed != 0 {
		t.Errorf("the peer accepted %d connections and saw %d end; want the one, unbroken", n, closed)
	}
	checkMemory(t, root, w.status)
	h.dst.mustRun("delete", "--force", id)
	for _, x := range []*host{h.src, h.dst} {
		x.assertNoProcesses()
		x.assertNothingLeft()
	}
}

// firstError is CRIU's first error line in out that explains something.
func firstError(out []byte) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Error") && !strings.Contains(l, "RLIMIT_NOFILE") {
			return strings.TrimSpace(l)
		}
	}
	return strings.TrimSpace(string(out))
}

// echo is a TCP peer that echoes what it gets and counts.
type echo struct {
	accepted, closed, echoed atomic.Int64
}

// echoPeer listens on addr in the network namespace netns.
func echoPeer(t *testing.T, netns, addr string) *echo {
	t.Helper()
	ln := listenIn(t, netns, addr)
	t.Cleanup(func() { ln.Close() })
	e := &echo{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.accepted.Add(1)
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						c.Write(buf[:n])
						e.echoed.Add(int64(n))
					}
					if err != nil {
						e.closed.Add(1)
						return
					}
				}
			}()
		}
	}()
	return e
}

// listenIn opens a listening socket in another network namespace: a
// socket stays in the namespace it was made in, whatever thread uses it.
func listenIn(t *testing.T, netns, addr string) net.Listener {
	t.Helper()
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	target, err := os.Open("/run/netns/" + netns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	ln, lerr := net.Listen("tcp", addr)
	if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: Go ends it with this goroutine.
		t.Fatalf("back to our network namespace: %v", err)
	}
	runtime.UnlockOSThread()
	if lerr != nil {
		t.Fatal(lerr)
	}
	return ln
}
