package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Live migration between two hosts of this machine: network namespaces
// joined by a veth pair (10.199.251.0/30), each with its own --root.

// Migration is one mode's series of migrations of one tree.
type Migration struct {
	Mode, Workload       string
	FloorCmd, RuntimeCmd string
	// Total: the whole move. Downtime: from just before the tree's last
	// freeze until it runs on the destination (runtime: from --stats;
	// floor: dump + copy + restore, all of which it is frozen or gone for).
	FloorTotal, Total, Downtime []float64
	FloorTotalMed, TotalMed     float64
	// The destination's restore alone: the floor's bare CRIU restore,
	// and the runtime's from the images' arrival until it was restored
	// (--stats' restored_at_ms - images_sent_at_ms; plain mode only).
	FloorRestore, Restore         []float64
	FloorRestoreMed, RestoreMed   float64
	DowntimeMed, TotalRatioMed    float64
	TotalTarget, DowntimeTargetMs float64 // 0: none
	DowntimeTargetNote, Note      string
	Stats                         []json.RawMessage // the runtime's --stats
	Skipped                       string            // why the mode did not run
}

const (
	migSrcAddr = "10.199.251.1"
	migDstAddr = "10.199.251.2"
	migPort    = "7251"
)

// migHosts are the two hosts.
type migHosts struct {
	src, dst string // netns names
	dstRoot  string
}

