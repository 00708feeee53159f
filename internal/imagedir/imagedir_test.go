package imagedir

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// files lists dir's entries with their contents (symlinks as "->target").
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if e.Type()&os.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			out[e.Name()] = "->" + l
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

func write(t *testing.T, dir string, kv map[string]string) {
	t.Helper()
	for k, v := range kv {
		if strings.HasPrefix(v, "->") {
			if err := os.Symlink(v[2:], filepath.Join(dir, k)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func siblings(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestSwapReplacesWholeDirectory(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "ck")
	if err := os.Mkdir(img, 0o750); err != nil {
		t.Fatal(err)
	}
	write(t, img, map[string]string{
		"inventory.img": "old", "pages-1.img": "old pages", "files.img": "old files",
		"dump.log": "old log", "stats-dump": "old stats", "parent": "->../pre",
		"root.pid": "42", "notes": "->elsewhere",
	})
	s, err := Plan(img)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(s.Staging) != base || !IsStaging(filepath.Base(s.Staging)) {
		t.Fatalf("staging %s is not a sibling of %s", s.Staging, img)
	}
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(s.Staging); fi.Mode().Perm() != 0o750 {
		t.Errorf("staging mode %v, want the image dir's 0750", fi.Mode().Perm())
	}
	write(t, s.Staging, map[string]string{"inventory.img": "new", "pages-1.img": "new pages", "dump.log": "new log"})
	if done, _ := s.Committed(); done {
		t.Fatal("Committed before Commit")
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if done, _ := s.Committed(); !done {
		t.Fatal("not Committed after Commit")
	}
	// Exactly the new images, plus what was not CRIU's.
	want := map[string]string{"inventory.img": "new", "pages-1.img": "new pages", "dump.log": "new log",
		"root.pid": "42", "notes": "->elsewhere"}
	if got := files(t, img); !reflect.DeepEqual(got, want) {
		t.Errorf("after the swap %s holds %v, want %v", img, got, want)
	}
	if got := siblings(t, base); !reflect.DeepEqual(got, []string{"ck"}) {
		t.Errorf("left beside the image dir: %v", got)
	}
	// Running it again (a recovery) changes nothing.
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, img); !reflect.DeepEqual(got, want) {
		t.Errorf("a second Commit changed %s: %v", img, got)
	}
}

func TestSwapIntoMissingDirectory(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "a", "b", "ck")
	s, err := Plan(img)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img); !os.IsNotExist(err) {
		t.Fatalf("Plan created the image dir: %v", err)
	}
	if err := s.Create(); err != nil {
		t.Fatal(err)
	}
	write(t, s.Staging, map[string]string{"inventory.img": "new"})
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, img); !reflect.DeepEqual(got, map[string]string{"inventory.img": "new"}) {
		t.Errorf("%s holds %v", img, got)
	}
	if got := siblings(t, filepath.Dir(img)); !reflect.DeepEqual(got, []string{"ck"}) {
		t.Errorf("left beside the image dir: %v", got)
	}
}

func TestAbortAndKeep(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "ck")
	os.Mkdir(img, 0o755)
	write(t, img, map[string]string{"inventory.img": "old"})
	s, _ := Plan(img)
	s.Create()
	write(t, s.Staging, map[string]string{"inventory.img": "new"})
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := files(t, img); got["inventory.img"] != "old" {
		t.Errorf("Abort changed the image dir: %v", got)
	}
	if got := siblings(t, base); !reflect.DeepEqual(got, []string{"ck"}) {
		t.Errorf("Abort left %v", got)
	}

	s, _ = Plan(img)
	s.Create()
	write(t, s.Staging, map[string]string{"inventory.img": "maybe"})
	kept, err := s.Keep(".unverified")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kept, img+".unverified-") || files(t, kept)["inventory.img"] != "maybe" {
		t.Errorf("Keep gave %s holding %v", kept, files(t, kept))
	}
	if again, err := s.Keep(".unverified"); err != nil || again != kept {
		t.Errorf("a second Keep = %s, %v; want %s", again, err, kept)
	}
	if got := files(t, img); got["inventory.img"] != "old" {
		t.Errorf("Keep changed the image dir: %v", got)
	}
}

func TestPlanRefuses(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := Plan(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("Plan(a file) = %v", err)
	}
	withDir := filepath.Join(base, "home")
	os.MkdirAll(filepath.Join(withDir, "docs"), 0o755)
	if _, err := Plan(withDir); err == nil || !strings.Contains(err.Error(), "docs") {
		t.Errorf("Plan(a dir with a subdirectory) = %v, want an error naming it", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the rest mounts a tmpfs: run it as root (make unit does)")
	}
	mnt := filepath.Join(base, "mnt")
	os.Mkdir(mnt, 0o755)
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	if _, err := Plan(mnt); err == nil || !strings.Contains(err.Error(), "mount point") {
		t.Errorf("Plan(a mount point) = %v", err)
	}
	// Below it is fine: the staging dir is on the mounted filesystem.
	s, err := Plan(filepath.Join(mnt, "ck"))
	if err != nil || filepath.Dir(s.Staging) != mnt {
		t.Errorf("Plan below a mount point = %+v, %v", s, err)
	}
}

func TestPlanResolvesSymlinks(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o755)
	link := filepath.Join(base, "link")
	os.Symlink("real", link)
	s, err := Plan(link)
	if err != nil || s.Path != real {
		t.Fatalf("Plan(symlink) = %+v, %v; want the real path", s, err)
	}
}
