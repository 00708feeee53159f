package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	migratePort    = "7199"
	migrateTimeout = "10s" // --timeout of both ends where no fault is injected
	faultTimeout   = "3s"  // ... and where one is: how soon a lost peer is noticed
	migrateWait    = 60 * time.Second
)

// migration is one run of receive and migrate between two test hosts.
type migration struct {
	h      *hosts
	id     string
	img    images // what the tree was restored from (its pids are held)
	unhold func() // ends the copy that holds them
	dstImg string // the receive's --image-path
	root   int    // the source tree's root (host pid)
}

// newMigration restores a 256 MiB tree with a child on the source, from
// images whose pids a stopped copy keeps holding on both hosts.
func newMigration(t *testing.T) *migration {
	t.Helper()
	h := newHosts(t)
	m := &migration{h: h, id: cid("mig")}
	m.img, m.unhold = heldImages(t, "-mem", "256", "-child")
	m.dstImg = filepath.Join(h.dst.dir, "received")
	h.src.mustRun("restore", "-d", "--image-path", m.img.dir, m.id)
	m.root = h.src.checkTree(m.id, m.img, true)
	return m
}

func (m *migration) to() string { return m.h.dst.addr + ":" + migratePort }

// receive starts `receive` on the destination.
func (m *migration) receive(t *testing.T, global []string, args ...string) *background {
	full := append(append([]string{}, global...), "receive", "--listen", m.to(), "--image-path", m.dstImg)
	return m.h.dst.start(t, append(append(full, args...), m.id)...)
}

// checkMoved checks the tree runs on the destination, whole, and nowhere
// else.
func (m *migration) checkMoved(t *testing.T) int {
	t.Helper()
	dst := m.h.dst
	host := dst.checkTree(m.id, m.img, true)
	if want := fmt.Sprintf("net:[%d]", dst.netnsIno()); nsOf(host, "net") != want {
		t.Errorf("the moved tree is in %s, want the destination's %s", nsOf(host, "net"), want)
	}
	checkMemory(t, host, m.img.status)
	waitGone(t, m.root)
	m.h.src.waitStatus(m.id, "stopped")
	return host
}

// checkStayed checks the tree still runs on the source, whole, and that
// nothing of the migration is left on the destination.
func (m *migration) checkStayed(t *testing.T) {
	t.Helper()
	if host, _ := m.h.src.rootPids(m.id); host != m.root {
		t.Errorf("the source tree's root is %d, was %d", host, m.root)
	}
	if kids := childrenOf(m.root); len(kids) != 1 {
		t.Errorf("the source tree's root has children %v, want its one child", kids)
	}
	waitCounterAdvances(t, m.img.counter)
	checkMemory(t, m.root, m.img.status)
	dst := m.h.dst
	dst.assertNoProcesses()
	dst.assertRootEmpty()
	if _, err := os.Stat(m.dstImg); !os.IsNotExist(err) {
		ents, _ := os.ReadDir(m.dstImg)
		t.Errorf("the destination's image path is still there (%v): %v", err, ents)
	}
}

// finish deletes both containers and checks nothing is left anywhere.
func (m *migration) finish(t *testing.T) {
	t.Helper()
	for _, x := range []*host{m.h.src, m.h.dst} {
		if ids, _ := x.listIDs(); len(ids) > 0 {
			x.mustRun("delete", "--force", m.id)
		}
	}
	m.unhold()
	for _, x := range []*host{m.h.src, m.h.dst} {
		x.assertNoProcesses()
		x.assertNothingLeft()
	}
}

