package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

// SendImages sends the image files of dir, then ImagesDone.
func (c *Conn) SendImages(dir string) (ImagesDone, error) {
	var done ImagesDone
	files, err := imageFiles(dir)
	if err != nil {
		return done, err
	}
	buf := make([]byte, dataChunk)
	for _, e := range files {
		n, err := c.sendFile(filepath.Join(dir, e.Name()), buf)
		if err != nil {
			return done, err
		}
		done.Files++
		done.Bytes += n
	}
	return done, c.Send(done)
}

func (c *Conn) sendFile(path string, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if err := c.Send(File{Name: filepath.Base(path), Size: fi.Size()}); err != nil {
		return 0, err
	}
	var sent int64
	for sent < fi.Size() {
		n, err := f.Read(buf[:min(int64(len(buf)), fi.Size()-sent)])
		if n > 0 {
			if err := c.Send(Data(buf[:n])); err != nil {
				return sent, err
			}
			sent += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return sent, err
		}
	}
	if sent != fi.Size() {
		return sent, fmt.Errorf("image %s changed size while it was sent", path)
	}
	return sent, nil
}

// ReceiveFile stores the file f announces in dir, from the Data frames
// that follow it. It never replaces a file.
func (c *Conn) ReceiveFile(dir string, f File) error {
	if !ValidImageName(f.Name) {
		return fmt.Errorf("refusing an image file named %q", f.Name)
	}
	if f.Size < 0 {
		return fmt.Errorf("image file %s of %d bytes", f.Name, f.Size)
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
		m, err := c.Recv()
		if err != nil {
			return err
		}
		d, ok := m.(Data)
		if !ok {
			return fmt.Errorf("image file %s cut short at %d of %d bytes by %s", f.Name, got, f.Size, Name(m))
		}
		if got+int64(len(d)) > f.Size {
			return fmt.Errorf("image file %s is longer than the %d bytes announced", f.Name, f.Size)
		}
		if _, err := out.Write(d); err != nil {
			return err
		}
		got += int64(len(d))
	}
	return out.Close()
}
