package tests

// Shell jobs, and the matrix CRIU's maintainers asked criu-ns to be tested
// on (CRIU issue #1909): --shell-job or not × detached or not × the
// dumpee is a plain host process, the init of a pid namespace of its own,
// or a tree we restored, dumped again × it leads its own session or is a
// job of a shell's session. Every cell runs with both command lines:
// criu-ns-runtime restore/checkpoint, and criu-ns restore/dump. The cells
// CRIU's own rules make impossible assert the refusal.
//
// A shell job is started, and restored, by a real bash on a terminal the
// test makes; the test types on that terminal, reads what the job prints,
// and checks the job's session, controlling terminal and the terminal's
// foreground group in /proc.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

type dumpeeKind int

const (
	hostProcess dumpeeKind = iota // a process the test started on the host
	nsInit                        // pid 1 of a pid namespace of its own (unshare -pf)
	redumped                      // a tree restored by the runtime, dumped again
)

func (d dumpeeKind) String() string {
	return [...]string{"host-process", "pidns-init", "redumped"}[d]
}

// cell is one cell of the matrix, run with one command line.
type cell struct {
	criuNs   bool // criu-ns restore/dump, else criu-ns-runtime restore/checkpoint
	shellJob bool
	detach   bool
	dumpee   dumpeeKind
	// shellSession: the dumpee is a job of a shell's session (not a
	// session leader) on the shell's terminal; else it leads a session.
	shellSession bool
}

func (c cell) name() string {
	cli := "runtime"
	if c.criuNs {
		cli = "criu-ns"
	}
	sj, det, sess := "no-shell-job", "foreground", "own-session"
	if c.shellJob {
		sj = "shell-job"
	}
	if c.detach {
		det = "detached"
	}
	if c.shellSession {
		sess = "shell-session"
	}
	return strings.Join([]string{cli, sj, det, c.dumpee.String(), sess}, "/")
}

// refusal says why CRIU's own rules refuse the cell, or "" if it works.
func (c cell) refusal() string {
	switch {
	case c.shellSession && !c.shellJob:
		return "CRIU dumps a tree whose root leads no session only with --shell-job"
	case c.shellSession && c.dumpee == nsInit:
		return "CRIU dumps no process whose session leader is outside its pid namespace"
	}
	return ""
}

func TestShellJobMatrix(t *testing.T) {
	for _, criuNs := range []bool{false, true} {
		for _, dumpee := range []dumpeeKind{hostProcess, nsInit, redumped} {
			for _, shellSession := range []bool{false, true} {
				for _, shellJob := range []bool{true, false} {
					for _, detach := range []bool{false, true} {
						c := cell{criuNs: criuNs, shellJob: shellJob, detach: detach, dumpee: dumpee, shellSession: shellSession}
						t.Run(c.name(), func(t *testing.T) { runCell(t, c) })
					}
				}
			}
		}
	}
}

// matrix is one cell's run: its env, and the commands of its CLI.
type matrix struct {
	cell
	e    *env
	link string // the criu-ns symlink
	n    int    // restores so far, for container ids
}

func runCell(t *testing.T, c cell) {
	m := &matrix{cell: c, e: newEnv(t), link: criuNsLink(t)}
	if why := c.refusal(); why != "" {
		m.refused(why)
		m.e.assertNothingLeft()
		return
	}
	img := m.dump(m.start())
	tr := m.restore(img, c.detach)
	m.check(tr)
	m.end(tr)
	m.e.assertNothingLeft()
}

// dumpee is a tree started (and maybe restored) for a cell.
type dumpee struct {
	pid     int
	counter string // its counter file (trees that are no shell job)
	tr      *tree  // when it is a restored tree
}

// tree is a restored tree as the test sees it.
type tree struct {
	id   string // its container
	root int    // the root's host pid
	sh   *shell // the shell it was restored from (nil if none)
	tty  *pty   // the terminal it was restored on (nil if none)
}

