// Package criuns is criu-ns mode: it takes CRIU's own command line, as the
// old Python criu-ns script did, and runs restores and dumps of trees
// through the runtime, so they land in fresh namespaces and are dumped from
// inside them. `swrk FD`, the mode CRIU's RPC libraries start, is served
// by criuns/swrk. Anything else goes to CRIU unchanged.
package criuns

import (
	"fmt"
	"strings"
)

// Cmdline is a CRIU command line split into what criu-ns acts on and the
// rest, which goes on to CRIU.
type Cmdline struct {
	Command   string   // restore, dump, pre-dump, check, ...
	Args      []string // positional arguments after the command
	ImagesDir string   // -D, --images-dir
	WorkDir   string   // -W, --work-dir
	LogFile   string   // -o, --log-file
	PidFile   string   // --pidfile
	CRIU      string   // --criu-binary (criu-ns's own option)
	// Timeout, --criu-ns-timeout DURATION (criu-ns's own option; CRIU's
	// --timeout is CRIU's), bounds the CRIU run of a restore, dump or
	// migration.
	Timeout  string
	Tree     string // -t, --tree
	Detach   bool   // -d, --restore-detached, --daemon
	Sibling  bool   // -S, --restore-sibling
	Leave    bool   // -R, --leave-running
	ShellJob bool   // -j, --shell-job
	Help     bool   // -h, --help
	Version  bool   // -V, --version
	ExecCmd  bool   // --exec-cmd
	// PrevImagesDir, --prev-images-dir, is an incremental dump's parent;
	// TrackMem, --track-mem, makes a dump one that a later one can build on.
	PrevImagesDir string
	TrackMem      bool
	// criu-ns's own options of migrate (see migrate.go).
	To      string // --to ADDR:PORT
	Lazy    bool   // --lazy
	PreCopy string // --pre-copy N
	// Rest holds every other option, in order, as CRIU takes it: "-v4",
	// "--ghost-limit=1M", "-L", "DIR".
	Rest []string
}

// migrateOnly says which of criu-ns's own migrate options is set, if any.
func (c *Cmdline) migrateOnly() string {
	switch {
	case c.To != "":
		return "--to"
	case c.Lazy:
		return "--lazy"
	case c.PreCopy != "":
		return "--pre-copy"
	}
	return ""
}

// An option is named by its short letter when it has one, else by its
// long name: "-D" and "--images-dir" are the same option, "D".
type optionID string

// handlers are the options criu-ns acts on.
var handlers = map[optionID]func(c *Cmdline, value string){
	"D":                   func(c *Cmdline, v string) { c.ImagesDir = v },
	"W":                   func(c *Cmdline, v string) { c.WorkDir = v },
	"o":                   func(c *Cmdline, v string) { c.LogFile = v },
	"t":                   func(c *Cmdline, v string) { c.Tree = v },
	"pidfile":             func(c *Cmdline, v string) { c.PidFile = v },
	"criu-binary":         func(c *Cmdline, v string) { c.CRIU = v },
	"criu-ns-timeout":     func(c *Cmdline, v string) { c.Timeout = v },
	"d":                   func(c *Cmdline, _ string) { c.Detach = true },
	"restore-detached":    func(c *Cmdline, _ string) { c.Detach = true },
	"daemon":              func(c *Cmdline, _ string) { c.Detach = true },
	"no-restore-detached": func(c *Cmdline, _ string) { c.Detach = false },
	"no-daemon":           func(c *Cmdline, _ string) { c.Detach = false },
	"S":                   func(c *Cmdline, _ string) { c.Sibling = true },
	"restore-sibling":     func(c *Cmdline, _ string) { c.Sibling = true },
	"no-restore-sibling":  func(c *Cmdline, _ string) { c.Sibling = false },
	"R":                   func(c *Cmdline, _ string) { c.Leave = true },
	"j":                   func(c *Cmdline, _ string) { c.ShellJob = true },
	"shell-job":           func(c *Cmdline, _ string) { c.ShellJob = true },
	"no-shell-job":        func(c *Cmdline, _ string) { c.ShellJob = false },
	"h":                   func(c *Cmdline, _ string) { c.Help = true },
	"V":                   func(c *Cmdline, _ string) { c.Version = true },
	"exec-cmd":            func(c *Cmdline, _ string) { c.ExecCmd = true },
	"prev-images-dir":     func(c *Cmdline, v string) { c.PrevImagesDir = v },
	"track-mem":           func(c *Cmdline, _ string) { c.TrackMem = true },
	"to":                  func(c *Cmdline, v string) { c.To = v },
	"lazy":                func(c *Cmdline, _ string) { c.Lazy = true },
	"pre-copy":            func(c *Cmdline, v string) { c.PreCopy = v },
}

