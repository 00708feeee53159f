package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ExecOptions describe a new process in a running container.
type ExecOptions struct {
	ID string
	// ProcessFile is an OCI process JSON (`exec --process`); if empty,
	// Args run with the container's own env, cwd and user.
	ProcessFile string
	Args        []string
	Tty         bool
	Detach      bool
	// IgnorePaused execs into a paused container; the process then
	// starts only once the container is resumed.
	IgnorePaused bool
	PidFile      string
	IO           IO
}

// Exec starts a process in container id. Detached, it returns once the
// process runs; otherwise it waits (passing on sigs) and returns its exit
// code.
func (rt *Runtime) Exec(o ExecOptions, sigs <-chan os.Signal) (int, error) {
	var p *libcontainer.Process
	// The lock serialises starting the process, not its whole life.
	err := rt.withRunning(o.ID, func(c *container) error {
		if st, _ := c.status(); st == libcontainer.Paused && !o.IgnorePaused {
			return errors.New("cannot exec in a paused container (use --ignore-paused to override)")
		}
		spec, err := execProcess(c, o)
		if err != nil {
			return err
		}
		if p, err = newProcess(spec); err != nil {
			return err
		}
		closeIO, err := setupIO(p, spec.Terminal, o.IO)
		if err != nil {
			return err
		}
		err = c.ct.Run(p)
		closeIO.Close()
		if err != nil {
			return err
		}
		return writeProcessPid(o.PidFile, p)
	})
	if err != nil || o.Detach {
		return 1, err
	}
	return waitProcess(p, sigs), nil
}

// execProcess is the process to exec: the --process file, or Args with
// the settings of the container's kind.
func execProcess(c *container, o ExecOptions) (*specs.Process, error) {
	if o.ProcessFile != "" {
		b, err := os.ReadFile(o.ProcessFile)
		if err != nil {
			return nil, fmt.Errorf("process file: %w", unwrapPathError(err))
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("process file %s: %w", o.ProcessFile, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("process file %s: args must not be empty", o.ProcessFile)
		}
		return &p, nil
	}
	if len(o.Args) == 0 {
		return nil, fmt.Errorf("exec: a command or --process is required")
	}
	p := c.ops.execDefaults(c)
	p.Args, p.Terminal = o.Args, o.Tty
	p.Capabilities = nil
	return p, nil
}

// defaultExecProcess is what an exec runs with when nothing says otherwise.
func defaultExecProcess() *specs.Process {
	return &specs.Process{Cwd: "/", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
}