// start starts the cell's dumpee (for a redumped cell: starts a tree,
// dumps it and restores it).
func (m *matrix) start() dumpee {
	t := m.e.t
	if m.dumpee == redumped {
		first := m.cell
		first.dumpee = hostProcess
		orig := (&matrix{cell: first, e: m.e, link: m.link, n: 10}).start()
		fm := &matrix{cell: first, e: m.e, link: m.link, n: 10}
		img := fm.dump(orig)
		// A job of a shell's session is restored on a terminal no session
		// controls: the job then gets a session of its own in the
		// container, which can be dumped again (TestShellJobRedumpInCallersSession
		// shows why one restored into the caller's session cannot).
		var tr *tree
		if m.shellSession {
			tr = fm.restoreOnFreeTerminal(img)
		} else {
			tr = fm.restore(img, true)
		}
		return dumpee{pid: tr.root, counter: orig.counter, tr: tr}
	}
	dir := t.TempDir()
	counter := filepath.Join(dir, "counter")
	args := []string{"-counter", counter}
	if m.shellJob {
		args = []string{"-echo"}
	}
	var prefix []string
	if m.dumpee == nsInit {
		prefix = []string{"unshare", "-pf", "--kill-child"}
		if !m.shellSession {
			prefix = append(prefix, "setsid")
		}
	}
	argv := append(append(prefix, workloadBin), args...)
	if m.shellSession {
		sh := startShell(t, m.e)
		quoted := make([]string, len(argv))
		for i, a := range argv {
			quoted[i] = shellQuote(a)
		}
		sh.typeIn(strings.Join(quoted, " ") + "\n")
		d := dumpee{pid: sh.jobPid(), counter: counter}
		if sid := statField(d.pid, 6); sid != sh.pid() {
			t.Fatalf("test setup: the job %d is in session %d, want the shell's %d", d.pid, sid, sh.pid())
		}
		return d
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if m.shellJob {
		// A session leader with a terminal of its own, whose master the
		// test holds: a shell job that does not belong to a shell.
		tty := openPty(t)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty.slave, tty.slave, tty.slave
		if m.dumpee == hostProcess {
			cmd.SysProcAttr.Setctty = true
		}
	}
	w := &workload{cmd: cmd, done: make(chan struct{}), counter: counter}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(w.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-w.done })
	pid := cmd.Process.Pid
	if m.dumpee == nsInit {
		eventually(t, settleTime, "unshare's child", func() error {
			for _, k := range childrenOf(pid) {
				if isWorkload(k) {
					pid = k
					return nil
				}
			}
			return fmt.Errorf("no workload below unshare %d", pid)
		})
		if got := innermostPid(pid); got != 1 {
			t.Fatalf("test setup: the workload is pid %d in its namespace, want 1", got)
		}
	}
	if !m.shellJob {
		waitCounterAdvances(t, counter)
	}
	return dumpee{pid: pid, counter: counter}
}

// dumpArgs are the CRIU flags of the cell's dumps and restores.
func (m *matrix) shellJobFlag() []string {
	if m.shellJob {
		return []string{"--shell-job"}
	}
	return nil
}

// dump dumps d the cell's way and returns the image directory.
func (m *matrix) dump(d dumpee) string {
	t := m.e.t
	img := filepath.Join(t.TempDir(), "img")
	if err := os.Mkdir(img, 0o755); err != nil {
		t.Fatal(err)
	}
	r := m.dumpCmd(d, img)
	if r.code != 0 {
		t.Fatalf("dump failed: %s\ndump.log:\n%s", r, tail(readFile(filepath.Join(img, "dump.log")), 20))
	}
	waitGone(t, d.pid)
	if d.tr != nil && !m.criuNs {
		m.e.waitStatus(d.tr.id, "stopped")
		m.e.mustRun("delete", d.tr.id)
	}
	return img
}

func (m *matrix) dumpCmd(d dumpee, img string) result {
	t := m.e.t
	switch {
	case d.tr != nil && !m.criuNs:
		return m.e.run(append(append([]string{"checkpoint"}, m.shellJobFlag()...), "--image-path", img, d.tr.id)...)
	case m.criuNs:
		args := append([]string{"dump", "-t", strconv.Itoa(d.pid), "-D", img, "-o", "dump.log"}, m.shellJobFlag()...)
		return m.e.criuNs(m.link, args...)
	}
	args := append([]string{"dump", "-t", strconv.Itoa(d.pid), "-D", img, "-o", "dump.log"}, m.shellJobFlag()...)
	return runCmd(t, func(ctx context.Context, a ...string) *exec.Cmd {
		return exec.CommandContext(ctx, criuBin, a...)
	}, args...)
}

