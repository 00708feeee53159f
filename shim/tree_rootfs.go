package shim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// stageRootfs binds the host's "/" onto path, recursively, as the
// container's root: libcontainer cannot use "/" itself. It runs in the
// restore's own mount namespace (internal/mountns), so the host never sees
// the bind and no other container's copy of "/" holds it.
//
// rslave: mounts made inside the container never reach the host, and
// mounts the host shares still reach the container.
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
