package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Peers: the tools a user would otherwise run for the same job, measured
// in the same run, alternately with ours:
//   - CRIU's own Python criu-ns script, from the CRIU source tree
//     scripts/install-criu.sh unpacks, against criu-ns mode;
//   - Debian's runc 1.1.5 (scripts/install-e2e-deps.sh), against the
//     runtime's bundle containers: the same OCI bundle, checkpointed and
//     restored by each;
//   - runc again, under the container managers podman and containerd's
//     CRI (managers.go).
//
// A Peer row's "floor" is the peer; its ratio is ours/the peer's.

// peer is a tool the benchmark compares with, and what installs it.
type peer struct {
	name    string
	path    string
	needs   []string      // other executables it needs
	check   func() string // anything else missing, in a few words ("": nothing)
	install string
}

// missing says what of p is not there, in one line, or "".
func (p peer) missing() string {
	if _, err := os.Stat(p.path); err != nil {
		return fmt.Sprintf("peer %s missing: %s (install it with %s)", p.name, p.path, p.install)
	}
	for _, n := range p.needs {
		if _, err := exec.LookPath(n); err != nil {
			return fmt.Sprintf("peer %s needs %s, not found (install it with %s)", p.name, n, p.install)
		}
	}
	if p.check != nil {
		if m := p.check(); m != "" {
			return fmt.Sprintf("peer %s missing: %s (install it with %s)", p.name, m, p.install)
		}
	}
	return ""
}

func (b *bench) criuNsPy() peer {
	return peer{name: "criu-ns (Python)", path: b.c.criuNsPy, needs: []string{"python3"},
		install: "scripts/install-criu.sh and scripts/install-test-deps.sh"}
}

func (b *bench) runcPeer() peer {
	return peer{name: "runc", path: b.c.runc, needs: []string{"busybox"}, install: "scripts/install-e2e-deps.sh"}
}

// peerReady says whether p's rows run: a missing peer fails the run under
// -peers require, and is noted and left out under -peers auto.
func (b *bench) peerReady(p peer) (bool, error) {
	if b.c.peers == "off" {
		return false, nil
	}
	m := p.missing()
	switch {
	case m == "":
		return true, nil
	case b.c.peers == "require":
		return false, fmt.Errorf("%s", m)
	}
	note := m + ": its rows are left out"
	for _, n := range b.res.PeerNotes {
		if n == note { // runc's rows are bundle and manager rows
			return false, nil
		}
	}
	b.logf("%s (-peers auto)", note)
	b.res.PeerNotes = append(b.res.PeerNotes, note)
	return false, nil
}

