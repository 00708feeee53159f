package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
)

// Incremental dumps of restored trees, inside their namespaces: pre-dumps
// (repeatable, each onto the last), a final dump onto the last pre-dump,
// and a restore that takes the pages not written since from the chain.
// They need the kernel's soft-dirty tracking. Where it is missing (as on
// the machine this was written on) the runtime must refuse them in one
// line, before CRIU runs, with nothing made or changed. The tests/vm
// guest's kernel has it, and the guest sets
// CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1: there its absence fails the tests
// instead of testing the refusal.

// refusedNoSoftDirty ends the refusal of a dump that needs soft-dirty
// tracking on a kernel without it.
const refusedNoSoftDirty = "needs soft-dirty memory tracking, which this kernel lacks (criu check --feature mem_dirty_track)"

// haveSoftDirty says whether this kernel tracks soft-dirty pages, as CRIU
// sees it; under CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1 a no fails the test.
func haveSoftDirty(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command(criuBin, "check", "--feature", "mem_dirty_track").CombinedOutput()
	if err != nil && os.Getenv("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY") == "1" {
		t.Fatalf("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1, but criu check --feature mem_dirty_track fails: %s", out)
	}
	return err == nil
}

// dirtyMemory has the workload root pid (started with -dirty) rewrite its
// share of its -mem pages with pattern generation gen, and waits for it.
func dirtyMemory(t *testing.T, pid int, statusFile string, gen int) {
	t.Helper()
	os.Remove(statusFile)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to %d: %v", pid, err)
	}
	expectStatus(t, statusFile, fmt.Sprintf("dirtied %d", gen))
}

// pagesBytes is the size of the pages files in dir: the memory the dump
// holds itself.
func pagesBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	files, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// pagemapPages counts the pages the pagemap of pid in dir keeps in the
// dump's own pages files and in its parent.
func pagemapPages(t *testing.T, dir string, pid int) (present, inParent uint64) {
	t.Helper()
	img := decodeImage(t, dir, fmt.Sprintf("pagemap-%d.img", pid), &pagemap.PagemapEntry{})
	for _, e := range img.Entries[1:] {
		pe := e.Message.(*pagemap.PagemapEntry)
		n := uint64(pe.GetNrPages())
		if pe.NrPages == nil {
			n = uint64(pe.GetCompatNrPages())
		}
		if pe.GetFlags()&1 != 0 || pe.GetInParent() { // PE_PARENT
			inParent += n
		}
		if pe.GetFlags()&4 != 0 { // PE_PRESENT
			present += n
		}
	}
	return present, inParent
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// entries lists the names in dir.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func mustNotExist(t *testing.T, path, why string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v): %s", path, err, why)
	}
}