// A 256 MiB tree moves to a host where its pids are taken, its memory
// intact, in each mode; the source copy is gone.
func TestMigrate(t *testing.T) {
	for _, mode := range []struct {
		name  string
		flags []string
	}{
		{"plain", nil},
		{"post-copy", []string{"--lazy"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.name == "post-copy" {
				lazyPipes(t)
			}
			m := newMigration(t)
			recv := m.receive(t, nil, "--timeout", migrateTimeout, "--pid-file", filepath.Join(m.h.dst.dir, "root.pid"))
			stats := filepath.Join(t.TempDir(), "stats.json")
			args := append([]string{"migrate", "--to", m.to(), "--timeout", migrateTimeout, "--stats", stats}, mode.flags...)
			m.h.src.mustRun(append(args, m.id)...)
			if r := recv.wait(t, migrateWait); r.code != 0 {
				t.Fatalf("receive failed: %s", r)
			}
			host := m.checkMoved(t)
			if pid := readPidFile(t, filepath.Join(m.h.dst.dir, "root.pid")); pid != host {
				t.Errorf("receive's pid file says %d, the tree's root is %d", pid, host)
			}
			var st struct {
				Mode       string  `json:"mode"`
				ImageFiles int     `json:"image_files"`
				TotalMs    float64 `json:"total_ms"`
				DowntimeMs float64 `json:"downtime_ms"`
			}
			b, err := os.ReadFile(stats)
			if err != nil || json.Unmarshal(b, &st) != nil {
				t.Fatalf("--stats wrote %q: %v", b, err)
			}
			if st.Mode != mode.name || st.ImageFiles == 0 || st.DowntimeMs <= 0 || st.TotalMs < st.DowntimeMs {
				t.Errorf("--stats are not those of a %s migration: %s", mode.name, b)
			}
			t.Logf("%s: %s", mode.name, strings.Join(strings.Fields(string(b)), " "))
			m.finish(t)
		})
	}
}

// Pre-copy needs the kernel's soft-dirty tracking. Where it is missing
// the migration is refused before anything is touched; where it is there
// (the QEMU guest of `make test` sets CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1,
// and there its absence is a failure) two rounds run and the tree moves.
func TestMigratePreCopy(t *testing.T) {
	dirty := exec.Command(criuBin, "check", "--feature", "mem_dirty_track").Run() == nil
	required := os.Getenv("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY") == "1"
	t.Run("refused without soft-dirty", func(t *testing.T) {
		if dirty {
			t.Skip("this kernel tracks soft-dirty pages: nothing to refuse")
		}
		m := newMigration(t)
		recv := m.receive(t, nil, "--timeout", migrateTimeout)
		msg := m.h.src.mustFail([]string{"soft-dirty"}, "migrate", "--to", m.to(), "--pre-copy", "2", m.id)
		if strings.Contains(msg, "criu pre-dump") {
			t.Errorf("the refusal came from CRIU, after the tree was touched: %s", msg)
		}
		// Not even connected: the receive still waits, having made nothing.
		select {
		case <-recv.done:
			t.Errorf("the receive ended: %s", recv.out.String())
		default:
		}
		recv.cmd.Process.Signal(syscall.SIGTERM)
		recv.wait(t, settleTime)
		m.checkStayed(t)
		m.finish(t)
	})
	t.Run("migrates", func(t *testing.T) {
		if !dirty && !required {
			t.Skip("this kernel lacks soft-dirty tracking (criu check --feature mem_dirty_track); the QEMU guest runs this")
		}
		if !dirty {
			t.Fatal("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1, but criu check --feature mem_dirty_track fails")
		}
		m := newMigration(t)
		recv := m.receive(t, nil, "--timeout", migrateTimeout)
		m.h.src.mustRun("migrate", "--to", m.to(), "--pre-copy", "2", "--timeout", migrateTimeout, m.id)
		if r := recv.wait(t, migrateWait); r.code != 0 {
			t.Fatalf("receive failed: %s", r)
		}
		for _, d := range []string{"pre-1", "pre-2"} {
			if imgs, _ := filepath.Glob(filepath.Join(m.dstImg, d, "pagemap-*.img")); len(imgs) == 0 {
				t.Errorf("pre-dump round %s stored no pagemap on the destination", d)
			}
		}
		if link, err := os.Readlink(filepath.Join(m.dstImg, "parent")); err != nil || link != "pre-2" {
			t.Errorf("the final images' parent is %q (%v), want pre-2", link, err)
		}
		m.checkMoved(t)
		m.finish(t)
	})
}

