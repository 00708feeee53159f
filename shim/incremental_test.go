package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagedir"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/softdirty"
)

// mkdirs makes dirs below base, each with an inventory.img if it ends in
// "+", and returns base.
func mkdirs(t *testing.T, dirs ...string) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range dirs {
		withImages := strings.HasSuffix(d, "+")
		d = filepath.Join(base, strings.TrimSuffix(d, "+"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if withImages {
			if err := os.WriteFile(filepath.Join(d, "inventory.img"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return base
}

func TestPlanParent(t *testing.T) {
	base := mkdirs(t, "ck/pre+", "ck/full+", "ck/plain", "other/pre2+", "real/full+", "real/pre+")
	if err := os.Symlink("real", filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image, parent string
		link          string // what CRIU gets; "" for an error
		err           string // words the error has
	}{
		{"ck/full", "../pre", "../pre", ""},
		{"ck/new", "../pre", "../pre", ""},                 // the image path need not exist yet
		{"ck/a/b/new", "../../../pre", "../../../pre", ""}, // nor its parents
		{"ck/full", "{base}/ck/pre", "../pre", ""},         // absolute: made relative
		{"ck/full", "{base}/other/pre2", "../../other/pre2", ""},
		{"ck/a/b/new", "{base}/ck/pre", "../../../pre", ""},
		{"ck/full", "..", "", "ck holds no CRIU images"},
		{"ck/full", "../pre/", "../pre/", ""},
		{"link/full", "../pre", "../pre", ""}, // from the image path's real place
		{"link/full", "{base}/link/pre", "../pre", ""},
		{"ck/full", "{base}/real/pre", "../../real/pre", ""},
		{"ck/full", "../missing", "", "does not exist"},
		{"ck/full", "../plain", "", "no inventory.img"},
		{"ck/full", "pre", "", "give ../DIR or an absolute path"},
		{"ck/full", "./pre", "", "give ../DIR or an absolute path"},
		{"ck/full", "../full", "", "cannot be its own parent"},
		{"ck/full", "{base}/ck/full", "", "cannot be its own parent"},
		{"link/full", "{base}/real/full", "", "cannot be its own parent"},
	} {
		parent := strings.ReplaceAll(tc.parent, "{base}", base)
		p, err := planParent(filepath.Join(base, tc.image), parent)
		switch {
		case tc.link == "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("image %s, parent %s: %v, want an error saying %q", tc.image, tc.parent, err, tc.err)
		case tc.link != "" && err != nil:
			t.Errorf("image %s, parent %s: %v", tc.image, tc.parent, err)
		case tc.link != "" && p.link != tc.link:
			t.Errorf("image %s, parent %s: link %q, want %q", tc.image, tc.parent, p.link, tc.link)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("image %s, parent %s: the error has more than one line: %q", tc.image, tc.parent, err)
		}
	}
	// The link leads from the staging directory where it leads from the
	// image path: they are siblings.
	image := filepath.Join(base, "link", "full")
	p, err := planParent(image, "../pre")
	if err != nil {
		t.Fatal(err)
	}
	swap, err := imagedir.Plan(image)
	if err != nil {
		t.Fatal(err)
	}
	if err := swap.Create(); err != nil {
		t.Fatal(err)
	}
	defer swap.Abort()
	if got, err := filepath.EvalSymlinks(filepath.Join(swap.Staging, p.link)); err != nil || got != p.dir {
		t.Errorf("from the staging directory %s, %s leads to %s (%v), want %s", swap.Staging, p.link, got, err, p.dir)
	}
}

func TestCheckBase(t *testing.T) {
	p := &treeParent{given: "../pre", dir: "/nonexistent"}
	if err := checkBase(&bundle.Meta{}, p); err != nil {
		t.Errorf("a tree whose bits were never reset refuses a parent: %v", err)
	}
	lost := &bundle.Meta{MemTrack: &bundle.MemTrack{Lost: "a dump into /x failed"}}
	if err := checkBase(lost, p); err == nil || !strings.Contains(err.Error(), "a dump into /x failed") ||
		!strings.Contains(err.Error(), "make a new pre-dump") {
		t.Errorf("after a failed tracking dump: %v", err)
	}
}

func TestResetDirtyBits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		log  string
		want bool
	}{
		{"(00.000001) Version: 4.1.1 (gitid 0)\n(00.1) Dumping pages (type: 27 pid: 1)\n(00.2) Reset 1's dirty tracking\n", true},
		{"(00.000001) Version: 4.1.1 (gitid 0)\n(00.1) Error (criu/cr-dump.c:1): something\n", false},
		{"(00.1) Error (criu/cr-dump.c:1): a log without info lines\n", true},
		{"", true},
	} {
		p := filepath.Join(dir, "dump.log")
		if err := os.WriteFile(p, []byte(tc.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := resetDirtyBits(p); got != tc.want {
			t.Errorf("resetDirtyBits(%q) = %v, want %v", tc.log, got, tc.want)
		}
	}
	if !resetDirtyBits(filepath.Join(dir, "missing.log")) {
		t.Error("a missing log says the bits were not reset")
	}
}

func TestRefuseWithoutSoftDirty(t *testing.T) {
	have, err := softdirty.Available()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []CheckpointOptions{
		{PreDump: true}, {OCI: OCICRIUOptions{ParentPath: "../pre"}}, {TrackMem: true},
	} {
		err := refuseWithoutSoftDirty(o)
		if have != (err == nil) {
			t.Errorf("%s on a kernel with soft-dirty=%v: %v", o.incremental(), have, err)
		}
		if err != nil && !strings.HasSuffix(err.Error(), "needs soft-dirty memory tracking, which this kernel lacks (criu check --feature mem_dirty_track)") {
			t.Errorf("refusal of %s: %q", o.incremental(), err)
		}
	}
	if err := refuseWithoutSoftDirty(CheckpointOptions{LeaveRunning: true}); err != nil {
		t.Errorf("a plain dump refused: %v", err)
	}
}
