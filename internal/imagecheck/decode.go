package imagecheck

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/magic"
	"google.golang.org/protobuf/proto"
)

var magics = sync.OnceValue(magic.LoadMagic)

// decode reads the image name of this directory, of the given kind (its
// magic's name in go-criu, "PSTREE"): it checks the magic and the entry
// framing, then has crit decode the entries as entry's type (crit knows a
// pagemap's head by itself). There is at least one entry.
func (d *imageDir) decode(name, kind string, entry proto.Message) ([]*crit.CriuEntry, error) {
	// O_NONBLOCK: a FIFO in place of an image must not block us.
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, d.fail(name, "is missing")
	}
	if err != nil {
		return nil, d.fail(name, "cannot be read: %v", unwrap(err))
	}
	defer f.Close()
	st, err := f.Stat()
	switch {
	case err != nil:
		return nil, d.fail(name, "cannot be read: %v", unwrap(err))
	case !st.Mode().IsRegular():
		return nil, d.fail(name, "is not a regular file")
	case st.Size() == 0:
		return nil, d.fail(name, "is empty (0 bytes)")
	}
	if err := d.checkFraming(bufio.NewReaderSize(f, 64<<10), name, kind, st.Size()); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, d.fail(name, "cannot be read: %v", unwrap(err))
	}
	img, err := crit.New(f, nil, "", false, true).Decode(entry)
	if err != nil {
		return nil, d.fail(name, "does not decode (%v): the image is corrupt", err)
	}
	if len(img.Entries) == 0 {
		return nil, d.fail(name, "holds no entries: the image is truncated")
	}
	return img.Entries, nil
}

// checkFraming checks an image's magic and that its entries, each a
// 32-bit little-endian size and that many bytes, fill it exactly.
func (d *imageDir) checkFraming(r *bufio.Reader, name, kind string, size int64) error {
	var off int64
	u32 := func() (uint32, bool) {
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, false
		}
		off += 4
		return binary.LittleEndian.Uint32(b[:]), true
	}
	tooShort := func() error {
		return d.fail(name, "is %d bytes long, too short for a CRIU image: the image is truncated", size)
	}
	want := uint32(magics().ByName[kind])
	head := uint32(magics().ByName["IMG_COMMON"])
	m, ok := u32()
	if !ok {
		return tooShort()
	}
	// The inventory never has the head magic; it says whether the others do.
	withHead := kind != "INVENTORY" && d.version == imagesV11
	switch {
	case withHead && m == want:
		return d.fail(name, "lacks the head magic every image of format version %d starts with: the image is corrupt", imagesV11)
	case withHead && m == head:
		if m, ok = u32(); !ok {
			return tooShort()
		}
	case kind == "INVENTORY" && m == head:
		return d.fail(name, "starts with a head magic, which an inventory never has: the image is corrupt")
	case !withHead && m == head:
		return d.fail(name, "starts with a head magic, which images of format version %d do not have: the image is corrupt", d.version)
	}
	if m != want {
		if other, known := magics().ByValue[uint64(m)]; known {
			return d.fail(name, "is a CRIU %s image, not %s: the image is corrupt", other, kind)
		}
		return d.fail(name, "is not a CRIU %s image (magic %#x): the image is corrupt", kind, m)
	}
	for n := 1; off < size; n++ {
		if left := size - off; left < 4 {
			return d.fail(name, "ends %d bytes into the header of entry %d: the image is truncated", left, n)
		}
		sz, ok := u32()
		if !ok {
			return tooShort()
		}
		if left := size - off; int64(sz) > left {
			return d.fail(name, "entry %d claims %d bytes but only %d are left: the image is truncated", n, sz, left)
		}
		if _, err := r.Discard(int(sz)); err != nil {
			return d.fail(name, "cannot be read: %v", err)
		}
		off += int64(sz)
	}
	return nil
}
