package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Results is everything one run measured (raw.json holds all of it).
type Results struct {
	Date       string
	Host       string
	Smoke      bool
	Pairs      int
	Warmup     int
	Elapsed    string
	LoadAvg    []string // at start, at end
	Ops        []*Op
	Lazy       *Op
	Scale      []*Scale
	Queries    []*Query
	Migrations []*Migration
	Peers      []*Op            // floor: the peer; ratio: ours/the peer's
	PeerNotes  []string         // peers left out, and why
	KdatCache  string           // whether CRIU could keep its kernel-probe cache (kdatCache)
	Memory     string           // what fresh memory costs here (memoryProbe)
	Profiles   []*Profile       // where a small restore's and checkpoint's time goes
	RSS        map[string]int64 // peak RSS (KiB) of each runtime command
}

// Op is one floor/runtime pair series; ratios are runtime/floor per pair.
type Op struct {
	Name, Workload       string
	FloorCmd, RuntimeCmd string
	Floor, Runtime       []float64 // ms
	Ratios               []float64
	FloorMed, RuntimeMed float64
	RatioMed             float64
	Target               float64   // 0: none
	Extra                []float64 // lazy: ms from restore start until the memory check passed
	Note                 string
	Failures             int    // runtime commands that failed (lazy restore)
	FirstError           string // the first one's error
}

// errSkip drops one pair from the results without ending the series.
var errSkip = errors.New("skip")

func (o *Op) add(floor, rt time.Duration) {
	f, r := ms(floor), ms(rt)
	o.Floor = append(o.Floor, f)
	o.Runtime = append(o.Runtime, r)
	o.Ratios = append(o.Ratios, r/f)
	o.FloorMed, o.RuntimeMed, o.RatioMed = median(o.Floor), median(o.Runtime), median(o.Ratios)
}

// Scale is N restores at once, floor and runtime rounds alternating.
type Scale struct {
	N                         int
	Workload                  string
	FloorTotal, RuntimeTotal  []float64
	FloorEach, RuntimeEach    []float64
	FloorTotalMed, RtTotalMed float64
	FloorEachMed, RtEachMed   float64
	TotalRatioMed, EachRatio  float64
}

