package main

import (
	"flag"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/mountns"
)

func argsContext(args ...string) *cli.Context {
	set := flag.NewFlagSet("restore", flag.ContinueOnError)
	set.Parse(args)
	return cli.NewContext(newApp(), set, nil)
}

func TestIDAndCRIUArgs(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		id    string
		extra []string
		ok    bool
	}{
		{[]string{"c1"}, "c1", nil, true},
		{[]string{"c1", "--", "--ghost-limit", "1M"}, "c1", []string{"--ghost-limit", "1M"}, true},
		{[]string{"--", "--ghost-limit", "1M", "c1"}, "c1", []string{"--ghost-limit", "1M"}, true},
		{[]string{"c1", "--detach"}, "", nil, false},
		{[]string{}, "", nil, false},
	} {
		c := argsContext(tc.args...)
		c.Command = &cli.Command{Name: "restore"}
		id, extra, err := idAndCRIUArgs(c)
		if (err == nil) != tc.ok || id != tc.id || (len(extra) > 0 || len(tc.extra) > 0) && !reflect.DeepEqual(extra, tc.extra) {
			t.Errorf("idAndCRIUArgs(%q) = %q, %q, %v", tc.args, id, extra, err)
		}
	}
}

// The C constructor of internal/mountns finds the command of a tree
// restore by skipping global flags: it must know which take a value.
func TestMountnsKnowsGlobalFlags(t *testing.T) {
	for _, f := range newApp().Flags {
		tv, ok := f.(interface{ TakesValue() bool })
		takesValue := ok && tv.TakesValue()
		for _, name := range f.Names() {
			if got := mountns.IsValueFlag(name); got != takesValue {
				t.Errorf("global flag --%s: takes a value = %v, internal/mountns says %v", name, takesValue, got)
			}
		}
	}
}
