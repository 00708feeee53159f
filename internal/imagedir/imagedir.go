// Package imagedir replaces a CRIU image directory as a whole, so that
// every reader sees either the whole old checkpoint or the whole new one,
// at any instant and through any crash.
//
// A new checkpoint is written into a staging directory that is a sibling
// of the image directory: the same filesystem, and the same depth, so a
// relative `parent` link (CRIU's --prev-images-dir, "../pre") resolves the
// same during the dump and after it. One renameat2(RENAME_EXCHANGE) then
// puts it in the image directory's place; the old checkpoint, now at the
// staging path, is removed afterwards, outside that instant. Files in the
// image directory that are not CRIU's (a pid file, say) are carried over
// by hard link, so the swap loses none of them.
//
// A Swap is plain data: a journal can hold it, and a later process can
// find out how far it got (Committed) and finish or undo it.
package imagedir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/crashpoint"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/saferm"
)

// Swap is one replacement of an image directory.
type Swap struct {
	// Path is the image directory, symlinks resolved.
	Path string `json:"path"`
	// Staging is the sibling the new checkpoint is written to.
	Staging string `json:"staging"`
	// Old is the identity of the directory at Path when the swap was
	// planned; zero if there was none.
	Old Inode `json:"old"`
}

// Inode identifies a directory.
type Inode struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func (i Inode) zero() bool { return i == Inode{} }

const stagingMark = ".criu-ns-dump-"

// Plan checks that path can be replaced as a whole and picks the staging
// directory; it creates the parents of path if they are missing, nothing
// else.
func Plan(path string) (*Swap, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image path %s: %w", path, unwrap(err))
	}
	parent := filepath.Dir(abs)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("image path %s: %w", path, unwrap(err))
	}
	s := &Swap{Path: abs}
	switch fi, err := os.Stat(abs); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("image path %s: %w", path, unwrap(err))
	case !fi.IsDir():
		return nil, fmt.Errorf("image path %s is not a directory", path)
	default:
		if s.Old, err = inodeOf(abs); err != nil {
			return nil, err
		}
		if up, err := inodeOf(parent); err != nil {
			return nil, err
		} else if mounted, _ := mountinfo.Mounted(abs); mounted || up.Dev != s.Old.Dev {
			return nil, fmt.Errorf("image path %s is a mount point: a checkpoint is written beside it and swapped in, which needs its parent on the same filesystem; use a directory below it", path)
		}
		if err := checkContents(abs); err != nil {
			return nil, fmt.Errorf("image path %s: %w", path, err)
		}
	}
	b := make([]byte, 6)
	rand.Read(b)
	s.Staging = filepath.Join(parent, "."+filepath.Base(abs)+stagingMark+hex.EncodeToString(b))
	return s, nil
}

// IsStaging says whether name (a base name) is the name of a staging
// directory of some image directory.
func IsStaging(name string) bool { return strings.Contains(name, stagingMark) }

