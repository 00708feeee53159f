package shim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// stageRootfs binds the host's "/" onto path, recursively, as the
// container's root: libcontainer cannot use "/" itself.
//
// rslave: mounts made inside the container never reach the host. The
// top is then made unbindable so the next container's recursive bind of
// "/" does not copy this one's whole tree again (mounts would grow with
// the square of the number of containers). libcontainer's own rslave pass
// inside the container makes it bindable again there.
func stageRootfs(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	steps := []struct {
		src   string
		flags uintptr
	}{
		{"/", unix.MS_BIND | unix.MS_REC},
		{"", unix.MS_SLAVE | unix.MS_REC},
		{"", unix.MS_UNBINDABLE},
	}
	for _, s := range steps {
		if err := unix.Mount(s.src, path, "", s.flags, ""); err != nil {
			unstageRootfs(path)
			return fmt.Errorf("stage root at %s: %w", path, err)
		}
	}
	return nil
}

// unmountRootfs detaches the staged root, leaving its directory.
func unmountRootfs(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// unstageRootfs undoes stageRootfs; a missing path is fine.
func unstageRootfs(path string) error {
	if err := unmountRootfs(path); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
