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
	Command   string // restore, dump, pre-dump, check, ...
	ImagesDir string // -D, --images-dir
	WorkDir   string // -W, --work-dir
	PidFile   string // --pidfile
	CRIU      string // --criu-binary (criu-ns's own option)
	// Timeout, --criu-ns-timeout DURATION (criu-ns's own option; CRIU's
	// --timeout is CRIU's), bounds the CRIU run of a restore, dump or
	// migration.
	Timeout  string
	Tree     string // -t, --tree
	Detach   bool   // -d, --restore-detached
	Leave    bool   // -R, --leave-running
	ShellJob bool   // -j, --shell-job
	// criu-ns's own options of migrate (see migrate.go).
	To      string // --to ADDR:PORT
	Lazy    bool   // --lazy
	PreCopy string // --pre-copy N
	Rest    []string
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

// option is one CRIU option criu-ns reads; value options take an argument.
type option struct {
	short, long string
	value       func(c *Cmdline) *string
	flag        func(c *Cmdline) *bool
	// keep passes the option on to CRIU as well.
	keep bool
}

var options = []option{
	{short: "D", long: "images-dir", value: func(c *Cmdline) *string { return &c.ImagesDir }},
	{short: "W", long: "work-dir", value: func(c *Cmdline) *string { return &c.WorkDir }},
	{long: "pidfile", value: func(c *Cmdline) *string { return &c.PidFile }},
	{long: "criu-binary", value: func(c *Cmdline) *string { return &c.CRIU }},
	{long: "criu-ns-timeout", value: func(c *Cmdline) *string { return &c.Timeout }},
	{short: "t", long: "tree", value: func(c *Cmdline) *string { return &c.Tree }},
	{short: "d", long: "restore-detached", flag: func(c *Cmdline) *bool { return &c.Detach }},
	{short: "S", long: "restore-sibling", flag: func(c *Cmdline) *bool { return new(bool) }},
	{short: "R", long: "leave-running", flag: func(c *Cmdline) *bool { return &c.Leave }},
	{short: "j", long: "shell-job", flag: func(c *Cmdline) *bool { return &c.ShellJob }},
	{long: "to", value: func(c *Cmdline) *string { return &c.To }},
	{long: "lazy", flag: func(c *Cmdline) *bool { return &c.Lazy }},
	{long: "pre-copy", value: func(c *Cmdline) *string { return &c.PreCopy }},
}

// Parse splits args (without the program name). It understands "-D dir",
// "-Ddir", "--images-dir dir" and "--images-dir=dir".
func Parse(args []string) (*Cmdline, error) {
	c := &Cmdline{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		opt, inline, hasInline := lookup(a)
		switch {
		case opt == nil:
			if c.Command == "" && !strings.HasPrefix(a, "-") {
				c.Command = a
			} else {
				c.Rest = append(c.Rest, a)
			}
		case opt.flag != nil:
			*opt.flag(c) = true
		default:
			if !hasInline {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("option %s needs a value", a)
				}
				i++
				inline = args[i]
			}
			*opt.value(c) = inline
		}
	}
	return c, nil
}

// lookup finds the option a names, with its inline value if any.
func lookup(a string) (*option, string, bool) {
	for i := range options {
		o := &options[i]
		if long, ok := strings.CutPrefix(a, "--"); ok {
			name, val, hasVal := strings.Cut(long, "=")
			if name == o.long {
				return o, val, hasVal
			}
			continue
		}
		if o.short != "" && strings.HasPrefix(a, "-"+o.short) && !strings.HasPrefix(a, "--") {
			if len(a) == 2 {
				return o, "", false
			}
			if o.value != nil {
				return o, a[2:], true
			}
		}
	}
	return nil, "", false
}
