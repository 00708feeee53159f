package phasetrace

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestAppendOrdersMarks(t *testing.T) {
	f := filepath.Join(t.TempDir(), "trace")
	for _, p := range []string{"a", "b", "c"} {
		Append(f, p)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("trace = %q, want 3 lines", b)
	}
	var last int64
	for i, l := range lines {
		ns, phase, ok := strings.Cut(l, " ")
		t0, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil || phase != string(rune('a'+i)) {
			t.Fatalf("line %q: want \"<ns> %c\"", l, 'a'+i)
		}
		if t0 < last {
			t.Errorf("marks go back in time: %q", b)
		}
		last = t0
	}
}

func TestMarkWithoutTraceWritesNothing(t *testing.T) {
	if Enabled() {
		t.Skipf("%s is set for this test run", Env)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	Mark("x")
	if EnvEntry() != "" {
		t.Errorf("EnvEntry = %q without tracing", EnvEntry())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("Mark without tracing wrote %v", ents)
	}
}
