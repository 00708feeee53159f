package criuns

import (
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Cmdline
	}{
		{[]string{"restore", "-D", "/img", "-d", "--pidfile", "p"},
			Cmdline{Command: "restore", ImagesDir: "/img", Detach: true, PidFile: "p"}},
		{[]string{"restore", "--images-dir=/img", "-W/work", "--restore-detached", "--criu-binary", "/c", "-v4", "--tcp-established"},
			Cmdline{Command: "restore", ImagesDir: "/img", WorkDir: "/work", Detach: true, CRIU: "/c", Rest: []string{"-v4", "--tcp-established"}}},
		{[]string{"dump", "--tree", "42", "-D", "d", "-R", "--shell-job"},
			Cmdline{Command: "dump", Tree: "42", ImagesDir: "d", Leave: true, ShellJob: true}},
		{[]string{"-v4", "dump", "-t42", "--leave-running", "-j"},
			Cmdline{Command: "dump", Tree: "42", Leave: true, ShellJob: true, Rest: []string{"-v4"}}},
		{[]string{"restore", "-S", "-D", "x"}, Cmdline{Command: "restore", ImagesDir: "x"}},
		// Ours, and not CRIU's own --timeout, which goes on to CRIU.
		{[]string{"dump", "-t", "1", "--criu-ns-timeout", "30s", "--timeout", "5"},
			Cmdline{Command: "dump", Tree: "1", Timeout: "30s", Rest: []string{"--timeout", "5"}}},
		{[]string{"check", "--feature", "mem_dirty_track"}, Cmdline{Command: "check", Rest: []string{"--feature", "mem_dirty_track"}}},
		{[]string{"migrate", "--to", "10.0.0.2:7000", "-t", "42", "--lazy", "--criu-ns-timeout=5s", "--tcp-established"},
			Cmdline{Command: "migrate", To: "10.0.0.2:7000", Tree: "42", Lazy: true, Timeout: "5s", Rest: []string{"--tcp-established"}}},
		{[]string{"migrate", "--to=h:1", "--tree", "7", "--pre-copy", "3", "-W", "/w"},
			Cmdline{Command: "migrate", To: "h:1", Tree: "7", PreCopy: "3", WorkDir: "/w"}},
	} {
		got, err := Parse(tc.args)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("Parse(%q) =\n %+v\nwant\n %+v", tc.args, *got, tc.want)
		}
	}
}

func TestParseMissingValue(t *testing.T) {
	for _, args := range [][]string{{"restore", "-D"}, {"dump", "--tree"}, {"restore", "--pidfile"}} {
		if _, err := Parse(args); err == nil {
			t.Errorf("Parse(%q) accepted an option without its value", args)
		}
	}
}

func TestMigrateOptionsElsewhere(t *testing.T) {
	for _, args := range [][]string{{"dump", "-t", "1", "--lazy"}, {"restore", "--to", "h:1"}, {"check", "--pre-copy", "2"}} {
		if _, err := run(args, Env{Root: t.TempDir()}); err == nil {
			t.Errorf("criu-ns %q: accepted an option of migrate", args)
		}
	}
}

func TestCRIUFeatures(t *testing.T) {
	o := criuFeatures([]string{"-v4", "--tcp-established", "-l", "--ext-unix-sk", "--ghost-limit", "1M"})
	if !o.TCPEstablished || !o.FileLocks || !o.ExtUnixSk || !reflect.DeepEqual(o.Extra, []string{"-v4", "--ghost-limit", "1M"}) {
		t.Errorf("criuFeatures: %+v", o)
	}
}