// Query is a read-only runtime command with many containers in --root.
type Query struct {
	Cmd        string
	Containers int
	Samples    []float64
	Median     float64
	P90, Max   float64
	Target     float64 // ms
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func quantile(v []float64, q float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(q*float64(len(s)-1)+0.5)]
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

func (b *bench) all() error {
	b.t0 = time.Now()
	host, _ := os.Hostname()
	b.res = Results{Date: time.Now().UTC().Format(time.RFC3339), Host: host, Smoke: b.c.smoke,
		Pairs: b.c.pairs, Warmup: b.c.warmup, LoadAvg: []string{loadavg()}, KdatCache: kdatCache()}
	if b.c.peers == "require" && b.c.only != "migrate" {
		// Fail before the long parts, not after them.
		peers := []peer{b.criuNsPy(), b.runcPeer(), b.podmanPeer(), b.criPeer()}
		if b.c.only == "managers" {
			peers = peers[1:]
		}
		for _, p := range peers {
			if m := p.missing(); m != "" {
				return fmt.Errorf("%s", m)
			}
		}
	}
	b.mem = probeMemory()
	if b.c.only == "managers" {
		err := b.managerPeers()
		b.res.LoadAvg = append(b.res.LoadAvg, loadavg())
		return err
	}
	if err := b.buildWorkload(); err != nil {
		return err
	}
	type size struct {
		name string
		mib  int
	}
	sizes := []size{{"small", 0}}
	switch {
	case b.c.smoke:
	case b.c.only == "migrate":
		sizes = append(sizes, size{"1GiB", 1024})
	default:
		sizes = append(sizes, size{"256MiB", 256}, size{"1GiB", 1024})
	}
	b.images = map[string]*images{}
	for _, s := range sizes {
		img, err := b.makeImage(s.name, s.mib)
		if err != nil {
			return err
		}
		b.images[s.name] = img
	}
	if b.c.only == "migrate" {
		return b.migrations(b.images[sizes[len(sizes)-1].name])
	}
	for _, s := range sizes {
		if err := b.restorePairs(b.images[s.name]); err != nil {
			return err
		}
	}
	for _, s := range sizes {
		if err := b.rpcRestorePairs(b.images[s.name]); err != nil {
			return err
		}
	}
	for _, s := range sizes {
		if err := b.checkpointPairs(b.images[s.name]); err != nil {
			return err
		}
	}
	if err := b.profiles(b.images["small"]); err != nil {
		return err
	}
	lazyImg := b.images["small"]
	if !b.c.smoke {
		lazyImg = b.images["1GiB"]
	}
	if err := b.lazyPairs(lazyImg); err != nil {
		return err
	}
	if err := b.criuNsPeers(b.images["small"]); err != nil {
		return err
	}
	if err := b.bundlePeers(); err != nil {
		return err
	}
	if err := b.managerPeers(); err != nil {
		return err
	}
	if err := b.scale(b.images["small"]); err != nil {
		return err
	}
	if err := b.queries(b.images["small"]); err != nil {
		return err
	}
	migImg := b.images["small"]
	if !b.c.smoke {
		migImg = b.images["1GiB"]
	}
	if err := b.migrations(migImg); err != nil {
		return err
	}
	b.res.LoadAvg = append(b.res.LoadAvg, loadavg())
	return nil
}

func (b *bench) buildWorkload() error {
	if b.c.workload != "" {
		b.workload = b.c.workload
		return nil
	}
	b.workload = filepath.Join(b.dir, "workload")
	cmd := exec.Command(goTool(), "build", "-o", b.workload, "github.com/criu-ns-runtime/criu-ns-runtime/tests/workload")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build workload (run from the module, or pass -workload): %v\n%s", err, out)
	}
	return nil
}

// pairs runs warm-up then measured iterations of fn (which runs one floor
// and one runtime command, alternately, and returns their times).
func (b *bench) pairs(op *Op, fn func(measured bool) (floor, rt time.Duration, err error)) error {
	return b.pairsN(op, b.c.pairs, fn)
}

// pairsN is pairs with n measured pairs.
func (b *bench) pairsN(op *Op, n int, fn func(measured bool) (floor, rt time.Duration, err error)) error {
	for i := -b.c.warmup; i < n; i++ {
		b.pair = i
		f, r, err := fn(i >= 0)
		if err == errSkip {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", op.Name, op.Workload, err)
		}
		if i >= 0 {
			op.add(f, r)
		}
	}
	b.logf("%-26s %-7s floor %8.1f ms  runtime %8.1f ms  ratio %.3f", op.Name, op.Workload, op.FloorMed, op.RuntimeMed, op.RatioMed)
	return nil
}

// inTurn runs floor and runtime in the order this pair takes: every other
// pair runs the runtime first. The second of two back-to-back commands
// tends to pay for the first's leftovers (CRIU's network namespaces being
// torn down, memory being freed): with the floor always first, CRIU's own
// dump took 10 ms longer in the runtime's half of the pair; in turns the
// two match (50.6 and 49.1 ms median).
func (b *bench) inTurn(floor, runtime func() error) error {
	first, second := floor, runtime
	if b.pair%2 != 0 {
		first, second = runtime, floor
	}
	if err := first(); err != nil {
		return err
	}
	return second()
}

func (b *bench) unshareRestore(img *images, work string) []string {
	a := []string{"unshare", "-pmf", "--mount-proc", "--propagation", "slave",
		b.c.criu, "restore", "-d", "-D", img.Dir}
	if work != "" {
		a = append(a, "-W", work)
	}
	return append(a, "-o", "restore.log", "-v4", "--manage-cgroups=ignore")
}