// criu-ns migrate moves any plain tree (here one started on the source
// host itself), by its pid; it lands with its own pids in fresh namespaces
// while its old pids are still taken by the source copy, frozen.
func TestCriuNsMigrate(t *testing.T) {
	h := newHosts(t)
	dir := t.TempDir()
	w := h.src.startWorkload(t, dir, "-mem", "64", "-child")
	id := cid("ns-mig")
	recv := h.dst.start(t, "receive", "--listen", h.dst.addr+":"+migratePort, "--image-path", filepath.Join(h.dst.dir, "img"), "--timeout", migrateTimeout, id)
	r := runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
		cmd := h.src.in(ctx, append([]string{runtimeBin, "criu"}, a...)...)
		cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+h.src.root)
		return cmd
	}, "migrate", "--to", h.dst.addr+":"+migratePort, "-t", fmt.Sprint(w.pid()), "--criu-ns-timeout", migrateTimeout)
	if r.code != 0 {
		t.Fatalf("criu-ns migrate failed: %s", r)
	}
	if rr := recv.wait(t, migrateWait); rr.code != 0 {
		t.Fatalf("receive failed: %s", rr)
	}
	w.waitExit(t)
	root := h.dst.checkTree(id, images{counter: w.counter, origPid: w.pid()}, true)
	checkMemory(t, root, w.status)
	h.dst.mustRun("delete", "--force", id)
	for _, x := range []*host{h.src, h.dst} {
		x.assertNoProcesses()
		x.assertNothingLeft()
	}
}

