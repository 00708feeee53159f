package smallfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, 4095, 4096, 4097, 3*4096 + 17} {
		want := bytes.Repeat([]byte{'x'}, size)
		p := filepath.Join(dir, strconv.Itoa(size))
		if err := os.WriteFile(p, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := Read(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("Read of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestReadOnceProcStat(t *testing.T) {
	b, err := ReadOnce("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(strconv.Itoa(os.Getpid())+" (")) || !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("/proc/self/stat read once: %q", b)
	}
}

// TestUse: f gets the whole file, and Use returns f's error.
func TestUse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	want := bytes.Repeat([]byte("0123456789"), 500) // more than one buffer
	if err := os.WriteFile(p, want, 0o600); err != nil {
		t.Fatal(err)
	}
	errF := errors.New("from f")
	var got []byte
	err := Use(p, func(b []byte) error {
		got = bytes.Clone(b)
		return errF
	})
	if err != errF || !bytes.Equal(got, want) {
		t.Errorf("Use: %d bytes, %v; want %d bytes and f's error", len(got), err, len(want))
	}
	if err := Use(p+"-missing", func([]byte) error { t.Error("f called for a missing file"); return nil }); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Use of a missing file: %v, want fs.ErrNotExist", err)
	}
}