// restoreLine is the command line that restores img.
func (m *matrix) restoreLine(img string, detach bool) (args []string, id string) {
	m.n++
	if m.criuNs {
		args = append([]string{m.link, "restore", "-D", img}, m.shellJobFlag()...)
		if detach {
			args = append(args, "-d", "--pidfile", "root.pid")
		}
		return args, ""
	}
	id = cid(fmt.Sprintf("m%d", m.n))
	args = append([]string{runtimeBin, "--root", m.e.root, "restore", "--image-path", img}, m.shellJobFlag()...)
	if detach {
		args = append(args, "-d")
	}
	return append(args, id), id
}

// restore restores img from a new shell's terminal, as a user would.
func (m *matrix) restore(img string, detach bool) *tree {
	t := m.e.t
	args, id := m.restoreLine(img, detach)
	sh := startShell(t, m.e)
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	sh.typeIn(strings.Join(quoted, " ") + "; echo restore-exit=$?\n")
	if detach {
		if got := sh.expect(`restore-exit=\d+`); got != "restore-exit=0" {
			t.Fatalf("detached restore: %s; terminal:\n%s\nrestore.log:\n%s", got, sh.out, restoreLog(img))
		}
	}
	tr := &tree{sh: sh, tty: sh.pty}
	tr.id, tr.root = m.e.runningTree(id, img)
	return tr
}

// restoreOnFreeTerminal restores img detached, with a terminal that is no
// session's controlling terminal as stdio, from a session of its own (as
// CRIU's criu-ns tests do).
func (m *matrix) restoreOnFreeTerminal(img string) *tree {
	t := m.e.t
	args, id := m.restoreLine(img, true)
	tty := openPty(t)
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = m.e.dir
	cmd.Env = append(os.Environ(), "CRIU_NS_RUNTIME_ROOT="+m.e.root)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty.slave, tty.slave, tty.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		t.Fatalf("restore on a free terminal: %v; terminal:\n%s\nrestore.log:\n%s", err, tty.out, restoreLog(img))
	}
	tr := &tree{tty: tty}
	tr.id, tr.root = m.e.runningTree(id, img)
	// The job leads no session, so its parent, the job host, leads its
	// session, and the terminal is that session's.
	host := statField(tr.root, 4)
	if sid := statField(tr.root, 6); sid != host {
		t.Errorf("restored job %d is in session %d, want the one its job host %d leads", tr.root, sid, host)
	}
	if got := statField(tr.root, 7); got != tty.ttyNr() {
		t.Errorf("restored job's controlling terminal is %#x, want %s (%#x)", got, tty.name(), tty.ttyNr())
	}
	if fg, pgrp := statField(tr.root, 8), statField(tr.root, 5); fg != pgrp {
		t.Errorf("terminal %s has foreground group %d, want the job's %d", tty.name(), fg, pgrp)
	}
	tty.typeIn("on its own terminal\n")
	tty.expect("echo: on its own terminal")
	return tr
}

// runningTree waits for the restored tree (container id, or the only
// container of the root for criu-ns) and returns its id and root pid.
func (e *env) runningTree(id, img string) (string, int) {
	e.t.Helper()
	var root int
	eventually(e.t, settleTime, "the restored tree to run", func() error {
		ids, err := e.listIDs()
		if err != nil {
			return err
		}
		if id == "" {
			for _, c := range ids {
				if st := e.runQuiet("state", c); st.code == 0 && strings.Contains(st.stdout, `"running"`) {
					id = c
				}
			}
			if id == "" {
				return fmt.Errorf("no running container in %v; restore.log:\n%s", ids, restoreLog(img))
			}
		}
		r := e.runQuiet("state", id)
		if r.code != 0 {
			return fmt.Errorf("%s; restore.log:\n%s", r, restoreLog(img))
		}
		i := strings.Index(r.stdout, annRootPid+`": "`)
		if i < 0 {
			return fmt.Errorf("no root pid yet: %s", r.stdout)
		}
		rest := r.stdout[i+len(annRootPid)+4:]
		root, err = strconv.Atoi(rest[:strings.IndexByte(rest, '"')])
		return err
	})
	if !isWorkload(root) {
		e.t.Fatalf("root %d of %s is not a live workload", root, id)
	}
	checkFreshNamespaces(e.t, root)
	return id, root
}