// Faults at each phase of a migration leave the source tree running and
// intact, and nothing of the migration on the destination. The phase is
// held: "dump" stops the source's CRIU itself while it dumps the frozen
// tree (its parasite may be in it); "restore" is a CRIU wrapper on the
// destination that holds its restore (the dump is complete, the images
// sent; plain: the tree frozen in the post-dump hook; post-copy: CRIU
// serving pages); "post-resume" an action script of the destination's
// restore (post-copy: every page has been sent, and the source's CRIU has
// left the tree stopped).
func TestMigrateFaults(t *testing.T) {
	type fault struct {
		name string
		// inject breaks the migration; it returns what one of the two
		// error messages must say.
		inject func(t *testing.T, m *migration, recv *background, migratePid int) []string
	}
	faults := []fault{
		{"receiver killed", func(t *testing.T, m *migration, recv *background, _ int) []string {
			recv.cmd.Process.Kill()
			return []string{"lost the destination"}
		}},
		{"link cut", func(t *testing.T, m *migration, _ *background, _ int) []string {
			ip(t, "-n", m.h.src.name, "link", "set", m.h.src.veth, "down")
			return []string{"nothing heard"}
		}},
		{"source criu killed", func(t *testing.T, m *migration, _ *background, migratePid int) []string {
			criu := sourceCRIU(t, migratePid)
			if err := syscall.Kill(criu, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			return []string{"criu dump was killed"}
		}},
	}
	for _, mode := range []struct {
		name  string
		flags []string
		holds []string // CRIU commands on the destination to hold
	}{
		{"plain", nil, []string{"dump", "restore"}},
		{"post-copy", []string{"--lazy"}, []string{"restore", "post-resume"}},
	} {
		for _, hold := range mode.holds {
			for _, f := range faults {
				afterPages := hold == "post-resume"
				if afterPages && f.name == "source criu killed" {
					continue // it has ended already
				}
				t.Run(fmt.Sprintf("%s/%s/%s", mode.name, hold, f.name), func(t *testing.T) {
					if mode.name == "post-copy" {
						lazyPipes(t)
					}
					m := newMigration(t)
					var held *criuHold
					var recv *background
					switch hold {
					case "post-resume":
						held = newActionHold(t, hold)
						recv = m.receive(t, nil, "--timeout", faultTimeout, "--", "--action-script", held.path)
					case "restore":
						held = newCriuHold(t, hold)
						recv = m.receive(t, []string{"--criu", held.path}, "--timeout", faultTimeout)
					default:
						recv = m.receive(t, nil, "--timeout", faultTimeout)
					}
					mig := m.h.src.start(t, append(append([]string{"migrate", "--to", m.to(), "--timeout", faultTimeout}, mode.flags...), m.id)...)
					release := func() {}
					if held != nil {
						held.waitHeld(t, mig)
						release = held.release
					} else {
						release = stopDumping(t, m, mig.cmd.Process.Pid)
					}
					if afterPages {
						eventually(t, migrateWait, "the source's criu to have sent every page", func() error {
							if c := criuBelow(mig.cmd.Process.Pid); c != 0 {
								return fmt.Errorf("criu %d still runs", c)
							}
							return nil
						})
					}
					want := f.inject(t, m, recv, mig.cmd.Process.Pid)
					r := mig.wait(t, migrateWait)
					// The destination may stay held until the source gave up.
					release()
					rr := recv.wait(t, migrateWait)
					msg := checkFailure(t, r, nil)
					if !strings.Contains(msg, "still runs here") {
						t.Errorf("the source's error does not say the tree still runs there: %s", msg)
					}
					if f.name != "receiver killed" {
						if rr.code == 0 {
							t.Errorf("the receive succeeded: %s", rr)
						}
						msg += " / " + strings.TrimSpace(rr.stderr)
					}
					found := false
					for _, w := range want {
						found = found || strings.Contains(msg, w)
					}
					if !found {
						t.Errorf("neither side's error says %q: %s", want, msg)
					}
					m.checkStayed(t)
					m.finish(t)
				})
			}
		}
	}
}

// stopDumping stops the source's CRIU while it dumps: once the tree is
// frozen, before CRIU has called its post-dump hook. It returns how to
// let it go on.
func stopDumping(t *testing.T, m *migration, migratePid int) func() {
	t.Helper()
	// A tight loop: the window is the dump's, a few hundred ms.
	criu := 0
	for end := time.Now().Add(settleTime); criu == 0 || procState(m.root) != "t"; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the source's criu (%d) did not freeze the tree within %v", criu, settleTime)
		}
		if criu == 0 {
			criu = criuBelow(migratePid)
		}
	}
	if err := syscall.Kill(criu, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	eventually(t, settleTime, "the source's criu to stop", func() error {
		if st := procState(criu); st != "T" {
			return fmt.Errorf("criu %d is in state %q", criu, st)
		}
		return nil
	})
	for _, c := range kidsOf(criu) {
		if strings.TrimSuffix(procExe(c), " (deleted)") == runtimeBin {
			t.Fatalf("the dump was done already: criu %d runs its post-dump hook (%d)", criu, c)
		}
	}
	return func() { syscall.Kill(criu, syscall.SIGCONT) }
}

// sourceCRIU finds the CRIU of a migrate.
func sourceCRIU(t *testing.T, migratePid int) int {
	t.Helper()
	var found int
	eventually(t, settleTime, "the source's criu", func() error {
		if found = criuBelow(migratePid); found == 0 {
			return fmt.Errorf("no criu below %d", migratePid)
		}
		return nil
	})
	return found
}

// criuBelow is the CRIU that pid runs: its child, or grandchild (below
// the setns-exec parent, for a tree container); 0 if none.
func criuBelow(pid int) int {
	for _, c := range kidsOf(pid) {
		if strings.TrimSuffix(procExe(c), " (deleted)") == criuBin {
			return c
		}
		for _, g := range kidsOf(c) {
			if strings.TrimSuffix(procExe(g), " (deleted)") == criuBin {
				return g
			}
		}
	}
	return 0
}

