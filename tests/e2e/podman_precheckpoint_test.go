package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
)

// haveSoftDirty says whether this kernel tracks soft-dirty pages, as CRIU
// sees it. Pre-checkpoints need it; where CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1
// (the tests/vm guest, whose kernel has it) a no fails the test.
func haveSoftDirty(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("criu", "check", "--feature", "mem_dirty_track").CombinedOutput()
	if err != nil && os.Getenv("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY") == "1" {
		t.Fatalf("CRIU_NS_TEST_REQUIRE_SOFT_DIRTY=1, but criu check --feature mem_dirty_track fails: %s", out)
	}
	return err == nil
}

// TestPodmanPreCheckpoint: podman's incremental checkpoint flow with the
// runtime under test, a bundle container that libcontainer dumps:
// `checkpoint --pre-checkpoint --export pre.tar.gz` (the container runs
// on), `checkpoint --with-previous --export full.tar.gz`, and `restore
// --import full.tar.gz --import-previous pre.tar.gz`, whose copy carries
// on counting from where the final checkpoint left it. Without soft-dirty
// tracking the runtime refuses podman's pre-dump in one line, which podman
// passes on, with nothing made and the container running on.
func TestPodmanPreCheckpoint(t *testing.T) {
	requireE2E(t)
	dirty := haveSoftDirty(t)
	p, dir, callLog := newReportedPodman(t, "e2e-podman-pre-")

	const name = "precounter"
	p.must(time.Minute, "run", "--detach", "--name", name, "--runtime", runtimeName(),
		imageRef, "sh", "-c", counterScript("/tmp/counter"))
	first := p.waitCounter(name, "", 3)
	id := p.id(name)
	pre, full := filepath.Join(dir, "pre.tar.gz"), filepath.Join(dir, "full.tar.gz")

	if !dirty {
		out, err := p.run(2*time.Minute, "container", "checkpoint", "--pre-checkpoint", "--export", pre, name)
		t.Logf("podman pre-checkpoint: %v:\n%s", err, out)
		const want = "criu-ns-runtime: pre-dump needs soft-dirty memory tracking, which this kernel lacks (criu check --feature mem_dirty_track)"
		if err == nil || !strings.Contains(out, want+"\n") {
			t.Fatalf("podman pre-checkpoint on a kernel without soft-dirty tracking: %v, want the runtime's %q", err, want)
		}
		call := readRuntimeCalls(t, callLog)
		for _, c := range call {
			if c.sub == "checkpoint" && c.id == id {
				if images := c.flagValue("--image-path"); images == "" {
					t.Errorf("podman's checkpoint call has no --image-path: %s", c)
				} else if _, err := os.Lstat(images); !os.IsNotExist(err) {
					t.Errorf("the refused pre-dump made %s (%v)", images, err)
				}
			}
		}
		p.waitCounter(name, first.token, first.n+3) // still running, the same process
		return
	}

	p.must(2*time.Minute, "container", "checkpoint", "--pre-checkpoint", "--export", pre, name)
	atPre, _ := p.last(name)
	// It runs on, and counts well past what the pre-checkpoint holds.
	afterPre := p.waitCounter(name, first.token, atPre.n+10)
	p.must(2*time.Minute, "container", "checkpoint", "--with-previous", "--export", full, name)
	if s := p.status(name); s != "exited" {
		t.Fatalf("after the final checkpoint: status %q, want exited", s)
	}
	frozen, _ := p.last(name)
	if frozen.n < afterPre.n {
		t.Fatalf("the counter went back from %s to %s", afterPre, frozen)
	}
	sizes := map[string]int64{}
	for _, f := range []string{pre, full} {
		fi, err := os.Stat(f)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("exported checkpoint %s missing or empty: %v", f, err)
		}
		sizes[filepath.Base(f)] = fi.Size()
	}
	t.Logf("pre-checkpoint at %s, final checkpoint at %s; archives: %v", afterPre, frozen, sizes)
	own, inParent := finalPages(t, full, dir)
	t.Logf("the final checkpoint's pagemaps: %d pages its own, %d in the pre-checkpoint", own, inParent)
	if inParent == 0 {
		t.Errorf("the final checkpoint keeps no pages in the pre-checkpoint: libcontainer did not make it incremental")
	}

	const clone = "precopy"
	p.must(2*time.Minute, "container", "restore", "--import", full, "--import-previous", pre, "--name", clone)
	restored := p.waitCounter(clone, frozen.token, frozen.n+3)
	t.Logf("restored from both archives, carries on: %s -> %s", frozen, restored)
	// The shell's counter is in its memory: restored with a stale page
	// from the pre-checkpoint it would count on from atPre. (The copy's
	// log starts with a copy of the original's, so a line or two at the
	// checkpoint may repeat.)
	vals := p.counter(clone)
	next := false
	for i, v := range vals {
		if v.token != frozen.token || (i > 0 && v.n < vals[i-1].n && v.n < frozen.n-2) {
			t.Fatalf("%s: line %d is %s after %s: the restored memory is not the final checkpoint's (the pre-checkpoint was at %s)",
				clone, i+1, v, vals[max(i-1, 0)], atPre)
		}
		next = next || v.n == frozen.n+1
	}
	if !next {
		t.Errorf("%s never printed %d, the count after the checkpoint's %s", clone, frozen.n+1, frozen)
	}

	// The runtime under test did the pre-dump, the dump onto it, and the
	// restore; libcontainer passed the parent and memory tracking on.
	preDump := requireServed(t, callLog, "podman", "checkpoint", id, "--image-path", "--work-path", "--pre-dump")
	final := requireServed(t, callLog, "podman", "checkpoint", id, "--image-path", "--work-path", "--parent-path")
	requireServed(t, callLog, "conmon", "restore", p.id(clone), "--bundle", "--pid-file", "--detach", "--image-path", "--work-path")
	parent := filepath.Join(final.flagValue("--image-path"), final.flagValue("--parent-path"))
	if filepath.Clean(parent) != filepath.Clean(preDump.flagValue("--image-path")) {
		t.Errorf("the final checkpoint's --parent-path %s leads to %s, the pre-dump went to %s",
			final.flagValue("--parent-path"), parent, preDump.flagValue("--image-path"))
	}
}