// restorePairs: bare `unshare ... criu restore -d` against
// `criu-ns-runtime restore -d`, and an informational third command: bare
// CRIU under a pid 1 that stays (see floorInit).
func (b *bench) restorePairs(img *images) error {
	floor := &Op{Name: "restore", Workload: img.Name, Target: target("restore", img.Name),
		FloorCmd:   "unshare -pmf --mount-proc --propagation slave criu restore -d -D IMG -o restore.log -v4 --manage-cgroups=ignore",
		RuntimeCmd: "criu-ns-runtime restore -d --image-path IMG ID"}
	alt := &Op{Name: "restore vs init-floor", Workload: img.Name,
		FloorCmd:   "unshare -pmf --mount-proc --propagation slave bench -floor-init criu restore -d ... (timed until CRIU returned; pid 1 stays)",
		RuntimeCmd: floor.RuntimeCmd,
		Note:       "informational: the issue's floor also includes the kernel tearing the restored tree down (CRIU is pid 1 and exits)"}
	var altF []time.Duration
	err := b.pairs(floor, func(measured bool) (time.Duration, time.Duration, error) {
		var f, r result
		err := b.inTurn(func() error {
			f = b.exec(b.unshareRestore(img, "")...)
			return f.Err
		}, func() error {
			id := b.id("r")
			r = b.rt("restore", "-d", "--image-path", img.Dir, id)
			b.rss("restore "+img.Name, r)
			if r.Err != nil {
				return r.Err
			}
			if err := b.verify(id, img, measured && len(floor.Floor) == 0); err != nil {
				return err
			}
			d := b.rt("delete", "--force", id)
			b.rss("delete", d)
			return d.Err
		})
		if err != nil {
			return 0, 0, err
		}
		a, err := b.floorInitRestore(img)
		if err != nil {
			return 0, 0, err
		}
		if measured {
			altF = append(altF, a)
		}
		return f.D, r.D, nil
	})
	if err != nil {
		return err
	}
	for i, a := range altF {
		alt.add(a, time.Duration(floor.Runtime[i]*float64(time.Millisecond)))
	}
	b.logf("%-26s %-7s floor %8.1f ms  runtime %8.1f ms  ratio %.3f", alt.Name, alt.Workload, alt.FloorMed, alt.RuntimeMed, alt.RatioMed)
	b.res.Ops = append(b.res.Ops, floor, alt)
	return nil
}

// verify checks the restored tree runs (and, if full, that its memory is
// intact). Untimed.
func (b *bench) verify(id string, img *images, full bool) error {
	st, err := b.state(id)
	if err != nil {
		return err
	}
	if full {
		return checkMemory(img, st.rootPid)
	}
	return checkAlive(st.rootPid)
}

type ctState struct{ initPid, rootPid, rootNsPid int }

func (b *bench) state(id string) (ctState, error) {
	r := b.rt("state", id)
	if r.Err != nil {
		return ctState{}, r.Err
	}
	var st ctState
	num := func(key string) int {
		i := strings.Index(r.Out, `"`+key+`"`)
		if i < 0 {
			return 0
		}
		s := r.Out[i+len(key)+2:]
		s = strings.TrimLeft(s, `: "`)
		j := strings.IndexFunc(s, func(c rune) bool { return c < '0' || c > '9' })
		n, _ := strconv.Atoi(s[:j])
		return n
	}
	st.initPid = num("pid")
	st.rootPid = num("io.criu-ns-runtime.root.pid")
	st.rootNsPid = num("io.criu-ns-runtime.root.ns-pid")
	if st.initPid == 0 || st.rootPid == 0 || st.rootNsPid == 0 {
		return st, fmt.Errorf("state %s: no pids in %s", id, r.Out)
	}
	return st, nil
}

// floorInitRestore runs bare CRIU under a pid 1 (this program, see
// floorInit) that stays after CRIU returned, and times until CRIU
// returned: restore work without the teardown of the tree.
func (b *bench) floorInitRestore(img *images) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer repR.Close()
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	args := b.unshareRestore(img, "")
	args = append(append(append([]string{}, args[:5]...), self, "-floor-init"), args[5:]...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = holdR
	cmd.ExtraFiles = []*os.File{repW}
	t := time.Now()
	err = cmd.Start()
	repW.Close()
	holdR.Close()
	if err != nil {
		holdW.Close()
		return 0, err
	}
	// A line, not EOF: unshare itself keeps the write end open.
	rep, _ := bufio.NewReader(repR).ReadString('\n')
	d := time.Since(t)
	holdW.Close()
	cmd.Wait()
	if strings.TrimSpace(string(rep)) != "ok" {
		return 0, fmt.Errorf("floor-init restore: %q", rep)
	}
	return d, nil
}