// TestIncrementalDump: checkpoint --pre-dump twice, the second onto the
// first, the tree writes 10% of its memory, then checkpoint --parent-path
// onto the second. The final images hold only what was written since
// (measured on a 256 MiB tree), link their parent relatively, and restore
// with the memory intact once the whole chain has been moved elsewhere.
func TestIncrementalDump(t *testing.T) {
	e := newEnv(t)
	dirty := haveSoftDirty(t)
	memMiB := 8
	if dirty {
		memMiB = 256
	}
	img := makeImages(t, "-mem", strconv.Itoa(memMiB), "-dirty", "10")
	id := cid("inc")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, false)
	ck := filepath.Join(t.TempDir(), "ck") // pre1, pre2 and full, side by side
	pre1, pre2, full := filepath.Join(ck, "pre1"), filepath.Join(ck, "pre2"), filepath.Join(ck, "full")

	if !dirty {
		// Refused before anything is made, even the image path's parent.
		e.mustFail([]string{"pre-dump " + refusedNoSoftDirty}, "checkpoint", "--pre-dump", "--image-path", pre1, id)
		other := filepath.Join(t.TempDir(), "plain")
		e.mustRun("checkpoint", "--leave-running", "--image-path", other, id)
		before := hashDir(t, other)
		e.mustFail([]string{"an incremental dump (onto the parent images " + other + ") " + refusedNoSoftDirty},
			"checkpoint", "--parent-path", other, "--image-path", full, id)
		assertSameImages(t, before, other)
		mustNotExist(t, ck, "a refused dump made it")
		if st := e.state(id); st.Status != "running" {
			t.Errorf("after the refusals the container is %q, want running", st.Status)
		}
		waitCounterAdvances(t, img.counter)
		checkMemory(t, host, img.status)
		e.mustRun("delete", "--force", id)
		waitGone(t, host)
		e.assertNothingLeft()
		return
	}

	e.mustRun("checkpoint", "--pre-dump", "--image-path", pre1, id)
	e.mustRun("checkpoint", "--pre-dump", "--parent-path", "../pre1", "--image-path", pre2, id)
	waitCounterAdvances(t, img.counter)
	dirtyMemory(t, host, img.status, 1)

	// pre2 reset the tree's soft-dirty bits after pre1: a dump onto pre1
	// would miss what was written between them.
	e.mustFail([]string{"are not the last dump of this tree that tracked memory"},
		"checkpoint", "--parent-path", "../pre1", "--image-path", full, id)
	mustNotExist(t, full, "a refused dump made it")

	// The parent given absolute; CRIU's link is relative all the same.
	e.mustRun("checkpoint", "--parent-path", pre2, "--image-path", full, id)
	waitGone(t, host)
	if link, err := os.Readlink(filepath.Join(full, "parent")); err != nil || link != "../pre2" {
		t.Errorf("the final dump's parent link is %q (%v), want ../pre2", link, err)
	}
	if link, err := os.Readlink(filepath.Join(pre2, "parent")); err != nil || link != "../pre1" {
		t.Errorf("the second pre-dump's parent link is %q (%v), want ../pre1", link, err)
	}

	p1, p2, f := pagesBytes(t, pre1), pagesBytes(t, pre2), pagesBytes(t, full)
	present, inParent := pagemapPages(t, full, img.origPid)
	t.Logf("a %d MiB tree that wrote 10%% of it: pre-dump %s, second pre-dump %s, final dump %s of pages (%d pages its own, %d in its parents)",
		memMiB, mib(p1), mib(p2), mib(f), present, inParent)
	if written := int64(memMiB) << 20 / 10; f < written {
		t.Errorf("the final dump holds %s of pages, less than the %s the tree wrote since the pre-dump", mib(f), mib(written))
	}
	if f > p1/2 {
		t.Errorf("the final dump holds %s of pages, the pre-dump %s: it is not incremental", mib(f), mib(p1))
	}
	if inParent == 0 {
		t.Errorf("the final dump keeps no pages in its parents")
	}

	// Moved together, the chain still holds.
	moved := ck + "-moved"
	if err := os.Rename(ck, moved); err != nil {
		t.Fatal(err)
	}
	id2 := cid("inc2")
	e.mustRun("restore", "-d", "--image-path", filepath.Join(moved, "full"), id2)
	host2 := e.checkTree(id2, img, false)
	checkMemory(t, host2, img.status) // the rewritten pages too
	e.mustRun("delete", "--force", id2)
	e.mustRun("delete", id)
	waitGone(t, host2)
	e.assertNothingLeft()
}

// TestIncrementalCriuNs: criu-ns pre-dump, then criu-ns dump
// --prev-images-dir ../pre --track-mem, then criu-ns restore of the final
// images, all by the pids the caller knows.
func TestIncrementalCriuNs(t *testing.T) {
	e := newEnv(t)
	dirty := haveSoftDirty(t)
	img := makeImages(t, "-mem", "32", "-dirty", "10", "-child")
	e.mustCriuNs("restore", "-D", img.dir, "-d", "--pidfile", "p")
	pid := readPidFile(t, filepath.Join(img.dir, "p"))
	checkNsRoot(t, pid, img)
	tree := strconv.Itoa(pid)
	ck := filepath.Join(t.TempDir(), "ck")
	pre, full := filepath.Join(ck, "pre"), filepath.Join(ck, "full")

	if !dirty {
		refused := func(want string, args ...string) {
			t.Helper()
			checkFailureFrom(t, e.criuNs(runtimeBin, append([]string{"criu"}, args...)...), "criu-ns: ", []string{want})
		}
		refused("pre-dump "+refusedNoSoftDirty, "pre-dump", "-t", tree, "-D", pre)
		other := filepath.Join(t.TempDir(), "plain")
		e.mustCriuNs("dump", "-t", tree, "-D", other, "-R")
		refused("an incremental dump (onto the parent images "+other+") "+refusedNoSoftDirty,
			"dump", "-t", tree, "-D", full, "--prev-images-dir", other, "--track-mem")
		refused("--track-mem "+refusedNoSoftDirty, "dump", "-t", tree, "-D", full, "--track-mem")
		mustNotExist(t, ck, "a refused dump made it")
		checkNsRoot(t, pid, img)
		endTree(t, pid)
		e.deleteAll()
		e.assertNothingLeft()
		return
	}

	e.mustCriuNs("pre-dump", "-t", tree, "-D", pre)
	dirtyMemory(t, pid, img.status, 1)
	kids := childrenOf(pid)
	e.mustCriuNs("dump", "-t", tree, "-D", full, "--prev-images-dir", "../pre", "--track-mem")
	waitGone(t, append(kids, pid)...)
	if link, err := os.Readlink(filepath.Join(full, "parent")); err != nil || link != "../pre" {
		t.Errorf("the dump's parent link is %q (%v), want ../pre", link, err)
	}
	_, inParent := pagemapPages(t, full, img.origPid)
	t.Logf("pre-dump %s, dump %s of pages (%d pages in the parent)", mib(pagesBytes(t, pre)), mib(pagesBytes(t, full)), inParent)
	if inParent == 0 {
		t.Errorf("the dump keeps no pages in its parent")
	}

	e.mustCriuNs("restore", "-D", full, "-d", "--pidfile", "p")
	pid2 := readPidFile(t, filepath.Join(full, "p"))
	checkNsRoot(t, pid2, img) // memory included
	endTree(t, pid2)
	e.deleteAll()
	e.assertNothingLeft()
}

