package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/phasetrace"
)

// Profile is where a small tree's restore or checkpoint spends its time,
// from the phase marks the runtime and its init write when traced
// (internal/phasetrace), measured in this run.
type Profile struct {
	Op     string
	Runs   int
	Phases []ProfilePhase
	Total  float64 // median ms, the bench's exec to its reap
}

// ProfilePhase is the time from one mark to the next.
type ProfilePhase struct {
	From, To, What string
	Ms             []float64
	Med            float64
}

// The marks, in the order each command passes them; "bench.exec" and
// "bench.exited" are the benchmark's own, just before it starts the
// command and just after it reaped it.
var (
	restorePhases = []ProfilePhase{
		{From: "bench.exec", To: "runtime.start", What: "fork, exec and the runtime's Go start-up"},
		{From: "runtime.start", To: "container.start", What: "image check, meta.json, staging of /, libcontainer's config"},
		{From: "container.start", To: "container.started", What: "libcontainer's Start: cgroups, nsexec, `runc init`'s Go start-up, the spec's mounts, pivot_root"},
		{From: "container.started", To: "init.start", What: "Exec: `runc init` execs our init, whose Go start-up follows (`nsinit`)"},
		{From: "init.start", To: "criu.start", What: "the init's config, the lock's hand-over, pid reservation"},
		{From: "criu.start", To: "criu.end", What: "`criu restore` (its own exec and run)"},
		{From: "criu.end", To: "runtime.exit", What: "the init's report, the root's pid, meta.json"},
		{From: "runtime.exit", To: "bench.exited", What: "the runtime's exit and reap"},
	}
	checkpointPhases = []ProfilePhase{
		{From: "bench.exec", To: "runtime.start", What: "fork, exec and the runtime's Go start-up"},
		{From: "runtime.start", To: "criu.start", What: "lock, state, the dump's journal and staging directory"},
		{From: "criu.start", To: "criu.end", What: "`criu dump`, entered into the namespaces by a C constructor (shim/setns)"},
		{From: "criu.end", To: "runtime.exit", What: "the images moved into place, the journal, meta.json"},
		{From: "runtime.exit", To: "bench.exited", What: "the runtime's exit and reap"},
	}
)

// profiles traces small restores and checkpoints (leave-running) of img.
func (b *bench) profiles(img *images) error {
	n := b.c.pairs
	restore := &Profile{Op: "restore -d (small tree)", Phases: append([]ProfilePhase(nil), restorePhases...)}
	checkpoint := &Profile{Op: "checkpoint --leave-running (small tree)", Phases: append([]ProfilePhase(nil), checkpointPhases...)}
	for i := -1; i < n; i++ { // the first is a warm-up
		id := b.id("prof")
		marks, err := b.traced(restore, i >= 0, "restore", "-d", "--image-path", img.Dir, id)
		if err == nil {
			dir := filepath.Join(b.dir, id+"-ckpt")
			marks, err = b.traced(checkpoint, i >= 0, "checkpoint", "--leave-running", "--image-path", dir, id)
			os.RemoveAll(dir)
		}
		b.rt("delete", "--force", id)
		if err != nil {
			return fmt.Errorf("traced run: %w (marks: %v)", err, marks)
		}
	}
	for _, p := range []*Profile{restore, checkpoint} {
		var totals []float64
		for i := range p.Phases {
			p.Phases[i].Med = median(p.Phases[i].Ms)
		}
		for r := 0; r < p.Runs; r++ {
			t := 0.0
			for _, ph := range p.Phases {
				t += ph.Ms[r]
			}
			totals = append(totals, t)
		}
		p.Total = median(totals)
		b.logf("profile %s: %.1f ms", p.Op, p.Total)
		b.res.Profiles = append(b.res.Profiles, p)
	}
	return nil
}

// traced runs one runtime command with tracing on and, if keep, adds its
// phases to p.
func (b *bench) traced(p *Profile, keep bool, args ...string) (map[string]int64, error) {
	trace := filepath.Join(b.dir, "trace")
	os.Remove(trace)
	defer os.Remove(trace)
	env := append(os.Environ(), phasetrace.Env+"="+trace)
	phasetrace.Append(trace, "bench.exec")
	r := b.execCmd(env, nil, append([]string{b.c.runtime, "--root", b.root, "--criu", b.c.criu}, args...)...)
	phasetrace.Append(trace, "bench.exited")
	if r.Err != nil {
		return nil, r.Err
	}
	marks, err := readMarks(trace)
	if err != nil || !keep {
		return marks, err
	}
	for i, ph := range p.Phases {
		from, ok1 := marks[ph.From]
		to, ok2 := marks[ph.To]
		if !ok1 || !ok2 {
			return marks, fmt.Errorf("%s: no %q or %q mark", args[0], ph.From, ph.To)
		}
		p.Phases[i].Ms = append(p.Phases[i].Ms, float64(to-from)/1e6)
	}
	p.Runs++
	return marks, nil
}

// readMarks reads a trace: the first time each phase was reached.
func readMarks(path string) (map[string]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	marks := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ns, phase, ok := strings.Cut(sc.Text(), " ")
		t, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("bad trace line %q", sc.Text())
		}
		if _, seen := marks[phase]; !seen {
			marks[phase] = t
		}
	}
	return marks, sc.Err()
}