// finalPages unpacks podman's export archive into a directory below dir
// and counts the pages its checkpoint's pagemaps keep in the checkpoint's
// own pages files and in its parent (which must be linked).
func finalPages(t *testing.T, archive, dir string) (own, inParent uint64) {
	t.Helper()
	out := filepath.Join(dir, "unpacked")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	// podman compresses with zstd by default; tar finds out which.
	mustRun(t, time.Minute, nil, "tar", "-C", out, "-xf", archive)
	ck := filepath.Join(out, "checkpoint")
	if link, err := os.Readlink(filepath.Join(ck, "parent")); err != nil {
		t.Errorf("the final checkpoint has no parent link: %v", err)
	} else {
		t.Logf("the final checkpoint's parent link: %s", link)
	}
	maps, _ := filepath.Glob(filepath.Join(ck, "pagemap-*.img"))
	if len(maps) == 0 {
		t.Fatalf("no pagemaps in %s", ck)
	}
	for _, m := range maps {
		f, err := os.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		img, err := crit.New(f, nil, "", false, true).Decode(&pagemap.PagemapEntry{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		for _, e := range img.Entries[1:] {
			pe := e.Message.(*pagemap.PagemapEntry)
			n := uint64(pe.GetNrPages())
			if pe.NrPages == nil {
				n = uint64(pe.GetCompatNrPages())
			}
			switch {
			case pe.GetFlags()&1 != 0: // PE_PARENT
				inParent += n
			case pe.GetFlags()&4 != 0: // PE_PRESENT
				own += n
			}
		}
	}
	return own, inParent
}
