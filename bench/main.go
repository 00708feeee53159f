// Command bench measures what criu-ns-runtime costs over bare CRIU doing
// the same work in the same kind of namespaces. It prepares its own workloads, images and containers,
// runs each pair of commands alternately (floor, runtime, floor, runtime,
// ...) after a warm-up, and writes a markdown table and a PNG chart of the
// ratios. It asserts nothing about timings; it only fails when a command
// it runs fails.
//
//	go run ./bench -runtime bin/criu-ns-runtime -out bench/results
//	go run ./bench -runtime bin/criu-ns-runtime -smoke
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/tests/privatecri"
)

type config struct {
	runtime  string
	criu     string
	out      string
	work     string
	workload string
	pairs    int
	warmup   int
	scaleN   int
	rounds   int
	many     int
	smoke    bool
	only     string
	keep     bool
	peers    string // require, auto or off: see peerReady
	criuNsPy string // CRIU's Python criu-ns script
	runc     string
	criBin   string // containerd 2.x, its runc shim, ctr and crictl
}

func main() {
	// Re-exec modes first: the helper init of the alternative floor.
	if len(os.Args) > 1 && os.Args[1] == "-floor-init" {
		floorInit(os.Args[2:])
	}
	if len(os.Args) == 2 && os.Args[1] == touchMemoryArg {
		touchMemory()
	}
	if len(os.Args) == 4 && (os.Args[1] == "-copy-send" || os.Args[1] == "-copy-recv") {
		// The migration floor's copy of the images over the veth.
		copyFn := copySend
		if os.Args[1] == "-copy-recv" {
			copyFn = copyRecv
		}
		if err := copyFn(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "bench", os.Args[1]+":", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	var c config
	flag.StringVar(&c.runtime, "runtime", "bin/criu-ns-runtime", "criu-ns-runtime binary")
	flag.StringVar(&c.criu, "criu", "", "CRIU binary (default: criu on PATH)")
	flag.StringVar(&c.out, "out", "", "directory for bench.md, ratios.png, raw.json (default bench/results; -smoke: a temp dir)")
	flag.StringVar(&c.work, "work", "/var/tmp/criu-ns-bench", "scratch directory for images and containers (removed afterwards)")
	flag.StringVar(&c.workload, "workload", "", "prebuilt static tests/workload binary (default: built with go)")
	flag.IntVar(&c.pairs, "pairs", 0, "measured pairs per operation (default 12; -smoke: 3)")
	flag.IntVar(&c.warmup, "warmup", 1, "warm-up pairs per operation")
	flag.IntVar(&c.scaleN, "scale", 0, "containers restored at once (default 20; -smoke: 5)")
	flag.IntVar(&c.rounds, "rounds", 0, "rounds of the at-once restores (default 5; -smoke: 1)")
	flag.IntVar(&c.many, "many", 0, "containers in --root for state/list (default 500; -smoke: 5)")
	flag.StringVar(&c.only, "only", "", "run only this part: migrate (and the images it needs) or managers (the podman and CRI rows)")
	flag.BoolVar(&c.smoke, "smoke", false, "tiny run: few pairs, small tree only, no 500-container or big-memory parts")
	flag.BoolVar(&c.keep, "keep", false, "keep the scratch directory")
	render := flag.String("render", "", "only write bench.md and ratios.png into -out again from this raw.json")
	flag.StringVar(&c.peers, "peers", "", "the peers' rows: require (a missing peer fails the run), auto (left out if missing) or off (default: require; -smoke: auto)")
	flag.StringVar(&c.criuNsPy, "criu-ns-py", "/var/cache/criu-ns-runtime/criu-build/criu-4.1.1/scripts/criu-ns", "CRIU's Python criu-ns script (scripts/install-criu.sh unpacks it)")
	flag.StringVar(&c.runc, "runc", "/usr/sbin/runc", "runc to compare bundle containers with, bare and under podman and CRI (Debian's 1.1.5: scripts/install-e2e-deps.sh)")
	flag.StringVar(&c.criBin, "cri-bin", privatecri.DefaultBinDir,
		"containerd "+privatecri.ContainerdVersion+", containerd-shim-runc-v2, ctr and crictl (scripts/install-cri-tools.sh builds them)")
	flag.Parse()
	if *render != "" {
		if err := rerender(*render, c.out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	def := func(v *int, full, smoke int) {
		if *v == 0 {
			*v = full
			if c.smoke {
				*v = smoke
			}
		}
	}
	def(&c.pairs, 12, 3)
	def(&c.scaleN, 20, 5)
	def(&c.rounds, 5, 1)
	def(&c.many, 500, 5)
	if c.peers == "" {
		c.peers = "require"
		if c.smoke {
			c.peers = "auto"
		}
	}
	if c.only != "" && c.only != "migrate" && c.only != "managers" {
		fmt.Fprintf(os.Stderr, "bench: -only %q: want migrate or managers\n", c.only)
		os.Exit(2)
	}
	if c.peers != "require" && c.peers != "auto" && c.peers != "off" {
		fmt.Fprintf(os.Stderr, "bench: -peers %q: want require, auto or off\n", c.peers)
		os.Exit(2)
	}
	if err := run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(c *config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	cloexecAll()
	var err error
	if c.runtime, err = filepath.Abs(c.runtime); err != nil {
		return err
	}
	if _, err := os.Stat(c.runtime); err != nil {
		return fmt.Errorf("runtime: %w (run make build)", err)
	}
	if c.criu == "" {
		c.criu = "criu"
	}
	if c.criu, err = exec.LookPath(c.criu); err != nil {
		return fmt.Errorf("criu: %w", err)
	}
	for _, t := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(t); err != nil {
			return err
		}
	}
	if c.out == "" {
		if c.smoke {
			if c.out, err = os.MkdirTemp("", "criu-ns-bench-smoke-"); err != nil {
				return err
			}
		} else {
			c.out = "bench/results"
		}
	}
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	// A fresh scratch dir per run, so a crashed run never poisons the next.
	if err := os.MkdirAll(c.work, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp(c.work, "run-")
	if err != nil {
		return err
	}
	b := &bench{c: c, dir: work, root: filepath.Join(work, "root"), prefix: fmt.Sprintf("cnb%d", os.Getpid())}
	if err := os.MkdirAll(b.root, 0o700); err != nil {
		return err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fmt.Fprintln(os.Stderr, "bench: interrupted, cleaning up")
		b.cleanup()
		os.Exit(130)
	}()
	defer b.cleanup()

	start := time.Now()
	if err := b.all(); err != nil {
		return err
	}
	b.res.Elapsed = time.Since(start).Round(time.Second).String()
	b.res.Memory = b.mem.note()
	if err := b.write(); err != nil {
		return err
	}
	if l := b.res.Lazy; l != nil && l.Failures > 0 {
		return fmt.Errorf("%d lazy restores failed; the first: %s", l.Failures, l.FirstError)
	}
	return nil
}

// cloexecAll marks every inherited descriptor above stdio close-on-exec:
// shells leak some into their children, and CRIU refuses to dump a tree
// holding descriptors it cannot restore.
func cloexecAll() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// goTool finds the go command that runs us, for building the workload.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	//lint:ignore SA1019 a fallback when go is not on PATH
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.t0).Seconds(), fmt.Sprintf(format, a...))
}

func shortCmd(args []string) string { return strings.Join(args, " ") }

// rerender writes a run's report again from its raw.json, as the report
// code now words it.
func rerender(raw, out string) error {
	data, err := os.ReadFile(raw)
	if err != nil {
		return err
	}
	b := &bench{c: &config{out: out}}
	if err := json.Unmarshal(data, &b.res); err != nil {
		return fmt.Errorf("%s: %w", raw, err)
	}
	if b.c.out == "" {
		b.c.out = filepath.Dir(raw)
	}
	return b.write()
}
