package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/saferm"
)

// Errors that container managers match on, worded as runc words them.
var (
	ErrExist    = errors.New("container with given ID already exists")
	ErrNotExist = errors.New("container does not exist")
	// ErrBusy: another command holds the container's lock (TryLock).
	ErrBusy = errors.New("container is busy")
)

const (
	// RootfsDir is where the host root is staged, relative to the container dir.
	RootfsDir = "rootfs"
	// libctDir holds libcontainer's state, relative to the container dir.
	libctDir = "libct"
	specFile = "config.json"
)

// Root is the directory given by --root.
type Root struct{ Dir string }

// OpenRoot creates dir if needed.
func OpenRoot(dir string) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o711); err != nil {
		return nil, fmt.Errorf("root %s: %w", abs, err)
	}
	return &Root{Dir: abs}, nil
}

// ContainerDir is the directory of container id.
func (r *Root) ContainerDir(id string) string { return filepath.Join(r.Dir, id) }

// RootfsPath is the staged root of the container in dir.
func RootfsPath(dir string) string { return filepath.Join(dir, RootfsDir) }

// LibcontainerRoot is the root handed to libcontainer for the container in dir.
func LibcontainerRoot(dir string) string { return filepath.Join(dir, libctDir) }

// SpecPath is the container's config.json.
func SpecPath(dir string) string { return filepath.Join(dir, specFile) }

// Lock is a held container lock; Dir is the container's directory.
type Lock struct {
	Dir  string
	file *os.File
}

// File is the locked open file of the container directory. A process
// that inherits it holds the lock too, until every holder has closed it
// (flock(2) locks belong to the open file): a CRIU run the runtime starts
// keeps the container locked even if the runtime is killed.
func (l *Lock) File() *os.File { return l.file }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.file != nil {
		l.file.Close()
		l.file = nil
	}
}

// Create claims id and returns its lock, held.
func (r *Root) Create(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := r.ContainerDir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, ErrExist
		}
		return nil, err
	}
	l, err := r.Lock(id)
	if err != nil {
		os.Remove(dir)
	}
	return l, err
}

// Lock waits for exclusive use of container id.
func (r *Root) Lock(id string) (*Lock, error) { return r.lock(id, 0) }

// TryLock takes container id's lock if nobody holds it, else ErrBusy.
func (r *Root) TryLock(id string) (*Lock, error) { return r.lock(id, unix.LOCK_NB) }

func (r *Root) lock(id string, flags int) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := r.ContainerDir(id)
	for {
		f, err := os.Open(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, ErrNotExist
			}
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|flags); err != nil {
			f.Close()
			if err == unix.EWOULDBLOCK {
				return nil, ErrBusy
			}
			return nil, fmt.Errorf("lock %s: %w", id, err)
		}
		// The holder before us may have removed (and someone re-created)
		// the directory: only the inode we locked counts.
		var held, now unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(dir, &now) == nil &&
			held.Ino == now.Ino && held.Dev == now.Dev {
			return &Lock{Dir: dir, file: f}, nil
		}
		f.Close()
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist
		}
	}
}

// Remove deletes the container directory; the caller holds its lock. It
// refuses while anything is mounted below the directory, where a recursive
// removal would delete the mounted files (a staged host root, say).
func (r *Root) Remove(id string) error {
	if err := saferm.RemoveAll(r.ContainerDir(id)); err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	return nil
}

// IDs lists the containers under the root, sorted.
func (r *Root) IDs() ([]string, error) {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}