// Parse splits args (without the program name) the way CRIU's
// getopt_long does: options and arguments in any order, "--" ending the
// options; short options bundled ("-dv4", "-vvvv"), with values attached
// or not ("-D dir", "-Ddir"); long options with "=value" or the next
// argument, and abbreviated to any unambiguous prefix. An optional value
// (-v, -x, --verbosity, --manage-cgroups, ...) must be attached.
func Parse(args []string) (*Cmdline, error) {
	c := &Cmdline{}
	positional := func(a string) {
		if c.Command == "" {
			c.Command = a
		} else {
			c.Args = append(c.Args, a)
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch {
		case a == "--":
			for _, p := range args[i+1:] {
				positional(p)
			}
			return c, nil
		case strings.HasPrefix(a, "--"):
			i, err = c.long(args, i)
		case strings.HasPrefix(a, "-") && a != "-":
			i, err = c.shorts(args, i)
		default:
			positional(a)
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// long parses the long option args[i] and returns the index of the last
// argument it used.
func (c *Cmdline) long(args []string, i int) (int, error) {
	name, value, inline := strings.Cut(strings.TrimPrefix(args[i], "--"), "=")
	o, err := lookupLong(name)
	if err != nil {
		return i, err
	}
	switch o.arg {
	case noArg:
		if inline {
			return i, fmt.Errorf("option --%s takes no value (%s)", o.name, args[i])
		}
	case requiredArg:
		if !inline {
			if i+1 >= len(args) {
				return i, fmt.Errorf("option --%s needs a value", o.name)
			}
			i++
			value = args[i]
		}
	}
	id := optionID(o.name)
	if o.short != 0 {
		id = optionID(o.short)
	}
	tokens := []string{"--" + o.name}
	if inline || o.arg == requiredArg {
		tokens = []string{"--" + o.name + "=" + value}
	}
	c.apply(id, value, tokens)
	return i, nil
}

// shorts parses the bundle of short options args[i] ("-dv4") and returns
// the index of the last argument it used.
func (c *Cmdline) shorts(args []string, i int) (int, error) {
	bundle := args[i][1:]
	for j := 0; j < len(bundle); j++ {
		ch := bundle[j]
		kind, ok := shortArg(ch)
		if !ok {
			return i, fmt.Errorf("unknown option -%c (in %s)", ch, args[i])
		}
		rest := bundle[j+1:]
		switch kind {
		case noArg:
			c.apply(optionID(ch), "", []string{"-" + string(ch)})
			continue
		case optionalArg:
			c.apply(optionID(ch), rest, []string{"-" + string(ch) + rest})
		case requiredArg:
			if rest == "" {
				if i+1 >= len(args) {
					return i, fmt.Errorf("option -%c needs a value", ch)
				}
				i++
				rest = args[i]
			}
			c.apply(optionID(ch), rest, []string{"-" + string(ch), rest})
		}
		break // the value took the rest of the bundle
	}
	return i, nil
}

// apply acts on an option criu-ns knows, or keeps it for CRIU.
func (c *Cmdline) apply(id optionID, value string, tokens []string) {
	if h, ok := handlers[id]; ok {
		h(c, value)
		return
	}
	c.Rest = append(c.Rest, tokens...)
}

// lookupLong finds the long option name, or the only one it abbreviates.
func lookupLong(name string) (longOpt, error) {
	all := append(append([]longOpt{}, criuLongOpts...), criuNsLongOpts...)
	var found []longOpt
	for _, o := range all {
		if o.name == name {
			return o, nil
		}
		if name != "" && strings.HasPrefix(o.name, name) {
			found = append(found, o)
		}
	}
	switch len(found) {
	case 0:
		return longOpt{}, fmt.Errorf("unknown option --%s (CRIU has no such option)", name)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, o := range found {
		names[i] = "--" + o.name
	}
	return longOpt{}, fmt.Errorf("option --%s is ambiguous (%s)", name, strings.Join(names, ", "))
}

// withoutCRIUNsOptions is args without criu-ns's own options, for CRIU.
func withoutCRIUNsOptions(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if name, _, inline := strings.Cut(strings.TrimPrefix(a, "--"), "="); strings.HasPrefix(a, "--") {
			if o, err := lookupLong(name); err == nil && isCRIUNsOption(o) {
				if !inline && o.arg == requiredArg {
					i++
				}
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func isCRIUNsOption(o longOpt) bool {
	for _, ours := range criuNsLongOpts {
		if o.name == ours.name {
			return true
		}
	}
	return false
}