func (b *bench) migHosts() (*migHosts, error) {
	h := &migHosts{src: b.prefix + "s", dst: b.prefix + "d", dstRoot: b.root + "-dst"}
	vs, vd := "v"+b.prefix+"s", "v"+b.prefix+"d"
	b.cleanups = append(b.cleanups, func() {
		exec.Command(b.c.runtime, "--root", h.dstRoot, "delete", "--force", b.prefix+"-mig").Run()
		exec.Command("ip", "netns", "del", h.src).Run()
		exec.Command("ip", "netns", "del", h.dst).Run()
	})
	steps := [][]string{
		{"netns", "add", h.src}, {"netns", "add", h.dst},
		{"link", "add", vs, "type", "veth", "peer", "name", vd},
		{"link", "set", vs, "netns", h.src}, {"link", "set", vd, "netns", h.dst},
		{"-n", h.src, "addr", "add", migSrcAddr + "/30", "dev", vs},
		{"-n", h.dst, "addr", "add", migDstAddr + "/30", "dev", vd},
		{"-n", h.src, "link", "set", vs, "up"}, {"-n", h.dst, "link", "set", vd, "up"},
		{"-n", h.src, "link", "set", "lo", "up"}, {"-n", h.dst, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ip %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	return h, nil
}

func in(netns string, args ...string) []string {
	return append([]string{"nsenter", "--net=/run/netns/" + netns, "--"}, args...)
}

// migrations measures plain and post-copy migrations of img (pre-copy
// where the kernel tracks soft-dirty pages) against the floor: bare
// `criu dump`, a copy of the images over the same link, bare `criu
// restore`.
func (b *bench) migrations(img *images) error {
	h, err := b.migHosts()
	if err != nil {
		return err
	}
	smallRestore, err := b.smallRestore()
	if err != nil {
		return err
	}
	floor := &Migration{Mode: "floor", Workload: img.Name}
	modes := []*Migration{
		{Mode: "plain", Workload: img.Name, TotalTarget: 1.10,
			RuntimeCmd: "criu-ns-runtime receive --listen ADDR:PORT ID (destination); criu-ns-runtime migrate --to ADDR:PORT ID (source)"},
		{Mode: "post-copy", Workload: img.Name, DowntimeTargetMs: 1.2 * smallRestore,
			DowntimeTargetNote: fmt.Sprintf("≤1.2× a local restore of the small tree (%.1f ms)", smallRestore),
			RuntimeCmd:         "... migrate --lazy ...", Note: "total: until every page was sent"},
		{Mode: "pre-copy", Workload: img.Name, RuntimeCmd: "... migrate --pre-copy 2 ..."},
	}
	if exec.Command(b.c.criu, "check", "--feature", "mem_dirty_track").Run() != nil {
		modes[2].Skipped = "this kernel has no soft-dirty tracking"
	}
	restorePipes, err := raisePipeMaxSize()
	if err != nil {
		modes[1].Skipped = err.Error()
	} else {
		defer restorePipes()
		if err := lazyPipesOK(); err != nil {
			modes[1].Skipped = err.Error()
		}
	}
	for i := -b.c.warmup; i < b.c.pairs; i++ {
		measured := i >= 0
		f, fRestore, err := b.floorMigration(h, img)
		if err != nil {
			return fmt.Errorf("migration floor: %w", err)
		}
		if measured {
			floor.FloorTotal = append(floor.FloorTotal, ms(f))
		}
		for _, m := range modes {
			if m.Skipped != "" {
				continue
			}
			total, stats, err := b.runtimeMigration(h, img, m.Mode, measured && len(m.Total) == 0)
			if err != nil {
				return fmt.Errorf("%s migration: %w", m.Mode, err)
			}
			if !measured {
				continue
			}
			var st struct {
				DowntimeMs   float64 `json:"downtime_ms"`
				ImagesSentAt float64 `json:"images_sent_at_ms"`
				RestoredAt   float64 `json:"restored_at_ms"`
			}
			json.Unmarshal(stats, &st)
			if m.Mode == "plain" {
				m.Restore = append(m.Restore, st.RestoredAt-st.ImagesSentAt)
				m.FloorRestore = append(m.FloorRestore, ms(fRestore))
			}
			m.Total = append(m.Total, ms(total))
			m.Downtime = append(m.Downtime, st.DowntimeMs)
			m.FloorTotal = append(m.FloorTotal, ms(f))
			m.Stats = append(m.Stats, stats)
		}
	}
	for _, m := range modes {
		if len(m.Total) == 0 {
			b.res.Migrations = append(b.res.Migrations, m)
			continue
		}
		var ratios []float64
		for i := range m.Total {
			ratios = append(ratios, m.Total[i]/m.FloorTotal[i])
		}
		m.FloorTotalMed, m.TotalMed, m.DowntimeMed, m.TotalRatioMed = median(m.FloorTotal), median(m.Total), median(m.Downtime), median(ratios)
		if len(m.Restore) > 0 {
			m.FloorRestoreMed, m.RestoreMed = median(m.FloorRestore), median(m.Restore)
		}
		m.FloorCmd = "nsenter -t INIT -p -m criu dump -t NSPID -D A; copy A to the destination over the veth (bench -copy-send/-copy-recv); criu restore -d -D B under a pid 1 that stays"
		b.logf("migration %-9s %-7s floor %8.1f ms  total %8.1f ms (ratio %.3f)  downtime %8.1f ms", m.Mode, m.Workload, m.FloorTotalMed, m.TotalMed, m.TotalRatioMed, m.DowntimeMed)
		b.res.Migrations = append(b.res.Migrations, m)
	}
	return nil
}

// smallRestore is the runtime's local restore of the small tree (ms): the
// restore rows' median, or measured here when they did not run.
func (b *bench) smallRestore() (float64, error) {
	for _, o := range b.res.Ops {
		if o.Name == "restore" && o.Workload == "small" {
			return o.RuntimeMed, nil
		}
	}
	var ds []float64
	for i := 0; i < 2*b.c.pairs+1; i++ {
		id := b.id("ref")
		r := b.rt("restore", "-d", "--image-path", b.images["small"].Dir, id)
		if r.Err != nil {
			return 0, r.Err
		}
		b.rt("delete", "--force", id)
		if i > 0 { // the first is the warm-up
			ds = append(ds, ms(r.D))
		}
	}
	return median(ds), nil
}

// restoreOnSource restores img as container id on the source host.
func (b *bench) restoreOnSource(h *migHosts, img *images, id string) (ctState, error) {
	if r := b.exec(in(h.src, b.c.runtime, "--root", b.root, "--criu", b.c.criu, "restore", "-d", "--image-path", img.Dir, id)...); r.Err != nil {
		return ctState{}, r.Err
	}
	return b.state(id)
}

// floorMigration moves the tree by hand with bare CRIU: dump inside the
// container's namespaces, copy the images over the veth, restore.
func (b *bench) floorMigration(h *migHosts, img *images) (total, restore time.Duration, err error) {
	id := b.id("mf")
	st, err := b.restoreOnSource(h, img, id)
	if err != nil {
		return 0, 0, err
	}
	defer b.rt("delete", "--force", id)
	a, dst := filepath.Join(b.dir, "mig-floor-a"), filepath.Join(b.dir, "mig-floor-b")
	for _, d := range []string{a, dst} {
		os.RemoveAll(d)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, 0, err
		}
	}
	defer os.RemoveAll(a)
	defer os.RemoveAll(dst)
	exec.Command("sync").Run()
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	// The receiver listens before the clock starts.
	recv := exec.Command("nsenter", "--net=/run/netns/"+h.dst, "--", self, "-copy-recv", migDstAddr+":"+migPort, dst)
	ready, readyW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	recv.ExtraFiles = []*os.File{readyW}
	recv.Stderr = os.Stderr
	if err := recv.Start(); err != nil {
		return 0, 0, err
	}
	readyW.Close()
	ready.Read(make([]byte, 1))
	ready.Close()

	// Hold the container's lock during the dump, as the runtime's own
	// dumps do: once the tree is gone the init leaves, and with it the
	// pid namespace, killing a CRIU still in it; it waits for the lock.
	lock, err := os.Open(filepath.Join(b.root, id))
	if err != nil {
		return 0, 0, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return 0, 0, err
	}
	t := time.Now()
	d := b.exec("nsenter", "--net=/run/netns/"+h.src, "-t", strconv.Itoa(st.initPid), "-p", "-m", b.c.criu, "dump",
		"-t", strconv.Itoa(st.rootNsPid), "-D", a, "-o", "dump.log", "-v4")
	syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if d.Err != nil {
		recv.Process.Kill()
		recv.Wait()
		return 0, 0, d.Err
	}
	if s := b.exec(in(h.src, self, "-copy-send", migDstAddr+":"+migPort, a)...); s.Err != nil {
		recv.Process.Kill()
		recv.Wait()
		return 0, 0, s.Err
	}
	if err := recv.Wait(); err != nil {
		return 0, 0, fmt.Errorf("copy-recv: %w", err)
	}
	restoreStart := time.Now()
	restored, err := b.floorInitRestoreIn(h.dst, dst)
	if err != nil {
		return 0, 0, err
	}
	d2 := restored.end.Sub(t)
	restored.release()
	return d2, restored.end.Sub(restoreStart), nil
}

// runtimeMigration moves the tree with receive and migrate, and returns
// migrate's wall time and its --stats.
func (b *bench) runtimeMigration(h *migHosts, img *images, mode string, verify bool) (time.Duration, json.RawMessage, error) {
	id := b.prefix + "-mig"
	if _, err := b.restoreOnSource(h, img, id); err != nil {
		return 0, nil, err
	}
	defer b.rt("delete", "--force", id)
	recvImg := filepath.Join(b.dir, "mig-recv")
	os.RemoveAll(recvImg)
	defer os.RemoveAll(recvImg)
	recv := exec.Command("nsenter", append([]string{"--net=/run/netns/" + h.dst, "--"},
		b.c.runtime, "--root", h.dstRoot, "--criu", b.c.criu, "receive", "--listen", migDstAddr+":"+migPort, "--image-path", recvImg, id)...)
	var recvOut strings.Builder
	recv.Stdout, recv.Stderr = &recvOut, &recvOut
	if err := recv.Start(); err != nil {
		return 0, nil, err
	}
	defer exec.Command(b.c.runtime, "--root", h.dstRoot, "delete", "--force", id).Run()
	if err := waitListening(recv.Process.Pid, migPort); err != nil {
		recv.Process.Kill()
		recv.Wait()
		return 0, nil, err
	}
	stats := filepath.Join(b.dir, "mig-stats.json")
	args := []string{b.c.runtime, "--root", b.root, "--criu", b.c.criu, "migrate", "--to", migDstAddr + ":" + migPort, "--stats", stats}
	switch mode {
	case "post-copy":
		args = append(args, "--lazy")
	case "pre-copy":
		args = append(args, "--pre-copy", "2")
	}
	m := b.exec(in(h.src, append(args, id)...)...)
	b.rss("migrate "+mode+" "+img.Name, m)
	werr := recv.Wait()
	if m.Err != nil || werr != nil {
		return 0, nil, fmt.Errorf("%v / receive: %v: %s", m.Err, werr, recvOut.String())
	}
	raw, err := os.ReadFile(stats)
	if err != nil {
		return 0, nil, err
	}
	if verify {
		out, err := exec.Command(b.c.runtime, "--root", h.dstRoot, "state", id).Output()
		if err != nil {
			return 0, nil, err
		}
		var st struct {
			Annotations map[string]string `json:"annotations"`
		}
		json.Unmarshal(out, &st)
		pid, _ := strconv.Atoi(st.Annotations["io.criu-ns-runtime.root.pid"])
		if err := checkMemory(img, pid); err != nil {
			return 0, nil, fmt.Errorf("the moved tree: %w", err)
		}
	}
	return m.D, json.RawMessage(raw), nil
}

// waitListening waits until process pid's network namespace has a
// listening TCP socket on port.
func waitListening(pid int, port string) error {
	p, _ := strconv.Atoi(port)
	want := fmt.Sprintf(":%04X 00000000:0000 0A", p)
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
		if strings.Contains(string(b), want) {
			return nil
		}
	}
	return fmt.Errorf("receive %d never listened on port %s", pid, port)
}