// kidsOf lists pid's children from its own /proc entries (quicker than
// childrenOf's walk of every process).
func kidsOf(pid int) []int {
	var kids []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, f := range strings.Fields(string(b)) {
			var k int
			if _, err := fmt.Sscan(f, &k); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// Bad input: one line, exit 1, nothing touched.
func TestMigrateBadInput(t *testing.T) {
	m := newMigration(t)
	before := hashDir(t, m.img.dir)
	src, dst := m.h.src, m.h.dst
	src.mustFail([]string{"does not exist"}, "migrate", "--to", m.to(), cid("nosuch"))
	src.mustFail([]string{"--to"}, "migrate", m.id)
	src.mustFail([]string{"cannot be combined"}, "migrate", "--to", m.to(), "--lazy", "--pre-copy", "2", m.id)
	src.mustFail([]string{"--leave-running"}, "migrate", "--to", m.to(), m.id, "--", "--leave-running")
	// Nobody listens: the source gives up after its timeout, untouched.
	src.mustFail([]string{"lost the destination", "refused"}, "migrate", "--to", m.to(), "--timeout", "1s", m.id)

	// The destination refuses a taken id and an image dir with something
	// in it, and says so to the source too.
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "precious"), []byte("x"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image-path", full, m.id}, "not empty"},
	} {
		rr := dst.run(append([]string{"receive", "--listen", m.to()}, c.args...)...)
		checkFailure(t, rr, []string{c.want})
	}
	if b, err := os.ReadFile(filepath.Join(full, "precious")); err != nil || string(b) != "x" {
		t.Errorf("receive touched a non-empty image dir: %q %v", b, err)
	}
	dst.mustRun("restore", "-d", "--image-path", m.img.dir, "--work-path", t.TempDir(), m.id)
	recv := dst.start(t, "receive", "--listen", m.to(), "--image-path", m.dstImg, m.id)
	rr := recv.wait(t, settleTime)
	checkFailure(t, rr, []string{"exists"})
	dst.mustRun("delete", "--force", m.id)

	assertSameImages(t, before, m.img.dir)
	m.checkStayed(t)
	m.finish(t)
}

// A destination that dies between the source's Commit and its answer
// leaves the source unable to know whether the tree runs there. Then the
// source copy is neither resumed (the tree might run twice) nor ended (it
// might be lost): it is kept stopped, the error says so, and resuming it
// brings the tree back whole. The destination's janitor removes its copy.
func TestMigrateCommitLost(t *testing.T) {
	m := newMigration(t)
	dst := m.h.dst
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	recv := &background{done: make(chan struct{})}
	recv.cmd = dst.in(ctx, faultBin, "--root", dst.root, "receive", "--listen", m.to(), "--image-path", m.dstImg,
		"--timeout", migrateTimeout, m.id)
	recv.cmd.Dir = dst.dir
	recv.cmd.Env = append(os.Environ(), crashpointEnv+"=receive.after-commit")
	recv.cmd.Stdout, recv.cmd.Stderr = &recv.out, &recv.out
	if err := recv.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		recv.err = recv.cmd.Wait()
		close(recv.done)
	}()
	r := m.h.src.run("migrate", "--to", m.to(), "--timeout", migrateTimeout, m.id)
	recv.wait(t, migrateWait)
	msg := checkFailure(t, r, []string{"kept stopped"})
	if strings.Contains(msg, "still runs here") {
		t.Errorf("the source claims its copy runs: %s", msg)
	}
	// Stopped, not dead: every process of the source tree.
	for _, pid := range append([]int{m.root}, childrenOf(m.root)...) {
		if st := procState(pid); st != "T" {
			t.Errorf("source tree process %d is in state %q, want stopped (T)", pid, st)
		}
	}
	eventually(t, migrateWait, "the destination's janitor to remove its copy", func() error {
		if ids, _ := dst.listIDs(); len(ids) > 0 {
			return fmt.Errorf("the destination still has %v", ids)
		}
		return nil
	})
	// The user's way back, as the error says.
	m.h.src.mustRun("kill", "--all", m.id, "CONT")
	m.checkStayed(t)
	m.finish(t)
}