// floorInit is pid 1 of the alternative floor: it runs CRIU, reports on
// fd 3, then stays (keeping the tree alive) until stdin closes.
func floorInit(args []string) {
	rep := os.NewFile(3, "report")
	syscall.CloseOnExec(3)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(rep, "fail: %v\n", err)
	} else {
		fmt.Fprintln(rep, "ok")
	}
	rep.Close()
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// checkpointPairs: bare CRIU entered into a container's namespaces with
// nsenter against `criu-ns-runtime checkpoint`, both dumping the same
// tree and leaving it running.
func (b *bench) checkpointPairs(img *images) error {
	id := b.id("ck")
	if r := b.rt("restore", "-d", "--image-path", img.Dir, id); r.Err != nil {
		return r.Err
	}
	st, err := b.state(id)
	if err != nil {
		return err
	}
	op := &Op{Name: "checkpoint", Workload: img.Name, Target: target("checkpoint", img.Name),
		FloorCmd:   "nsenter -t INIT -p -m criu dump --leave-running -t NSPID -D IMG -o dump.log -v4",
		RuntimeCmd: "criu-ns-runtime checkpoint --leave-running --image-path IMG ID"}
	dirA, dirB := filepath.Join(b.dir, "ck-floor"), filepath.Join(b.dir, "ck-rt")
	reset := func() {
		os.RemoveAll(dirA)
		os.RemoveAll(dirB)
		os.MkdirAll(dirA, 0o755)
		os.MkdirAll(dirB, 0o755)
		if img.MiB > 0 {
			exec.Command("sync").Run()
		}
	}
	err = b.pairs(op, func(measured bool) (time.Duration, time.Duration, error) {
		var f, r result
		err := b.inTurn(func() error {
			reset()
			f = b.exec("nsenter", "-t", strconv.Itoa(st.initPid), "-p", "-m", b.c.criu, "dump", "--leave-running",
				"-t", strconv.Itoa(st.rootNsPid), "-D", dirA, "-o", "dump.log", "-v4")
			if f.Err != nil {
				log, _ := os.ReadFile(filepath.Join(dirA, "dump.log"))
				return fmt.Errorf("%w\n%s", f.Err, tail(string(log), 1500))
			}
			return nil
		}, func() error {
			reset()
			r = b.rt("checkpoint", "--leave-running", "--image-path", dirB, id)
			b.rss("checkpoint "+img.Name, r)
			return r.Err
		})
		if err != nil {
			return 0, 0, err
		}
		if measured && len(op.Floor) == 0 {
			if err := checkMemory(img, st.rootPid); err != nil {
				return 0, 0, fmt.Errorf("after checkpoints: %w", err)
			}
		}
		return f.D, r.D, nil
	})
	reset()
	if d := b.rt("delete", "--force", id); d.Err != nil && err == nil {
		err = d.Err
	}
	b.res.Ops = append(b.res.Ops, op)
	return err
}