// TestIncrementalDumpFailure: bad parents are refused in one line with
// nothing touched; a final dump that fails, early or midway, leaves the
// old images and the pre-dump byte-identical and the tree running; a dump
// onto a pre-dump whose pages the failed dump's reset made stale is
// refused; a new pre-dump and a dump onto it restore intact.
func TestIncrementalDumpFailure(t *testing.T) {
	e := newEnv(t)
	dirty := haveSoftDirty(t)
	img := makeImages(t, "-mem", "32", "-dirty", "10", "-child")
	id := cid("incf")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, true)
	ck := filepath.Join(t.TempDir(), "ck")
	full, pre := filepath.Join(ck, "full"), filepath.Join(ck, "pre")
	e.mustRun("checkpoint", "--leave-running", "--image-path", full, id) // the old images
	oldFull := hashDir(t, full)
	if err := os.Mkdir(filepath.Join(ck, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	// unchanged checks the old images, and that nothing else is beside them.
	unchanged := func(also ...string) {
		t.Helper()
		assertSameImages(t, oldFull, full)
		if got, want := entries(t, ck), append([]string{"empty", "full"}, also...); !slices.Equal(got, want) {
			t.Errorf("beside the image path: %q, want %q", got, want)
		}
	}

	for _, c := range []struct{ parent, want string }{
		{"../missing", filepath.Join(ck, "missing") + " does not exist"},
		{"../full", "cannot be its own parent"},
		{full, "cannot be its own parent"},
		{"pre", "give ../DIR or an absolute path"},
		{"../empty", "holds no CRIU images (no inventory.img)"},
	} {
		e.mustFail([]string{"parent images " + c.parent + ": ", c.want}, "checkpoint", "--leave-running",
			"--parent-path", c.parent, "--image-path", full, id)
		unchanged()
	}
	waitCounterAdvances(t, img.counter)
	checkMemory(t, host, img.status)
	if !dirty {
		e.mustRun("delete", "--force", id)
		waitGone(t, host)
		e.assertNothingLeft()
		return
	}

	e.mustRun("checkpoint", "--pre-dump", "--image-path", pre, id)
	dirtyMemory(t, host, img.status, 1)
	oldPre := hashDir(t, pre)
	for _, c := range []struct{ stage, why string }{
		{"pre-dump", "before CRIU seized the tree"},
		{"post-dump", "once CRIU has dumped the pages and reset the soft-dirty bits"},
	} {
		r := e.run("checkpoint", "--leave-running", "--parent-path", "../pre", "--image-path", full, id,
			"--", "--action-script", failScript(t, c.stage))
		t.Logf("failed %s: %s", c.why, strings.TrimSpace(r.stderr))
		checkFailure(t, r, []string{"criu dump failed"})
		unchanged("full.failed-dump.log", "pre")
		assertSameImages(t, oldPre, pre)
		// After the early failure the bits are untouched and pre is still
		// the base: the next dump onto it is CRIU's to fail, not refused.
		if err := os.Remove(full + ".failed-dump.log"); err != nil {
			t.Fatal(err)
		}
		waitCounterAdvances(t, img.counter)
		checkMemory(t, host, img.status)
	}
	e.mustFail([]string{"failed after CRIU had reset the tree's soft-dirty bits, so no earlier dump holds the pages the tree has not written since; make a new pre-dump"},
		"checkpoint", "--parent-path", "../pre", "--image-path", full, id)
	unchanged("pre")
	assertSameImages(t, oldPre, pre)

	// The way on: a new pre-dump, replacing the old one whole, and a
	// dump onto it, replacing the old images whole.
	e.mustRun("checkpoint", "--pre-dump", "--image-path", pre, id)
	dirtyMemory(t, host, img.status, 2)
	e.mustRun("checkpoint", "--parent-path", "../pre", "--image-path", full, id)
	waitGone(t, host)
	if link, err := os.Readlink(filepath.Join(full, "parent")); err != nil || link != "../pre" {
		t.Errorf("the dump's parent link is %q (%v), want ../pre", link, err)
	}
	e.checkRestores(full, img)
	e.mustRun("delete", id)
	e.assertNothingLeft()
}
