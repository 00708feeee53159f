package saferm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Fatalf("%s still exists: %v", tree, err)
	}
	if err := RemoveAll(tree); err != nil {
		t.Fatalf("removing a missing path: %v", err)
	}
}

func TestRemoveAllRefusesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root (make unit does)")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	mnt := filepath.Join(tree, "m")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	keep := filepath.Join(mnt, "keep")
	if err := os.WriteFile(keep, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := RemoveAll(tree)
	if err == nil || !strings.Contains(err.Error(), mnt) {
		t.Fatalf("RemoveAll over a mount = %v, want an error naming %s", err, mnt)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a file on the mount was removed: %v", err)
	}
}
