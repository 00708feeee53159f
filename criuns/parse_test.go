package criuns

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
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
		// Global options before the command, as CRIU's getopt takes them.
		{[]string{"-v4", "dump", "-t42", "--leave-running", "-j"},
			Cmdline{Command: "dump", Tree: "42", Leave: true, ShellJob: true, Rest: []string{"-v4"}}},
		{[]string{"-o", "x.log", "restore", "-D", "img"},
			Cmdline{Command: "restore", LogFile: "x.log", ImagesDir: "img"}},
		{[]string{"--log-file=x.log", "-W", "w", "restore"},
			Cmdline{Command: "restore", LogFile: "x.log", WorkDir: "w"}},
		// Bundled short options; an optional value (-v) takes the rest of
		// the bundle, a required one (-D) the rest or the next argument.
		{[]string{"restore", "-dv4", "-D", "i"},
			Cmdline{Command: "restore", Detach: true, ImagesDir: "i", Rest: []string{"-v4"}}},
		{[]string{"-vvvv", "restore", "-djD/i"},
			Cmdline{Command: "restore", Detach: true, ShellJob: true, ImagesDir: "/i", Rest: []string{"-vvvv"}}},
		{[]string{"restore", "-jD", "/i", "-v"},
			Cmdline{Command: "restore", ShellJob: true, ImagesDir: "/i", Rest: []string{"-v"}}},
		// A detached optional value is an argument, as in getopt.
		{[]string{"restore", "-v", "4"}, Cmdline{Command: "restore", Args: []string{"4"}, Rest: []string{"-v"}}},
		{[]string{"restore", "--verbosity=4", "--manage-cgroups", "--ext-unix-sk=ino"},
			Cmdline{Command: "restore", Rest: []string{"--verbosity=4", "--manage-cgroups", "--ext-unix-sk=ino"}}},
		{[]string{"restore", "-S", "-D", "x"}, Cmdline{Command: "restore", ImagesDir: "x", Sibling: true}},
		{[]string{"restore", "--restore-sibling", "--no-restore-sibling"}, Cmdline{Command: "restore"}},
		{[]string{"restore", "--daemon", "--no-shell-job", "-j"}, Cmdline{Command: "restore", Detach: true, ShellJob: true}},
		// Options that take values keep them, whatever the value looks like.
		{[]string{"dump", "-t", "7", "-L", "-x", "--ghost-limit", "restore", "-M", "mnt[]:/x"},
			Cmdline{Command: "dump", Tree: "7", Rest: []string{"-L", "-x", "--ghost-limit=restore", "-M", "mnt[]:/x"}}},
		// Unambiguous abbreviations of long options.
		{[]string{"restore", "--images=/i", "--restore-d", "--pidf", "p", "--criu-b=/c"},
			Cmdline{Command: "restore", ImagesDir: "/i", Detach: true, PidFile: "p", CRIU: "/c"}},
		// Ours, and not CRIU's own --timeout, which goes on to CRIU.
		{[]string{"dump", "-t", "1", "--criu-ns-timeout", "30s", "--timeout", "5"},
			Cmdline{Command: "dump", Tree: "1", Timeout: "30s", Rest: []string{"--timeout=5"}}},
		{[]string{"swrk", "3"}, Cmdline{Command: "swrk", Args: []string{"3"}}},
		{[]string{"check", "--feature", "mem_dirty_track"}, Cmdline{Command: "check", Rest: []string{"--feature=mem_dirty_track"}}},
		{[]string{"cpuinfo", "dump"}, Cmdline{Command: "cpuinfo", Args: []string{"dump"}}},
		{[]string{"restore", "--exec-cmd", "--", "sh", "-c", "x"},
			Cmdline{Command: "restore", ExecCmd: true, Args: []string{"sh", "-c", "x"}}},
		{[]string{"-h"}, Cmdline{Help: true}},
		{[]string{"--version"}, Cmdline{Version: true}},
		{[]string{"migrate", "--to", "10.0.0.2:7000", "-t", "42", "--lazy", "--criu-ns-timeout=5s", "--tcp-established"},
			Cmdline{Command: "migrate", To: "10.0.0.2:7000", Tree: "42", Lazy: true, Timeout: "5s", Rest: []string{"--tcp-established"}}},
		{[]string{"migrate", "--to=h:1", "--tree", "7", "--pre-copy", "3", "-W", "/w"},
			Cmdline{Command: "migrate", To: "h:1", Tree: "7", PreCopy: "3", WorkDir: "/w"}},
		{[]string{"dump", "-t", "7", "-D", "full", "--prev-images-dir", "../pre", "--track-mem"},
			Cmdline{Command: "dump", Tree: "7", ImagesDir: "full", PrevImagesDir: "../pre", TrackMem: true}},
		{[]string{"pre-dump", "-t", "7", "-D", "pre2", "--prev-images-dir=../pre1"},
			Cmdline{Command: "pre-dump", Tree: "7", ImagesDir: "pre2", PrevImagesDir: "../pre1"}},
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

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "-D"}, "-D needs a value"},
		{[]string{"dump", "--tree"}, "--tree needs a value"},
		{[]string{"restore", "--pidfile"}, "--pidfile needs a value"},
		{[]string{"restore", "-dq"}, "unknown option -q"},
		{[]string{"restore", "--no-such-option"}, "unknown option --no-such-option"},
		{[]string{"restore", "--shell-job=yes"}, "--shell-job takes no value"},
		{[]string{"restore", "--tcp"}, "ambiguous"},
	} {
		_, err := Parse(tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", tc.args, err, tc.want)
		}
	}
}

