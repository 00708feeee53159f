package criuns

import (
	"fmt"
	"strconv"
	"time"

	"github.com/criu-ns-runtime/criu-ns-runtime/shim"
)

// migrateTree is `criu-ns migrate --to ADDR:PORT -t PID [--lazy |
// --pre-copy N] [--timeout D] [CRIU options]`: a live migration of the tree
// rooted at PID, as `criu dump -t` takes it, to a `criu-ns-runtime
// receive`. A tree restored by criu-ns is dumped inside its namespaces;
// any other tree as it is. -W (else -D) keeps CRIU's logs.
func migrateTree(c *Cmdline, env Env) (int, error) {
	pid, err := strconv.Atoi(c.Tree)
	if err != nil || pid <= 0 {
		return 1, fmt.Errorf("migrate: -t PID (the tree's root) is required")
	}
	o := shim.MigrateOptions{To: c.To, Lazy: c.Lazy, WorkPath: c.WorkDir}
	if o.WorkPath == "" {
		o.WorkPath = c.ImagesDir
	}
	if c.PreCopy != "" {
		if o.PreCopy, err = strconv.Atoi(c.PreCopy); err != nil || o.PreCopy < 1 {
			return 1, fmt.Errorf("migrate: --pre-copy %q: want a number of rounds >= 1", c.PreCopy)
		}
	}
	if c.Timeout != "" {
		if o.Timeout, err = time.ParseDuration(c.Timeout); err != nil || o.Timeout <= 0 {
			return 1, fmt.Errorf("migrate: --criu-ns-timeout %q: want a duration such as 30s", c.Timeout)
		}
	}
	o.CRIU = criuFeatures(c.Rest)
	o.CRIU.ShellJob = c.ShellJob
	rt, err := runtime(c, env)
	if err != nil {
		return 1, err
	}
	id, err := rt.FindByRootPid(pid)
	if err != nil {
		return 1, err
	}
	if id != "" {
		o.ID = id
	} else {
		o.Pid = pid
	}
	if _, err := rt.Migrate(o); err != nil {
		return 1, err
	}
	return 0, nil
}

// criuFeatures takes out of CRIU's options those the destination's
// restore must repeat; the rest go to the dump as they are.
func criuFeatures(rest []string) shim.CRIUOptions {
	var o shim.CRIUOptions
	for _, a := range rest {
		switch a {
		case "--tcp-established":
			o.TCPEstablished = true
		case "--ext-unix-sk":
			o.ExtUnixSk = true
		case "-l", "--file-locks":
			o.FileLocks = true
		default:
			o.Extra = append(o.Extra, a)
		}
	}
	return o
}