// Create makes the staging directory, with the image directory's mode
// and owner if it had one.
func (s *Swap) Create() error {
	if err := os.Mkdir(s.Staging, 0o700); err != nil {
		return fmt.Errorf("staging directory: %w", err)
	}
	if s.Old.zero() {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(s.Path, &st); err == nil {
		os.Chmod(s.Staging, os.FileMode(st.Mode&0o7777))
		os.Lchown(s.Staging, int(st.Uid), int(st.Gid))
	}
	return nil
}

// Committed says whether the new checkpoint has taken the image
// directory's place.
func (s *Swap) Committed() (bool, error) {
	now, err := inodeOf(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if s.Old.zero() {
		return true, nil
	}
	return now != s.Old, nil
}

// Commit puts the staging directory in the image directory's place and
// removes the old checkpoint. It may be run again after a crash.
func (s *Swap) Commit() error {
	done, err := s.Committed()
	if err != nil {
		return err
	}
	if !done {
		if err := s.exchange(); err != nil {
			return err
		}
	}
	crashpoint.Hit("checkpoint.after-exchange")
	return s.Finish()
}

func (s *Swap) exchange() error {
	if s.Old.zero() {
		if err := unix.Renameat2(unix.AT_FDCWD, s.Staging, unix.AT_FDCWD, s.Path, unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("move %s to %s: %w", s.Staging, s.Path, err)
		}
		return nil
	}
	if err := s.carryOver(); err != nil {
		return err
	}
	crashpoint.Hit("checkpoint.after-carry-over")
	if err := unix.Renameat2(unix.AT_FDCWD, s.Staging, unix.AT_FDCWD, s.Path, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("swap %s into %s: %w", s.Staging, s.Path, err)
	}
	return nil
}

// Finish removes what is left at the staging path once committed: the
// old checkpoint.
func (s *Swap) Finish() error { return saferm.RemoveAll(s.Staging) }

// Abort removes the staging directory of a swap that was not committed.
func (s *Swap) Abort() error {
	if done, err := s.Committed(); err != nil {
		return err
	} else if done {
		return fmt.Errorf("internal error: aborting a committed swap of %s", s.Path)
	}
	return saferm.RemoveAll(s.Staging)
}

// Keep moves the staging directory of an uncommitted swap to a visible
// sibling of the image directory, name+suffix, and returns its path:
// for a dump that may be the only copy of a tree's state.
func (s *Swap) Keep(suffix string) (string, error) {
	dst := s.Path + suffix + "-" + s.Staging[len(s.Staging)-12:]
	if err := unix.Renameat2(unix.AT_FDCWD, s.Staging, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE); err != nil {
		if _, statErr := os.Stat(s.Staging); errors.Is(statErr, os.ErrNotExist) {
			if _, err := os.Stat(dst); err == nil {
				return dst, nil // kept by an earlier run
			}
		}
		return "", fmt.Errorf("keep %s as %s: %w", s.Staging, dst, err)
	}
	return dst, nil
}

// carryOver hard-links into the staging directory what the image
// directory holds that is not CRIU's, so the swap keeps it.
func (s *Swap) carryOver() error {
	ents, err := os.ReadDir(s.Path)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if isCRIUs(e) {
			continue
		}
		src, dst := filepath.Join(s.Path, e.Name()), filepath.Join(s.Staging, e.Name())
		switch {
		case e.Type().IsRegular():
			err = os.Link(src, dst)
		case e.Type()&os.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(src); err == nil {
				err = os.Symlink(target, dst)
			}
		default:
			err = fmt.Errorf("%s is neither a file nor a symlink", src)
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("carry %s over into the new checkpoint: %w", e.Name(), err)
		}
	}
	return nil
}

// checkContents refuses an image directory whose entries a swap could not
// carry over: only files and symlinks can be.
func checkContents(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return unwrap(err)
	}
	for _, e := range ents {
		if isCRIUs(e) {
			continue
		}
		if !e.Type().IsRegular() && e.Type()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s is not a CRIU image, and not a plain file the new checkpoint could carry over (a checkpoint replaces the directory as a whole): use an empty or checkpoint directory", e.Name())
		}
	}
	return nil
}

// isCRIUs says whether a directory entry belongs to a checkpoint: CRIU's
// images, stats, logs, its cache and the link to a parent checkpoint.
func isCRIUs(e os.DirEntry) bool {
	n := e.Name()
	if e.Type()&os.ModeSymlink != 0 {
		return n == "parent"
	}
	if !e.Type().IsRegular() {
		return false
	}
	return strings.HasSuffix(n, ".img") || strings.HasPrefix(n, "stats-") ||
		strings.HasSuffix(n, ".log") || n == "irmap-cache"
}

func inodeOf(path string) (Inode, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if err == unix.ENOENT {
			return Inode{}, os.ErrNotExist
		}
		return Inode{}, fmt.Errorf("stat %s: %w", path, err)
	}
	return Inode{Dev: st.Dev, Ino: st.Ino}, nil
}

func unwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