func TestWithoutCRIUNsOptions(t *testing.T) {
	got := withoutCRIUNsOptions([]string{"-v4", "--criu-binary", "/c", "check", "--criu-ns-timeout=1s", "--criu-binary=/d",
		"--criu-ns-timeout", "2s", "--feature", "x", "--", "--criu-binary"})
	want := []string{"-v4", "check", "--feature", "x", "--", "--criu-binary"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// criuSource is CRIU's source tree: the one scripts/install-criu.sh keeps.
func criuSource(t *testing.T) string {
	dir := os.Getenv("CRIU_SRC")
	if dir == "" {
		dir = "/var/cache/criu-ns-runtime/criu-build/criu-4.1.1"
	}
	if _, err := os.Stat(filepath.Join(dir, "criu", "config.c")); err != nil {
		t.Fatalf("CRIU's source tree is needed to check the option table: %v (run `make deps`, or set CRIU_SRC)", err)
	}
	return dir
}

// TestOptionTableIsCRIUs checks criuShortOpts and criuLongOpts against
// the getopt_long table in CRIU's criu/config.c.
func TestOptionTableIsCRIUs(t *testing.T) {
	src := criuSource(t)
	b, err := os.ReadFile(filepath.Join(src, "criu", "config.c"))
	if err != nil {
		t.Fatal(err)
	}
	config := string(b)

	short := regexp.MustCompile(`short_opts\[\] = "([^"]*)"`).FindStringSubmatch(config)
	if short == nil {
		t.Fatal("no short_opts in config.c")
	}
	if short[1] != criuShortOpts {
		t.Errorf("config.c's short options are %q, criuShortOpts is %q", short[1], criuShortOpts)
	}

	macros := stringMacros(t, filepath.Join(src, "criu", "include"))
	start := strings.Index(config, "long_opts[] = {")
	end := strings.Index(config[start:], "{},")
	if start < 0 || end < 0 {
		t.Fatal("no long_opts table in config.c")
	}
	table := config[start : start+end]
	name := func(s string) string {
		if v, err := unquote(s); err == nil {
			return v
		}
		v, ok := macros[s]
		if !ok {
			t.Fatalf("config.c names option %s, which no header defines", s)
		}
		return v
	}
	var want []string
	entry := regexp.MustCompile(`\{\s*([A-Z_]+|"[^"]+")\s*,\s*(no|required|optional)_argument\s*,\s*[^,]+,\s*([^}]+?)\s*\}`)
	for _, m := range entry.FindAllStringSubmatch(table, -1) {
		short := ""
		if v := strings.Trim(m[3], "'"); len(m[3]) == 3 && m[3][0] == '\'' {
			short = v
		}
		want = append(want, name(m[1])+" "+m[2]+" "+short)
	}
	boolEntry := regexp.MustCompile(`BOOL_OPT\(\s*([A-Z_]+|"[^"]+")\s*,`)
	for _, m := range boolEntry.FindAllStringSubmatch(table, -1) {
		n := name(m[1])
		want = append(want, n+" no ", "no-"+n+" no ")
	}
	var got []string
	kinds := map[argKind]string{noArg: "no", requiredArg: "required", optionalArg: "optional"}
	for _, o := range criuLongOpts {
		short := ""
		if o.short != 0 {
			short = string(o.short)
		}
		got = append(got, o.name+" "+kinds[o.arg]+" "+short)
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) < 100 {
		t.Fatalf("found only %d long options in config.c: the table format changed", len(want))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("criuLongOpts differs from config.c:\n ours:  %q\n CRIU's: %q", diff(got, want), diff(want, got))
	}
}

// stringMacros collects `#define NAME "value"` from the headers in dir.
func stringMacros(t *testing.T, dir string) map[string]string {
	files, err := filepath.Glob(filepath.Join(dir, "*.h"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no headers in %s: %v", dir, err)
	}
	def := regexp.MustCompile(`(?m)^#define\s+([A-Z_]+)\s+("[^"]*")`)
	macros := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range def.FindAllStringSubmatch(string(b), -1) {
			v, _ := unquote(m[2])
			macros[m[1]] = v
		}
	}
	return macros
}

func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", os.ErrInvalid
	}
	return s[1 : len(s)-1], nil
}

// diff lists what a has and b lacks.
func diff(a, b []string) []string {
	in := map[string]bool{}
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if !in[s] {
			out = append(out, s)
		}
	}
	return out
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