// check checks a restored tree for the cell.
func (m *matrix) check(tr *tree) {
	t := m.e.t
	if m.dumpee == nsInit {
		if got := innermostPid(tr.root); got != 1 {
			t.Errorf("restored root %d is pid %d in its own namespace, want 1 (the dumpee was its namespace's init)", tr.root, got)
		}
	}
	if !m.shellJob {
		if sid := statField(tr.root, 6); sid != tr.root {
			t.Errorf("restored root %d is in session %d, want its own", tr.root, sid)
		}
		return
	}
	for fd := 0; fd <= 2; fd++ {
		if got := fdRdev(tr.root, fd); got != tr.tty.rdev {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", tr.root, fd))
			t.Errorf("restored job's fd %d is %q, want the restoring terminal %s", fd, link, tr.tty.name())
		}
	}
	sid, ttyNr, tpgid, pgrp := statField(tr.root, 6), statField(tr.root, 7), statField(tr.root, 8), statField(tr.root, 5)
	if !m.shellSession {
		// A session leader keeps its own session; CRIU gives it the
		// caller's terminal as stdio, not as controlling terminal.
		if sid != tr.root || ttyNr != 0 {
			t.Errorf("restored job %d: session %d, controlling terminal %#x; want its own session, none", tr.root, sid, ttyNr)
		}
	} else {
		// A job of the restoring shell's session, on its terminal.
		if sid != tr.sh.pid() {
			t.Errorf("restored job %d is in session %d, want the restoring shell's %d", tr.root, sid, tr.sh.pid())
		}
		if ttyNr != tr.tty.ttyNr() {
			t.Errorf("restored job's controlling terminal is %#x, want %s (%#x)", ttyNr, tr.tty.name(), tr.tty.ttyNr())
		}
		want := pgrp // in the foreground while it runs
		if m.detach {
			want = tr.sh.pid() // in the background: the shell keeps the terminal
		}
		if tpgid != want {
			t.Errorf("terminal %s has foreground group %d, want %d (job's group %d, shell %d)", tr.tty.name(), tpgid, want, pgrp, tr.sh.pid())
		}
	}
	if m.detach {
		if m.shellSession {
			tr.sh.works() // the job is in the background: typing is the shell's
			// ...and its read of the terminal stops it, as a background
			// job's does.
			eventually(t, settleTime, "the background job to stop reading the terminal", func() error {
				if st := procState(tr.root); st != "T" {
					return fmt.Errorf("state %q", st)
				}
				return nil
			})
		} else {
			// The job reads the terminal, which is not its controlling
			// terminal, as it does under `criu restore -d --shell-job`:
			// typing would feed it or the shell. The shell keeps it.
			tr.sh.holdsTerminal()
		}
		return
	}
	m.jobControl(tr)
}

// jobControl types at a foreground job as a user would.
func (m *matrix) jobControl(tr *tree) {
	t := m.e.t
	tty := tr.tty
	tty.typeIn("hello\n")
	tty.expect("echo: hello")
	tty.typeIn("\x03") // Ctrl-C
	tty.expect("echo: SIGINT")
	tty.resize(33, 77)
	tty.expect("echo: winch 33x77")

	tty.typeIn("\x1a") // Ctrl-Z: the job stops, the shell gets the terminal
	tty.expect(`Stopped`)
	eventually(t, settleTime, "the job to stop", func() error {
		if st := procState(tr.root); st != "T" {
			return fmt.Errorf("state %q", st)
		}
		if fg := tty.foreground(); fg != tr.sh.pid() {
			return fmt.Errorf("the terminal's foreground group is %d, not the shell's %d", fg, tr.sh.pid())
		}
		return nil
	})
	tr.sh.works()
	// The command line's own echo ran when the restore stopped; fg's
	// status is the restore's.
	tty.typeIn("fg; echo restore-exit=$?\n")
	eventually(t, settleTime, "the job to run again", func() error {
		if st := procState(tr.root); st == "T" {
			return fmt.Errorf("state %q", st)
		}
		return nil
	})
	if m.shellSession {
		eventually(t, settleTime, "the job to be the foreground again", func() error {
			if fg, pgrp := tty.foreground(), statField(tr.root, 5); fg != pgrp {
				return fmt.Errorf("foreground %d, job's group %d", fg, pgrp)
			}
			return nil
		})
	}
	tty.typeIn("again\n")
	tty.expect("echo: again")
}

