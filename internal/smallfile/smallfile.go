// Package smallfile reads small files (the runtime's JSON records,
// /proc/PID/stat) with bare system calls. os.ReadFile costs twice the
// calls: an os.File first tries to register itself with Go's poller
// (fcntl, epoll_ctl, fcntl again) and asks the file's size, and `list`
// reads a handful of files for each of hundreds of containers.
package smallfile

import (
	"bytes"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// bufSize holds any file the package is meant for in one piece.
const bufSize = 4096

// bufs are read buffers. Read's caller gets a copy of the exact size, so
// that `list` does not grow its heap by 4 KiB a file; Use's caller the
// buffer itself, until it returns.
var bufs = sync.Pool{New: func() any { return new([bufSize]byte) }}

// Read returns the content of the file at path. Errors are
// *fs.PathError, so errors.Is(err, fs.ErrNotExist) works as with
// os.ReadFile.
func Read(path string) ([]byte, error) {
	var out []byte
	err := Use(path, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// Use calls f with the content of the file at path and returns f's
// error, or Read's. The content is in a buffer that is reused once f
// returns: f must copy what it keeps. A caller that decodes the file
// saves Read's copy.
func Use(path string, f func([]byte) error) error {
	fd, err := openRetry(path)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := bufs.Get().(*[bufSize]byte)
	defer bufs.Put(b)
	buf := b[:]
	n := 0
	for {
		if n == len(buf) { // a bigger file than the package is for: grow
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := unix.Read(fd, buf[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return &fs.PathError{Op: "read", Path: path, Err: err}
		case m == 0:
			return f(buf[:n])
		}
		n += m
	}
}

// ReadOnce returns what one read(2) of the file at path gives, at most
// 4 KiB: for procfs files that hand all they hold to one read, such as
// /proc/PID/stat.
func ReadOnce(path string) ([]byte, error) {
	var out []byte
	err := UseOnce(path, func(b []byte) error {
		out = bytes.Clone(b)
		return nil
	})
	return out, err
}

// UseOnce is Use for what ReadOnce reads.
func UseOnce(path string, f func([]byte) error) error {
	fd, err := openRetry(path)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := bufs.Get().(*[bufSize]byte)
	defer bufs.Put(b)
	for {
		n, err := unix.Read(fd, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: path, Err: err}
		}
		return f(b[:n])
	}
}

func openRetry(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
