package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/opencontainers/runc/libcontainer"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
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
	lock, err := rt.Root.Lock(o.ID)
	if err != nil {
		return 1, err
	}
	_, ct, err := rt.running(lock.Dir, o.ID)
	if err == nil && !o.IgnorePaused {
		if st, _ := ct.Status(); st == libcontainer.Paused {
			err = errors.New("cannot exec in a paused container (use --ignore-paused to override)")
		}
	}
	if err != nil {
		lock.Unlock()
		return 1, err
	}
	spec, err := rt.execProcess(lock.Dir, o)
	var p *libcontainer.Process
	if err == nil {
		p, err = newProcess(spec)
	}
	var closeIO closer
	if err == nil {
		closeIO, err = setupIO(p, spec.Terminal, o.IO)
	}
	if err == nil {
		err = ct.Run(p)
		closeIO.Close()
	}
	if err == nil {
		err = writeProcessPid(o.PidFile, p)
	}
	// The lock serialises starting the process, not its whole life.
	lock.Unlock()
	if err != nil || o.Detach {
		return 1, err
	}
	return waitProcess(p, sigs), nil
}

// execProcess is the process to exec: the --process file, or Args with
// the container's own process settings.
func (rt *Runtime) execProcess(dir string, o ExecOptions) (*specs.Process, error) {
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
	p := &specs.Process{Cwd: "/", Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}
	if meta, err := bundle.ReadMeta(dir); err == nil && meta.Bundle != "" {
		if spec, err := loadBundleSpec(meta.Bundle); err == nil && spec.Process != nil {
			p = spec.Process
		}
	}
	p.Args, p.Terminal = o.Args, o.Tty
	p.Capabilities = nil
	return p, nil
}