// criuNsPeers: `criu-ns restore -d --pidfile F` and `criu-ns dump -t PID`
// of the small tree, the Python script against criu-ns mode. Each dumps
// a tree it restored itself. The Python script's `restore -d` without
// --pidfile is not timed: it returns before CRIU has restored anything.
func (b *bench) criuNsPeers(img *images) error {
	py := b.criuNsPy()
	if ok, err := b.peerReady(py); !ok || err != nil {
		return err
	}
	link := filepath.Join(b.dir, "criu-ns")
	if err := os.Symlink(b.c.runtime, link); err != nil && !os.IsExist(err) {
		return err
	}
	os.Setenv("CRIU_NS_RUNTIME_ROOT", b.root)
	restore := &Op{Name: "criu-ns restore -d --pidfile", Workload: img.Name,
		FloorCmd:   "python3 criu-ns restore -d --pidfile F -D IMG --criu-binary CRIU (CRIU's scripts/criu-ns)",
		RuntimeCmd: "criu-ns restore -d --pidfile F -D IMG --criu-binary CRIU (criu-ns-runtime)",
		Note:       "the Python script looks for the restored pid once a second"}
	dump := &Op{Name: "criu-ns dump", Workload: img.Name,
		FloorCmd:   "python3 criu-ns dump -t PID -D DIR --criu-binary CRIU",
		RuntimeCmd: "criu-ns dump -t PID -D DIR --criu-binary CRIU (criu-ns-runtime)"}
	n := 0
	// one restores with tool, then dumps the tree it restored.
	one := func(tool []string) (rd, dd time.Duration, err error) {
		n++
		pidFile := filepath.Join(b.dir, fmt.Sprintf("criu-ns-%d.pid", n))
		r := b.exec(append(tool, "restore", "-d", "--pidfile", pidFile, "-D", img.Dir, "--criu-binary", b.c.criu)...)
		if r.Err != nil {
			return 0, 0, r.Err
		}
		pid, err := readPid(pidFile)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: pid file: %w", shortCmd(tool), err)
		}
		if err := checkAlive(pid); err != nil {
			return 0, 0, err
		}
		out := filepath.Join(b.dir, fmt.Sprintf("criu-ns-dump-%d", n))
		if err := os.Mkdir(out, 0o755); err != nil {
			return 0, 0, err
		}
		defer os.RemoveAll(out)
		d := b.exec(append(tool, "dump", "-t", fmt.Sprint(pid), "-D", out, "--criu-binary", b.c.criu)...)
		if d.Err != nil {
			return 0, 0, d.Err
		}
		return r.D, d.D, waitGone(pid)
	}
	tools := [2][]string{{"python3", py.path}, {link}}
	return b.peerPairs(restore, dump, b.c.pairs, [2]string{"python criu-ns", "ours"}, func(i int) (time.Duration, time.Duration, error) {
		return one(tools[i])
	})
}

// peerPairs runs the pairs of two Peer rows: per pair, one(0) runs the
// peer's two timed commands (a checkpoint and a restore, say), then one(1)
// ours; sides names the two in errors. first gets the first times, with
// pairs' warm-up and n measured pairs, second the second times of the
// same pairs.
func (b *bench) peerPairs(first, second *Op, n int, sides [2]string, one func(side int) (time.Duration, time.Duration, error)) error {
	var seconds [][2]time.Duration
	err := b.pairsN(first, n, func(measured bool) (time.Duration, time.Duration, error) {
		var f, s [2]time.Duration
		for i, name := range sides {
			var err error
			if f[i], s[i], err = one(i); err != nil {
				return 0, 0, fmt.Errorf("%s: %w", name, err)
			}
		}
		if measured {
			seconds = append(seconds, s)
		}
		return f[0], f[1], nil
	})
	if err != nil {
		return err
	}
	for _, d := range seconds {
		second.add(d[0], d[1])
	}
	b.logf("%-26s %-7s peer %8.1f ms  ours %8.1f ms  ratio %.3f", second.Name, second.Workload, second.FloorMed, second.RuntimeMed, second.RatioMed)
	b.res.Peers = append(b.res.Peers, first, second)
	return nil
}

// waitGone waits (up to 10 s) until pid has exited: a dump ends the tree.
func waitGone(pid int) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if checkAlive(pid) != nil {
			return nil
		}
	}
	return fmt.Errorf("pid %d still runs 10 s after its dump", pid)
}