// restoredFloor is a tree bare CRIU restored under a pid 1 that stays.
type restoredFloor struct {
	end     time.Time // when CRIU returned
	release func()    // ends the pid 1, and with it the tree
}

// floorInitRestoreIn runs bare CRIU in netns under a pid 1 that stays
// (see floorInit) and reports when CRIU returned.
func (b *bench) floorInitRestoreIn(netns, dir string) (*restoredFloor, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer repR.Close()
	holdR, holdW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	args := in(netns, "unshare", "-pmf", "--mount-proc", "--propagation", "slave", self, "-floor-init",
		b.c.criu, "restore", "-d", "-D", dir, "-o", "restore.log", "-v4", "--manage-cgroups=ignore")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = holdR
	cmd.ExtraFiles = []*os.File{repW}
	err = cmd.Start()
	repW.Close()
	holdR.Close()
	if err != nil {
		holdW.Close()
		return nil, err
	}
	line := make([]byte, 64)
	n, _ := repR.Read(line)
	end := time.Now()
	release := func() {
		holdW.Close()
		cmd.Wait()
	}
	if strings.TrimSpace(string(line[:n])) != "ok" {
		release()
		log, _ := os.ReadFile(filepath.Join(dir, "restore.log"))
		return nil, fmt.Errorf("floor restore: %q\n%s", line[:n], tail(string(log), 1500))
	}
	return &restoredFloor{end: end, release: release}, nil
}