// lazyPairs: a full runtime restore against a --lazy-pages one (time until
// the tree runs), then the lazy tree's memory check must pass.
func (b *bench) lazyPairs(img *images) error {
	op := &Op{Name: "lazy restore", Workload: img.Name, Target: target("lazy", img.Name),
		FloorCmd:   "criu-ns-runtime restore -d --image-path IMG ID (full restore)",
		RuntimeCmd: "criu-ns-runtime restore -d --lazy-pages --image-path IMG ID",
		Note:       "floor = the runtime's full restore; Extra = ms until the lazily restored tree's memory check passed"}
	err := b.pairs(op, func(measured bool) (time.Duration, time.Duration, error) {
		id := b.id("full")
		f := b.rt("restore", "-d", "--image-path", img.Dir, id)
		if f.Err != nil {
			return 0, 0, f.Err
		}
		if err := b.verify(id, img, measured && len(op.Floor) == 0); err != nil {
			return 0, 0, err
		}
		if d := b.rt("delete", "--force", id); d.Err != nil {
			return 0, 0, d.Err
		}
		id = b.id("lazy")
		t := time.Now()
		r := b.rt("restore", "-d", "--lazy-pages", "--image-path", img.Dir, id)
		b.rss("restore --lazy-pages "+img.Name, r)
		if r.Err != nil {
			// Recorded, not fatal: the run goes on and fails at the end.
			op.Failures++
			if op.FirstError == "" {
				op.FirstError = r.Err.Error()
			}
			b.logf("lazy restore failed: %v", r.Err)
			b.rt("delete", "--force", id)
			return f.D, 0, errSkip
		}
		st, err := b.state(id)
		if err != nil {
			return 0, 0, err
		}
		if err := checkMemory(img, st.rootPid); err != nil {
			return 0, 0, fmt.Errorf("lazily restored tree: %w", err)
		}
		if measured {
			op.Extra = append(op.Extra, ms(time.Since(t)))
		}
		if d := b.rt("delete", "--force", id); d.Err != nil {
			return 0, 0, d.Err
		}
		return f.D, r.D, nil
	})
	b.res.Lazy = op
	return err
}

// scale restores the same images into N containers at once, alternating
// rounds of bare CRIU and of the runtime.
func (b *bench) scale(img *images) error {
	n := b.c.scaleN
	s := &Scale{N: n, Workload: img.Name}
	for round := -1; round < b.c.rounds; round++ {
		for _, floor := range []bool{true, false} {
			each := make([]time.Duration, n)
			errs := make([]error, n)
			ids := make([]string, n)
			var wg sync.WaitGroup
			t := time.Now()
			for i := range n {
				work := filepath.Join(b.dir, fmt.Sprintf("scale-%d", i))
				os.MkdirAll(work, 0o755)
				ids[i] = b.id("s")
				wg.Add(1)
				go func() {
					defer wg.Done()
					var r result
					if floor {
						r = b.exec(b.unshareRestore(img, work)...)
					} else {
						r = b.rt("restore", "-d", "--image-path", img.Dir, "--work-path", work, ids[i])
						b.rss(fmt.Sprintf("restore small (%d at once)", n), r)
					}
					each[i], errs[i] = r.D, r.Err
				}()
			}
			wg.Wait()
			total := time.Since(t)
			if !floor {
				b.deleteAll(ids)
			}
			for _, err := range errs {
				if err != nil {
					return fmt.Errorf("%d restores at once: %w", n, err)
				}
			}
			if round < 0 {
				continue
			}
			if floor {
				s.FloorTotal = append(s.FloorTotal, ms(total))
				for _, d := range each {
					s.FloorEach = append(s.FloorEach, ms(d))
				}
			} else {
				s.RuntimeTotal = append(s.RuntimeTotal, ms(total))
				for _, d := range each {
					s.RuntimeEach = append(s.RuntimeEach, ms(d))
				}
			}
		}
	}
	s.FloorTotalMed, s.RtTotalMed = median(s.FloorTotal), median(s.RuntimeTotal)
	s.FloorEachMed, s.RtEachMed = median(s.FloorEach), median(s.RuntimeEach)
	var tr []float64
	for i := range s.FloorTotal {
		tr = append(tr, s.RuntimeTotal[i]/s.FloorTotal[i])
	}
	s.TotalRatioMed = median(tr)
	s.EachRatio = s.RtEachMed / s.FloorEachMed
	b.res.Scale = append(b.res.Scale, s)
	b.logf("%d restores at once: total floor %.1f ms runtime %.1f ms (ratio %.3f); each: floor %.1f ms runtime %.1f ms",
		n, s.FloorTotalMed, s.RtTotalMed, s.TotalRatioMed, s.FloorEachMed, s.RtEachMed)
	return nil
}

