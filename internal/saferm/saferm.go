// Package saferm removes directory trees only when nothing is mounted in
// them. os.RemoveAll descends into mount points: on a directory that holds
// a bind of the host's root (a staged container root, say), it deletes the
// host's files. Every recursive removal in the runtime goes through here.
package saferm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/sys/mountinfo"
)

// RemoveAll removes path and everything below it, unless something is
// mounted at or below path in this process's mount namespace. A missing
// path is no error.
func RemoveAll(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// Mount points are listed by their real path.
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(abs))
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if len(mounts) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted there", path, mounts[0].Mountpoint)
	}
	return os.RemoveAll(abs)
}
