package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abc", true}, {"a.b-c_d+e", true}, {"123", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"../x", false},
		{"a b", false}, {"a\nb", false}, {"a:b", false}, {strings.Repeat("x", 1025), false},
	} {
		if err := ValidateID(tc.id); (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestCreateLockRemove(t *testing.T) {
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	l, err := r.Create("one")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create("one"); !errors.Is(err, ErrExist) {
		t.Fatalf("second Create = %v, want ErrExist", err)
	}
	got := make(chan error)
	go func() {
		l2, err := r.Lock("one")
		if err == nil {
			l2.Unlock()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("Lock returned %v while the lock was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := r.Remove("one"); err != nil {
		t.Fatal(err)
	}
	l.Unlock()
	if err := <-got; !errors.Is(err, ErrNotExist) {
		t.Fatalf("Lock after Remove = %v, want ErrNotExist", err)
	}
	if _, err := r.Lock("two"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Lock(unknown) = %v, want ErrNotExist", err)
	}
	if _, err := r.Create("a/b"); err == nil {
		t.Fatal("Create accepted an id with '/'")
	}
}

func TestIDsAndMeta(t *testing.T) {
	r, _ := OpenRoot(t.TempDir())
	for _, id := range []string{"b", "a"} {
		l, err := r.Create(id)
		if err != nil {
			t.Fatal(err)
		}
		l.Unlock()
	}
	ids, err := r.IDs()
	if err != nil || !reflect.DeepEqual(ids, []string{"a", "b"}) {
		t.Fatalf("IDs = %v, %v", ids, err)
	}
	dir := r.ContainerDir("a")
	if _, err := ReadMeta(dir); !errors.Is(err, ErrNotExist) {
		t.Fatalf("ReadMeta before write = %v", err)
	}
	want := &Meta{ID: "a", Kind: KindTree, ImagePath: "/img", RootPid: 10, RootNsPid: 2, Created: time.Unix(5, 0).UTC()}
	if err := WriteMeta(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMeta(dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadMeta = %+v, %v; want %+v", got, err, want)
	}
	// The kind is never guessed: a meta.json without one is an error.
	if err := WriteMeta(dir, &Meta{ID: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadMeta(dir); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Fatalf("ReadMeta of a meta.json without kind = %v, want an error naming the kind", err)
	}
}

func TestTryLock(t *testing.T) {
	r, _ := OpenRoot(t.TempDir())
	l, err := r.Create("busy")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.TryLock("busy"); !errors.Is(err, ErrBusy) {
		t.Fatalf("TryLock of a held lock = %v, want ErrBusy", err)
	}
	// The lock belongs to the open file: a child holding it keeps it.
	if l.File() == nil {
		t.Fatal("a held lock has no file")
	}
	l.Unlock()
	l2, err := r.TryLock("busy")
	if err != nil {
		t.Fatalf("TryLock of a free lock: %v", err)
	}
	l2.Unlock()
	if _, err := r.TryLock("none"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("TryLock(unknown) = %v, want ErrNotExist", err)
	}
}

func TestJournal(t *testing.T) {
	dir := t.TempDir()
	var j struct{ A string }
	if err := ReadJournal(dir, &j); !errors.Is(err, ErrNotExist) || HasJournal(dir) {
		t.Fatalf("no journal yet: ReadJournal = %v, HasJournal = %v", err, HasJournal(dir))
	}
	if err := WriteJournal(dir, struct{ A string }{"x"}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{CheckpointExitFile, CheckpointCRIUPidFile, CheckpointStderrFile} {
		os.WriteFile(filepath.Join(dir, f), []byte("1"), 0o600)
	}
	if err := ReadJournal(dir, &j); err != nil || j.A != "x" || !HasJournal(dir) {
		t.Fatalf("ReadJournal = %+v, %v", j, err)
	}
	if err := RemoveJournal(dir); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("RemoveJournal left %d files", len(ents))
	}
}

// A corrupt meta.json is an error naming the file and saying what is
// wrong with it, never a bare "EOF".
func TestCorruptMeta(t *testing.T) {
	dir := t.TempDir()
	p := MetaPath(dir)
	for content, want := range map[string]string{
		"":                        "the file is empty",
		`{"id":"a","kind":"tr`:    "truncated after 20 bytes",
		"Lorem ipsum":             "invalid character 'L'",
		`{"id":"a","kind":"odd"}`: `unknown container kind "odd"`,
	} {
		os.WriteFile(p, []byte(content), 0o600)
		_, err := ReadMeta(dir)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadMeta of %q = %v, want an error naming %s and %q", content, err, p, want)
		}
	}
}