const pipeMaxSizeFile = "/proc/sys/fs/pipe-max-size"

// raisePipeMaxSize lets CRIU make the 4 MiB pipes a post-copy's page
// server needs without CAP_SYS_RESOURCE, for as long as the migrations
// run: the returned func puts the old value back.
func raisePipeMaxSize() (func(), error) {
	old, err := os.ReadFile(pipeMaxSizeFile)
	if err != nil {
		return nil, err
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(old))); n >= 4194304 || hasCapSysResource() {
		return func() {}, nil
	}
	if err := os.WriteFile(pipeMaxSizeFile, []byte("4194304"), 0); err != nil {
		return nil, fmt.Errorf("fs.pipe-max-size is %s and could not be raised to 4194304 for the post-copy row: %v",
			strings.TrimSpace(string(old)), err)
	}
	return func() { os.WriteFile(pipeMaxSizeFile, old, 0) }, nil
}

// lazyPipesOK says whether CRIU can make the pipes a post-copy's page
// server needs (shim's checkLazyPipes does the same for the runtime).
func lazyPipesOK() error {
	out, err := os.ReadFile(pipeMaxSizeFile)
	if err != nil {
		return err
	}
	if n, _ := strconv.Atoi(strings.TrimSpace(string(out))); n < 4194304 && !hasCapSysResource() {
		return fmt.Errorf("fs.pipe-max-size is %s and there is no CAP_SYS_RESOURCE: run `sysctl -w fs.pipe-max-size=4194304` first", strings.TrimSpace(string(out)))
	}
	return nil
}

func hasCapSysResource() bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return caps&(1<<24) != 0
		}
	}
	return false
}

// The floor's copy: the image files of a directory over one TCP
// connection, each as a 2-byte name length, the name, an 8-byte size and
// the bytes; a zero name length ends it.

// copySend sends dir's regular files to addr.
func copySend(addr, dir string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fi, _ := f.Stat()
		hdr := binary.BigEndian.AppendUint16(nil, uint16(len(e.Name())))
		hdr = append(hdr, e.Name()...)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(fi.Size()))
		if _, err := c.Write(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(c, f); err != nil {
			return err
		}
		f.Close()
	}
	_, err = c.Write([]byte{0, 0})
	return err
}

// copyRecv accepts one copySend on addr into dir; it writes a byte to fd
// 3 once it listens.
func copyRecv(addr, dir string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready := os.NewFile(3, "ready")
	ready.Write([]byte{1})
	ready.Close()
	c, err := ln.Accept()
	ln.Close()
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		var n [2]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return err
		}
		l := binary.BigEndian.Uint16(n[:])
		if l == 0 {
			return nil
		}
		name := make([]byte, l)
		var size [8]byte
		if _, err := io.ReadFull(c, name); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		if strings.ContainsRune(string(name), '/') {
			return errors.New("bad name")
		}
		f, err := os.Create(filepath.Join(dir, string(name)))
		if err != nil {
			return err
		}
		if _, err := io.CopyN(f, c, int64(binary.BigEndian.Uint64(size[:]))); err != nil {
			return err
		}
		f.Close()
	}
}
