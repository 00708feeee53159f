package migrate

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ValidImageName says whether a File may be stored under name: a plain
// file name CRIU could have written, nothing that leaves the directory
// or replaces the "parent" link of an incremental dump.
func ValidImageName(name string) bool {
	if name == "" || len(name) > 255 || name == "." || name == ".." || name == "parent" {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// imageFiles lists what of dir travels: regular files, not CRIU's logs.
// (Memory went to the page server; pre-dump directories and the parent
// link are the destination's own.)
func imageFiles(dir string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []os.DirEntry
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".log") && ValidImageName(e.Name()) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// copyChunk is how much of a file one deadline covers: a copy that
// makes no progress for the timeout fails, a slow one does not.
const copyChunk = 16 << 20

// SendImages sends the image files of dir, for the destination's
// directory remote ("" or a pre-dump round's): File on the control
// connection, the bytes on data (sendfile), then ImagesDone.
func (c *Conn) SendImages(dir, remote string, data net.Conn) (ImagesDone, error) {
	var done ImagesDone
	files, err := imageFiles(dir)
	if err != nil {
		return done, err
	}
	for _, e := range files {
		n, err := c.sendFile(filepath.Join(dir, e.Name()), remote, data)
		if err != nil {
			return done, err
		}
		done.Files++
		done.Bytes += n
	}
	return done, c.Send(done)
}

// ValidRoundDir says whether a File may name dir as its directory.
func ValidRoundDir(dir string) bool {
	n, ok := strings.CutPrefix(dir, "pre-")
	if !ok || n == "" || len(n) > 4 {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (c *Conn) sendFile(path, remote string, data net.Conn) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := c.Send(File{Name: filepath.Base(path), Size: fi.Size(), Dir: remote}); err != nil {
		return 0, err
	}
	var sent int64
	for sent < fi.Size() {
		data.SetWriteDeadline(time.Now().Add(c.timeout))
		// A TCP connection reading from a limited file: sendfile(2).
		n, err := io.Copy(data, io.LimitReader(f, min(copyChunk, fi.Size()-sent)))
		sent += n
		if err != nil {
			return sent, lost(c.peer, c.timeout, err)
		}
		if n == 0 {
			return sent, fmt.Errorf("image %s shrank while it was sent", path)
		}
	}
	return sent, nil
}

// ReceiveFile stores the file f announces in dir, reading its bytes from
// data (splice). It never replaces a file.
func (c *Conn) ReceiveFile(dir string, f File, data net.Conn) error {
	if !ValidImageName(f.Name) {
		return fmt.Errorf("refusing an image file named %q", f.Name)
	}
	if f.Size < 0 {
		return fmt.Errorf("image file %s of %d bytes", f.Name, f.Size)
	}
	if f.Dir != "" {
		if !ValidRoundDir(f.Dir) {
			return fmt.Errorf("refusing an image file for the directory %q", f.Dir)
		}
		dir = filepath.Join(dir, f.Dir)
	}
	out, err := os.OpenFile(filepath.Join(dir, f.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("image file %s sent twice", f.Name)
		}
		return err
	}
	defer out.Close()
	var got int64
	for got < f.Size {
		data.SetReadDeadline(time.Now().Add(c.timeout))
		// A file reading from a limited TCP connection: splice(2).
		n, err := io.CopyN(out, data, min(copyChunk, f.Size-got))
		got += n
		if err != nil {
			return fmt.Errorf("image file %s cut short at %d of %d bytes: %w", f.Name, got, f.Size, lost(c.peer, c.timeout, err))
		}
	}
	return out.Close()
}
