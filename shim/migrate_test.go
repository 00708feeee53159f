package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrateOptionsCheck(t *testing.T) {
	good := MigrateOptions{ID: "web", To: "10.0.0.2:7000"}
	if err := good.check(); err != nil || good.Timeout != DefaultMigrateTimeout {
		t.Errorf("good options: %v (timeout %v)", err, good.Timeout)
	}
	for _, tc := range []struct {
		o    MigrateOptions
		want string
	}{
		{MigrateOptions{ID: "web"}, "--to"},
		{MigrateOptions{ID: "web", To: "nohost"}, "nohost"},
		{MigrateOptions{ID: "web", To: "h:1", Lazy: true, PreCopy: 2}, "cannot be combined"},
		{MigrateOptions{ID: "web", To: "h:1", PreCopy: -1}, "--pre-copy"},
		{MigrateOptions{ID: "web", To: "h:1", CRIU: CRIUOptions{ShellJob: true}}, "--shell-job"},
		{MigrateOptions{ID: "web", To: "h:1", CRIU: CRIUOptions{Extra: []string{"--action-script", "x"}}}, "--action-script"},
		{MigrateOptions{ID: "web", To: "h:1", CRIU: CRIUOptions{Extra: []string{"--leave-running"}}}, "--leave-running"},
		{MigrateOptions{ID: "web", To: "h:1", CRIU: CRIUOptions{Extra: []string{"--images-dir=/x"}}}, "--images-dir"},
		{MigrateOptions{ID: "web", To: "h:1", CRIU: CRIUOptions{Extra: []string{"-D/x"}}}, "-D"},
	} {
		err := tc.o.check()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.o, err, tc.want)
		}
	}
}

// The janitor undoes a dead receive's journal, newest first, and nothing
// of a receive that said forget.
func TestJanitor(t *testing.T) {
	dir := t.TempDir()
	made, emptied := filepath.Join(dir, "made"), filepath.Join(dir, "emptied")
	reset := func() {
		os.RemoveAll(made)
		os.MkdirAll(filepath.Join(made, "pre-1"), 0o755)
		os.MkdirAll(emptied, 0o755)
		os.WriteFile(filepath.Join(emptied, "core-1.img"), []byte("x"), 0o644)
	}
	rt := &Runtime{}
	journal := `{"op":"remove","arg":"` + made + `"}` + "\n" + `{"op":"empty","arg":"` + emptied + `"}` + "\n"

	reset()
	if err := rt.RunJanitor(strings.NewReader(journal + `{"op":"forget"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(emptied, "core-1.img")); err != nil {
		t.Errorf("a forgotten journal was undone: %v", err)
	}

	reset()
	if err := rt.RunJanitor(strings.NewReader(journal)); err != nil { // the receive died
		t.Fatal(err)
	}
	if _, err := os.Stat(made); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", made, err)
	}
	if ents, _ := os.ReadDir(emptied); len(ents) != 0 {
		t.Errorf("%s still holds %v", emptied, ents)
	}
	if _, err := os.Stat(emptied); err != nil {
		t.Errorf("the directory that was there before is gone: %v", err)
	}
}
