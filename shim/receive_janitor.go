package shim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// A receive waits on a peer for a long time and may be killed meanwhile:
// what it made (images, the new container) must not outlive it unless the
// migration committed. Its children (CRIU's page servers) die with it by
// PR_SET_PDEATHSIG; for what is on disk it starts a janitor, a child of
// its own session that reads an undo journal from a pipe. Each line is
// one thing made; when the pipe closes without "forget", the receive died
// half-way and the janitor undoes everything, newest first.

// receiveJanitorCommand is the hidden command that runs RunJanitor.
const receiveJanitorCommand = "receive-janitor"

// undoStep is one journal line.
type undoStep struct {
	// Op is "remove" (a path, recursively), "empty" (a directory's
	// entries), "container" (force-delete it) or "forget" (all done).
	Op  string `json:"op"`
	Arg string `json:"arg,omitempty"`
}

// receiveJanitor is the receive's end of the journal.
type receiveJanitor struct {
	w   *os.File
	cmd *exec.Cmd
}

// startReceiveJanitor starts the janitor of a receive on rt's root.
func (rt *Runtime) startReceiveJanitor() (*receiveJanitor, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(rt.Self, "--root", rt.Root.Dir, receiveJanitorCommand)
	cmd.Stdin = r
	// Its own session: a ^C to the receive's process group must not
	// take the janitor with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start the receive's janitor: %w", err)
	}
	go cmd.Wait()
	return &receiveJanitor{w: w, cmd: cmd}, nil
}

// note journals a step; the janitor undoes it if we die.
func (j *receiveJanitor) note(op, arg string) {
	b, _ := json.Marshal(undoStep{Op: op, Arg: arg})
	j.w.Write(append(b, '\n'))
}

// forget ends the journal: the receive undid what it had to itself.
func (j *receiveJanitor) forget() {
	j.note("forget", "")
	j.w.Close()
}

// RunJanitor reads a receive's journal from r until it ends, and undoes
// its steps unless it ended with "forget".
func (rt *Runtime) RunJanitor(r io.Reader) error {
	var steps []undoStep
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var s undoStep
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			continue
		}
		if s.Op == "forget" {
			return nil
		}
		steps = append(steps, s)
	}
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		switch s.Op {
		case "container":
			// We share the dead receive's mount namespace: a root it
			// had staged is still mounted here.
			unmountRootfs(bundle.RootfsPath(rt.Root.ContainerDir(s.Arg)))
			rt.Delete(s.Arg, true)
		case "remove":
			os.RemoveAll(s.Arg)
		case "empty":
			ents, _ := os.ReadDir(s.Arg)
			for _, e := range ents {
				os.RemoveAll(filepath.Join(s.Arg, e.Name()))
			}
		}
	}
	return nil
}