// end ends a restored tree and checks how the restore ended.
func (m *matrix) end(tr *tree) {
	t := m.e.t
	if m.detach {
		if err := syscall.Kill(tr.root, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, tr.root)
		m.removeEnded(tr)
		return
	}
	// criu-ns exits as CRIU does, 0 once the tree ended; the runtime
	// passes on the root's status.
	want, code := "0", "42"
	if m.shellJob {
		tr.tty.typeIn("exit 7\n")
		code = "7"
	} else if err := syscall.Kill(tr.root, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !m.criuNs {
		want = code
	}
	if got := tr.sh.expect(`restore-exit=\d+`); got != "restore-exit="+want {
		t.Errorf("the foreground restore ended with %s, want restore-exit=%s", got, want)
	}
	waitGone(t, tr.root)
	tr.sh.works()
}

// refused runs a cell that CRIU's rules make impossible: its dump must
// fail, say why, and leave the dumpee running.
func (m *matrix) refused(why string) {
	t := m.e.t
	t.Logf("refused by CRIU's rules: %s", why)
	var d dumpee
	if m.dumpee == redumped {
		// A job of a shell's session, restored; its dump without
		// --shell-job must be refused.
		job := m.cell
		job.shellJob = true
		d = (&matrix{cell: job, e: m.e, link: m.link}).start()
	} else {
		d = m.start()
	}
	img := filepath.Join(t.TempDir(), "img")
	os.Mkdir(img, 0o755)
	r := m.dumpCmd(d, img)
	if r.code == 0 {
		t.Fatalf("dump succeeded: %s", r)
	}
	msg := r.stdout + r.stderr + readFile(filepath.Join(img, "dump.log"))
	wants := map[bool]string{false: "--shell-job", true: "outside of its pid namespace"}
	if want := wants[m.dumpee == nsInit]; !strings.Contains(msg, want) {
		t.Errorf("the refusal does not say %q: %s", want, r)
	}
	if d.tr != nil && !m.criuNs {
		checkFailure(t, r, []string{"--shell-job"})
	}
	if !isWorkload(d.pid) {
		t.Fatalf("the dumpee %d did not survive the refused dump", d.pid)
	}
	if imgs, _ := filepath.Glob(filepath.Join(img, "*.img")); len(imgs) > 0 && d.tr != nil {
		t.Errorf("a refused dump left images: %v", imgs)
	}
	syscall.Kill(d.pid, syscall.SIGKILL)
	waitGone(t, d.pid)
	if d.tr != nil {
		m.removeEnded(d.tr)
	}
}

// removeEnded removes the container of a tree that has ended: criu-ns's
// own goes by itself (its janitor), the runtime's is deleted.
func (m *matrix) removeEnded(tr *tree) {
	if m.criuNs {
		m.e.waitRemoved(tr.id)
		return
	}
	m.e.waitStatus(tr.id, "stopped")
	m.e.mustRun("delete", tr.id)
}

// waitRemoved waits until container id is gone from the root.
func (e *env) waitRemoved(id string) {
	e.t.Helper()
	eventually(e.t, settleTime, "container "+id+" to be removed", func() error {
		ids, err := e.listIDs()
		if err != nil {
			return err
		}
		for _, c := range ids {
			if c == id {
				return fmt.Errorf("still listed: %q", ids)
			}
		}
		return nil
	})
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestShellJobRedumpInCallersSession: a job restored into the session of
// the shell that restored it, as `criu restore --shell-job` does, has its
// session leader outside the container's pid namespace, and CRIU refuses
// to dump such a process (cr-dump.c: "A session leader of X is outside of
// its pid namespace"). The checkpoint must say so and change nothing.
func TestShellJobRedumpInCallersSession(t *testing.T) {
	for _, criuNs := range []bool{false, true} {
		c := cell{criuNs: criuNs, shellJob: true, detach: true, dumpee: hostProcess, shellSession: true}
		t.Run(c.name(), func(t *testing.T) {
			m := &matrix{cell: c, e: newEnv(t), link: criuNsLink(t)}
			tr := m.restore(m.dump(m.start()), true)
			img := filepath.Join(t.TempDir(), "img2")
			os.Mkdir(img, 0o755)
			r := m.dumpCmd(dumpee{pid: tr.root, tr: tr}, img)
			msg := r.stderr
			if criuNs {
				if r.code != 1 || !strings.HasPrefix(msg, "criu-ns: ") || strings.Count(msg, "\n") != 1 {
					t.Errorf("want exit 1 and one line starting with criu-ns: : %s", r)
				}
			} else {
				msg = checkFailure(t, r, nil)
			}
			if !strings.Contains(msg, "session") || !strings.Contains(msg, "outside") {
				t.Errorf("the refusal does not name CRIU's rule: %s", msg)
			}
			if !isWorkload(tr.root) {
				t.Fatalf("the tree did not survive the refused checkpoint")
			}
			if imgs, _ := filepath.Glob(filepath.Join(img, "*.img")); len(imgs) > 0 {
				t.Errorf("a refused dump left images: %v", imgs)
			}
			m.end(tr)
			m.e.assertNothingLeft()
		})
	}
}

// TestShellJobRestoreFailures: a shell-job restore that cannot be done
// says why on one line, leaves the images, the terminal and the host as
// they were.
func TestShellJobRestoreFailures(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	counter := filepath.Join(dir, "counter")
	sh1 := startShell(t, e)
	sh1.typeIn(shellQuote(workloadBin) + " -echo -counter " + shellQuote(counter) + "\n")
	job := sh1.jobPid()
	waitCounterAdvances(t, counter)
	img := filepath.Join(dir, "img")
	criuDump(t, job, img, "--shell-job")
	waitGone(t, job)
	before := hashDir(t, img)

	t.Run("CRIU fails", func(t *testing.T) {
		e := e.on(t)
		if err := os.Rename(counter, counter+".gone"); err != nil { // a file the job has open
			t.Fatal(err)
		}
		defer os.Rename(counter+".gone", counter)
		sh := startShell(t, e)
		sh.typeIn(strings.Join([]string{shellQuote(runtimeBin), "--root", shellQuote(e.root), "restore", "--shell-job",
			"--image-path", shellQuote(img), cid("sjfail")}, " ") + " 2>" + shellQuote(filepath.Join(dir, "err")) + "; echo restore-exit=$?\n")
		if got := sh.expect(`restore-exit=\d+`); got != "restore-exit=1" {
			t.Errorf("a failing shell-job restore ended with %s, want restore-exit=1", got)
		}
		checkFailure(t, result{args: []string{"restore"}, code: 1, stderr: readFile(filepath.Join(dir, "err"))}, []string{"counter"})
		sh.works()
		assertSameImages(t, before, img)
		e.assertNothingLeft()
	})

	t.Run("another session's terminal", func(t *testing.T) {
		e := e.on(t)
		// stdin is sh1's terminal, the controlling terminal of sh1's
		// session; the restore runs in a session of its own.
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := e.command(ctx, "restore", "--shell-job", "-d", "--image-path", img, cid("sjother"))
		cmd.Stdin = sh1.slave
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		err := cmd.Run()
		r := result{args: cmd.Args, stdout: out.String(), stderr: errb.String(), code: exitCode(cmd, err), err: err}
		checkFailure(t, r, []string{"controlling terminal of another session"})
		sh1.works()
		assertSameImages(t, before, img)
		e.assertNothingLeft()
	})
}
