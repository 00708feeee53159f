package crashpoint

import (
	"reflect"
	"testing"
)

func TestStrip(t *testing.T) {
	in := []string{"A=1", Env + "=checkpoint.after-journal", "B=2", Env + "X=3"}
	want := []string{"A=1", "B=2", Env + "X=3"}
	if got := Strip(in); !reflect.DeepEqual(got, want) {
		t.Errorf("Strip = %q, want %q", got, want)
	}
	if in[1] != Env+"=checkpoint.after-journal" {
		t.Error("Strip changed its argument")
	}
}

// In a normal build a crash point is nothing.
func TestHitWithoutTag(t *testing.T) {
	t.Setenv(Env, "x")
	Hit("x")
}