func (b *bench) deleteAll(ids []string) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			b.rss("delete", b.rt("delete", "--force", id))
			<-sem
		}()
	}
	wg.Wait()
}

// queries fills --root with many running containers and times state and
// list.
func (b *bench) queries(img *images) error {
	n := b.c.many
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	t := time.Now()
	for i := range n {
		ids[i] = b.id("q")
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			errs[i] = b.rt("restore", "-d", "--image-path", img.Dir, "--work-path", filepath.Join(b.dir, "q-logs"), ids[i]).Err
			<-sem
		}()
	}
	wg.Wait()
	defer b.deleteAll(ids)
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("filling the root: %w", err)
		}
	}
	b.logf("%d containers restored in %s", n, time.Since(t).Round(time.Millisecond))
	samples := map[string]int{"state": 41, "list": 21, "list --format json": 11, "ps": 21}
	if b.c.smoke {
		samples = map[string]int{"state": 5, "list": 5, "list --format json": 3, "ps": 3}
	}
	for _, cmd := range []string{"state", "list", "list --format json", "ps"} {
		q := &Query{Cmd: cmd, Containers: n, Target: map[string]float64{"state": 10, "list": 50}[cmd]}
		for i := range samples[cmd] {
			args := strings.Fields(cmd)
			if cmd == "state" || cmd == "ps" {
				args = append(args, ids[(i*37)%n])
			}
			r := b.rt(args...)
			b.rss(cmd, r)
			if r.Err != nil {
				return r.Err
			}
			if cmd == "list" && strings.Count(r.Out, "\n") != n+1 {
				return fmt.Errorf("list shows %d lines, want %d", strings.Count(r.Out, "\n"), n+1)
			}
			if i > 0 { // the first is the warm-up
				q.Samples = append(q.Samples, ms(r.D))
			}
		}
		q.Median, q.P90, q.Max = median(q.Samples), quantile(q.Samples, 0.9), quantile(q.Samples, 1)
		b.res.Queries = append(b.res.Queries, q)
		b.logf("%-20s with %d containers: median %.1f ms p90 %.1f ms", cmd, n, q.Median, q.P90)
	}
	return nil
}

// target is the goal for an operation (a ratio; 0: none).
func target(op, workload string) float64 {
	switch {
	case op == "lazy" && workload == "1GiB":
		return 0.25
	case op == "lazy":
		return 0
	case op == "rpc restore": // against the CLI restore, not bare CRIU
		return 1.10
	case op == "restore" && workload == "small":
		return 1.10
	case op == "restore": // 256 MiB and 1 GiB
		return 1.03
	case op == "checkpoint" && workload == "small":
		return 1.05
	case op == "checkpoint": // the large trees
		return 1.02
	}
	return 0
}

// kdatCache says whether CRIU runs here with its cache of kernel probes
// (/run/criu.kdat). Without it every CRIU run probes again, iptables runs
// included: about 60 ms of a small restore on the benchmark's machine,
// in the floor and the runtime alike. CRIU keeps the cache only where /run
// is a tmpfs; elsewhere CRIU 4.1.1 removes the cache file instead of its
// temporary (kerndat_save_cache), and the criu.kdat.tmp it leaves makes
// every later run skip the save (it creates the file with O_EXCL).
func kdatCache() string {
	if _, err := os.Stat("/run/criu.kdat"); err == nil {
		return "present"
	}
	var fs unix.Statfs_t
	if err := unix.Statfs("/run", &fs); err == nil && fs.Type != unix.TMPFS_MAGIC {
		return "absent: /run is not a tmpfs, where CRIU keeps it, so every CRIU run probes the kernel again"
	}
	if tmp, err := os.Stat("/run/criu.kdat.tmp"); err == nil {
		return fmt.Sprintf("absent, and CRIU cannot save it: a /run/criu.kdat.tmp of a CRIU killed while saving it (from %s) is in the way, so every CRIU run probes the kernel again", tmp.ModTime().UTC().Format(time.RFC3339))
	}
	return "absent"
}
