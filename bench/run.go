package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bench is one run: its scratch dir, --root and results.
type bench struct {
	c        *config
	dir      string // scratch dir of this run
	root     string // --root of every runtime command
	prefix   string // container ids start with it (cgroups are host-wide)
	workload string // static workload binary
	seq      int
	t0       time.Time
	res      Results
	mu       sync.Mutex
	images   map[string]*images
	cleanups []func() // run first by cleanup (the migration hosts)
	mem      memoryProbe
	pair     int // the pair pairsN runs now (negative: warm-up)
}

// result is one command: wall time and peak RSS of the process we waited
// for (ru_maxrss of wait4: the process itself and the children it reaped).
type result struct {
	D      time.Duration
	RSSKiB int64
	Out    string
	Err    error
}

const cmdTimeout = 5 * time.Minute

// exec runs args with stdio on files (a pipe would make us wait for any
// descendant that kept it) and times it from fork to reap.
func (b *bench) exec(args ...string) result {
	return b.execEnv(nil, args...)
}

func (b *bench) execEnv(extra []*os.File, args ...string) result {
	return b.execCmd(nil, extra, args...)
}

// execCmd is exec with an environment (nil: ours) and extra files.
func (b *bench) execCmd(env []string, extra []*os.File, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := os.CreateTemp(b.dir, "out-")
	if err != nil {
		return result{Err: err}
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.ExtraFiles = extra
	t := time.Now()
	err = cmd.Run()
	d := time.Since(t)
	r := result{D: d}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.RSSKiB = ru.Maxrss
		}
	}
	o, _ := os.ReadFile(out.Name())
	r.Out = string(o)
	if err != nil {
		r.Err = fmt.Errorf("%s: %v: %s", shortCmd(args), err, strings.TrimSpace(tail(r.Out, 600)))
	}
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// rt runs a runtime command on our root.
func (b *bench) rt(args ...string) result {
	return b.exec(append([]string{b.c.runtime, "--root", b.root, "--criu", b.c.criu}, args...)...)
}

func (b *bench) id(kind string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	return fmt.Sprintf("%s-%s-%d", b.prefix, kind, b.seq)
}

// rss records a runtime command's peak RSS under its command name.
func (b *bench) rss(cmd string, r result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.res.RSS == nil {
		b.res.RSS = map[string]int64{}
	}
	if r.RSSKiB > b.res.RSS[cmd] {
		b.res.RSS[cmd] = r.RSSKiB
	}
}

// images is a set of CRIU images of one workload, dumped by bare CRIU from
// a tree started on the host in its own session.
type images struct {
	Name   string
	MiB    int
	Dir    string
	Status string // the workload's status file ("" for the shell tree)
}

// makeImage starts the workload, waits until it is ready and dumps it
// (ending it) with bare CRIU.
func (b *bench) makeImage(name string, mib int) (*images, error) {
	img := &images{Name: name, MiB: mib, Dir: filepath.Join(b.dir, "img-"+name)}
	if err := os.MkdirAll(img.Dir, 0o755); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if mib == 0 {
		// The small tree: a shell loop with a child.
		cmd = exec.Command("/bin/sh", "-c", "while :; do sleep 1; done")
	} else {
		img.Status = filepath.Join(b.dir, "status-"+name)
		cmd = exec.Command(b.workload, "-mem", strconv.Itoa(mib), "-child", "-status", img.Status)
	}
	// Only stdio (/dev/null), own session; no cgroup-aware GOMAXPROCS
	// (it keeps cgroup files open).
	cmd.Env = []string{"PATH=/usr/bin:/bin", "GODEBUG=containermaxprocs=0,updatemaxprocs=0"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait()
	if img.Status != "" {
		if err := waitFile(img.Status, "ready", 2*time.Minute); err != nil {
			cmd.Process.Kill()
			return nil, fmt.Errorf("workload %s: %w", name, err)
		}
	} else {
		time.Sleep(300 * time.Millisecond)
	}
	r := b.exec(b.c.criu, "dump", "-t", strconv.Itoa(cmd.Process.Pid), "-D", img.Dir, "-o", "dump.log", "-v4")
	if r.Err != nil {
		cmd.Process.Kill()
		log, _ := os.ReadFile(filepath.Join(img.Dir, "dump.log"))
		return nil, fmt.Errorf("bare dump of %s: %w\n%s", name, r.Err, tail(string(log), 2000))
	}
	b.logf("images %s: dumped %d MiB workload in %s", name, mib, r.D.Round(time.Millisecond))
	return img, nil
}

func waitFile(path, want string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if s, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(s)) != "" {
			got := strings.TrimSpace(string(s))
			if got == want {
				return nil
			}
			if want == "ok" && strings.HasPrefix(got, "bad") {
				return fmt.Errorf("memory check: %s", got)
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("%s: no %q after %s", path, want, timeout)
}

// checkMemory asks the restored root to verify its memory and waits for
// the verdict.
func checkMemory(img *images, pid int) error {
	if img.Status == "" {
		return checkAlive(pid)
	}
	os.Remove(img.Status)
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("signal %d: %w", pid, err)
	}
	return waitFile(img.Status, "ok", 2*time.Minute)
}

func checkAlive(pid int) error {
	if err := syscall.Kill(pid, 0); err != nil {
		return fmt.Errorf("restored root %d is not running: %w", pid, err)
	}
	return nil
}

func readPid(path string) (int, error) {
	s, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(s)))
}

// cleanup deletes every container left in our root and the scratch dir.
func (b *bench) cleanup() {
	for _, f := range b.cleanups {
		f()
	}
	r := b.rt("list", "-q")
	var wg sync.WaitGroup
	ids := strings.Fields(r.Out)
	sem := make(chan struct{}, 4)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			b.rt("delete", "--force", id)
			<-sem
		}()
	}
	wg.Wait()
	if !b.c.keep {
		safeRemoveAll(b.dir)
	} else {
		fmt.Fprintln(os.Stderr, "bench: kept", b.dir)
	}
}

// safeRemoveAll removes dir unless something is still mounted below it: a
// container's rootfs is a bind mount of the host's "/", and removing
// through it would remove the host.
func safeRemoveAll(dir string) {
	for range 3 {
		mounts := mountsBelow(dir)
		if len(mounts) == 0 {
			os.RemoveAll(dir)
			return
		}
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: mounts left below %s; not removing it\n", dir)
}

func mountsBelow(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{dir} // cannot tell: assume the worst
	}
	var ms []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			ms = append(ms, f[4])
		}
	}
	return ms
}