// bundlePeers: the same OCI bundle (a busybox shell loop) started with
// `run -d`, then `checkpoint` (the container ends) and `restore -d`,
// timed, by runc and by the runtime, each with its own --root.
func (b *bench) bundlePeers() error {
	rc := b.runcPeer()
	if ok, err := b.peerReady(rc); !ok || err != nil {
		return err
	}
	bundleDir, err := b.makeBundle()
	if err != nil {
		return err
	}
	ck := &Op{Name: "bundle checkpoint", Workload: "busybox sh",
		FloorCmd:   "runc (1.1.5) checkpoint --image-path IMG ID",
		RuntimeCmd: "criu-ns-runtime checkpoint --image-path IMG ID"}
	rs := &Op{Name: "bundle restore -d", Workload: "busybox sh",
		FloorCmd:   "runc (1.1.5) restore -d --image-path IMG --bundle B ID",
		RuntimeCmd: "criu-ns-runtime restore -d --image-path IMG --bundle B ID"}
	runcRoot := filepath.Join(b.dir, "runc-root")
	tools := []struct {
		name string
		cmd  []string
	}{
		{"runc", []string{rc.path, "--root", runcRoot, "--log", filepath.Join(b.dir, "runc.log")}},
		{"ours", []string{b.c.runtime, "--root", b.root, "--criu", b.c.criu, "--log", filepath.Join(b.dir, "bundle.log")}},
	}
	// one runs the container, checkpoints and restores it, and removes it.
	one := func(tool []string) (cd, rd time.Duration, err error) {
		id := b.id("bundle")
		img := filepath.Join(b.dir, id+"-img")
		defer os.RemoveAll(img)
		defer b.exec(append(tool, "delete", "--force", id)...)
		// The container's stdio is /dev/null: a file of ours would be
		// gone (or still open) by the time it is dumped.
		if r := b.execNull(append(tool, "run", "-d", "--bundle", bundleDir, id)...); r.Err != nil {
			return 0, 0, r.Err
		}
		c := b.exec(append(tool, "checkpoint", "--image-path", img, id)...)
		if c.Err != nil {
			return 0, 0, c.Err
		}
		// runc 1.1.5 leaves the stopped container's record; ours removes it.
		b.exec(append(tool, "delete", "--force", id)...)
		r := b.execNull(append(tool, "restore", "-d", "--image-path", img, "--bundle", bundleDir, id)...)
		if r.Err != nil {
			return 0, 0, r.Err
		}
		s := b.exec(append(tool, "state", id)...)
		if s.Err != nil || !strings.Contains(s.Out, `"running"`) {
			return 0, 0, fmt.Errorf("%s state %s after restore: %v %s", tool[0], id, s.Err, s.Out)
		}
		return c.D, r.D, nil
	}
	return b.peerPairs(ck, rs, b.c.pairs, [2]string{tools[0].name, tools[1].name}, func(i int) (time.Duration, time.Duration, error) {
		return one(tools[i].cmd)
	})
}

// makeBundle writes an OCI bundle: a busybox rootfs and runc's default
// spec, running a shell loop with stdio on /dev/null and no terminal.
func (b *bench) makeBundle() (string, error) {
	dir := filepath.Join(b.dir, "bundle")
	bin := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	data, err := readBusybox()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return "", err
	}
	for _, name := range []string{"sh", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(bin, name)); err != nil {
			return "", err
		}
	}
	for _, d := range []string{"proc", "dev", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", d), 0o755); err != nil {
			return "", err
		}
	}
	if r := b.exec(b.c.runc, "spec", "--bundle", dir); r.Err != nil {
		return "", r.Err
	}
	path := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return "", err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"sh", "-c", "while :; do sleep 1; done"}
	spec["root"].(map[string]any)["readonly"] = false
	if raw, err = json.MarshalIndent(spec, "", "\t"); err != nil {
		return "", err
	}
	return dir, os.WriteFile(path, raw, 0o644)
}

// readBusybox reads the (static) busybox on PATH, for the images and
// bundles of the peers' rows.
func readBusybox() ([]byte, error) {
	path, err := exec.LookPath("busybox")
	if err != nil {
		return nil, err
	}
	return os.ReadFile(path)
}

// execNull runs args with stdio on /dev/null (a container started by it
// inherits them) and times it; on failure the error ends with the last
// lines of the --log file that args name, if any.
func (b *bench) execNull(args ...string) result {
	cmd := exec.Command(args[0], args[1:]...)
	t := time.Now()
	err := cmd.Run()
	r := result{D: time.Since(t)}
	if err != nil {
		log := ""
		for i, a := range args {
			if a == "--log" && i+1 < len(args) {
				data, _ := os.ReadFile(args[i+1])
				log = strings.TrimSpace(tail(string(data), 600))
			}
		}
		r.Err = fmt.Errorf("%s: %v: %s", shortCmd(args), err, log)
	}
	return r
}
