package criuns

// CRIU's command-line options, as criu/config.c of CRIU 4.1.1 declares
// them for getopt_long(3). criu-ns mode must know every one of them, and
// whether it takes a value, to find the command and the options it acts
// on wherever they are on the line, as CRIU does (getopt permutes: global
// options may come before the command). parse_test.go checks this table
// against config.c in the CRIU source tree.

// argKind is getopt's has_arg.
type argKind int

const (
	noArg       argKind = iota // --flag
	requiredArg                // --flag VALUE, --flag=VALUE, -fVALUE, -f VALUE
	optionalArg                // --flag or --flag=VALUE; -f or -fVALUE
)

// criuShortOpts is config.c's short option string.
const criuShortOpts = "dSsRt:hD:o:v::x::Vr:jJ:lW:L:M:"

// longOpt is one entry of config.c's long_opts; short is the short
// option it is the same as, if any.
type longOpt struct {
	name  string
	arg   argKind
	short byte
}

// boolOpt is config.c's BOOL_OPT: --NAME and --no-NAME.
func boolOpt(name string) []longOpt {
	return []longOpt{{name: name}, {name: "no-" + name}}
}

var criuLongOpts = concat(
	[]longOpt{
		{"tree", requiredArg, 't'},
		{"leave-stopped", noArg, 's'},
		{"leave-running", noArg, 'R'},
	},
	boolOpt("restore-detached"),
	boolOpt("restore-sibling"),
	boolOpt("daemon"),
	[]longOpt{
		{"images-dir", requiredArg, 'D'},
		{"work-dir", requiredArg, 'W'},
		{"log-file", requiredArg, 'o'},
		{"join-ns", requiredArg, 'J'},
		{"root", requiredArg, 'r'},
		{"ext-unix-sk", optionalArg, 'x'},
		{"help", noArg, 'h'},
	},
	boolOpt("tcp-established"),
	[]longOpt{{"close", requiredArg, 0}},
	boolOpt("log-pid"),
	[]longOpt{{"version", noArg, 'V'}},
	boolOpt("evasive-devices"),
	[]longOpt{
		{"pidfile", requiredArg, 0},
		{"veth-pair", requiredArg, 0},
		{"action-script", requiredArg, 0},
	},
	boolOpt("link-remap"),
	boolOpt("shell-job"),
	boolOpt("file-locks"),
	boolOpt("page-server"),
	[]longOpt{
		{"address", requiredArg, 0},
		{"port", requiredArg, 0},
		{"prev-images-dir", requiredArg, 0},
		{"ms", noArg, 0},
	},
	boolOpt("track-mem"),
	boolOpt("auto-dedup"),
	[]longOpt{
		{"libdir", requiredArg, 'L'},
		{"cpu-cap", optionalArg, 0},
	},
	boolOpt("force-irmap"),
	[]longOpt{
		{"ext-mount-map", requiredArg, 'M'},
		{"exec-cmd", noArg, 0},
		{"manage-cgroups", optionalArg, 0},
		{"cgroup-root", requiredArg, 0},
		{"inherit-fd", requiredArg, 0},
		{"feature", requiredArg, 0},
		{"skip-mnt", requiredArg, 0},
		{"enable-fs", requiredArg, 0},
		{"enable-external-sharing", noArg, 0},
		{"enable-external-masters", noArg, 0},
		{"freeze-cgroup", requiredArg, 0},
		{"ghost-limit", requiredArg, 0},
		{"irmap-scan-path", requiredArg, 0},
		{"lsm-profile", requiredArg, 0},
		{"timeout", requiredArg, 0},
		{"external", requiredArg, 0},
		{"empty-ns", requiredArg, 0},
		{"lazy-pages", noArg, 0},
	},
	boolOpt("extra"),
	boolOpt("experimental"),
	[]longOpt{
		{"all", noArg, 0},
		{"cgroup-props", requiredArg, 0},
		{"cgroup-props-file", requiredArg, 0},
		{"cgroup-dump-controller", requiredArg, 0},
	},
	boolOpt("skip-in-flight"),
	boolOpt("deprecated"),
	boolOpt("display-stats"),
	boolOpt("weak-sysctls"),
	[]longOpt{{"status-fd", requiredArg, 0}},
	boolOpt("tcp-close"),
	[]longOpt{
		{"verbosity", optionalArg, 'v'},
		{"ps-socket", requiredArg, 0},
	},
	boolOpt("stream"),
	[]longOpt{
		{"config", requiredArg, 0},
		{"no-default-config", noArg, 0},
		{"tls-cacert", requiredArg, 0},
		{"tls-cacrl", requiredArg, 0},
		{"tls-cert", requiredArg, 0},
		{"tls-key", requiredArg, 0},
	},
	boolOpt("tls"),
	[]longOpt{
		{"tls-no-cn-verify", noArg, 0},
		{"cgroup-yard", requiredArg, 0},
		{"pre-dump-mode", requiredArg, 0},
		{"file-validation", requiredArg, 0},
	},
	boolOpt("skip-file-rwx-check"),
	[]longOpt{
		{"lsm-mount-context", requiredArg, 0},
		{"network-lock", requiredArg, 0},
	},
	boolOpt("mntns-compat-mode"),
	boolOpt("unprivileged"),
	boolOpt("ghost-fiemap"),
)

// criuNsLongOpts are criu-ns's own options; CRIU never sees them.
var criuNsLongOpts = []longOpt{{"criu-binary", requiredArg, 0}, {"criu-ns-timeout", requiredArg, 0},
	{"to", requiredArg, 0}, {"lazy", noArg, 0}, {"pre-copy", requiredArg, 0}}

func concat(parts ...[]longOpt) []longOpt {
	var all []longOpt
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// shortArg says whether short option c exists and what it takes, from
// criuShortOpts (a ':' after it: a value; '::' an optional one).
func shortArg(c byte) (argKind, bool) {
	s := criuShortOpts
	for i := 0; i < len(s); i++ {
		if c == ':' || s[i] != c {
			continue
		}
		colons := 0
		for j := i + 1; j < len(s) && s[j] == ':'; j++ {
			colons++
		}
		switch colons {
		case 0:
			return noArg, true
		case 1:
			return requiredArg, true
		}
		return optionalArg, true
	}
	return 0, false
}
