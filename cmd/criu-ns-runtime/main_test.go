package main

import (
	"flag"
	"reflect"
	"testing"

	"github.com/urfave/cli/v2"
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
