package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// tmuxPane is a pane of a tmux server of the test's own (its own socket),
// running bash: a terminal as a user of tmux has it.
type tmuxPane struct {
	t      *testing.T
	socket string
	seen   int // lines of the pane's history matched already
}

func startTmux(t *testing.T, e *env) *tmuxPane {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed (scripts/install-test-deps.sh installs it): %v", err)
	}
	p := &tmuxPane{t: t, socket: "cnrt-" + runToken + "-" + strconv.Itoa(os.Getpid())}
	t.Cleanup(func() { p.tmuxQuiet("kill-server") })
	p.tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "40", "-c", e.dir,
		"env", "-i", "PATH="+os.Getenv("PATH"), "HOME="+e.dir, "TERM=screen", "PS1=$ ", "HISTFILE=/dev/null",
		"/bin/bash", "--norc", "--noprofile", "-i")
	p.run("echo pane-$((6*7))", "pane-42")
	return p
}

func (p *tmuxPane) command(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "tmux", append([]string{"-L", p.socket}, args...)...)
}

func (p *tmuxPane) tmux(args ...string) string {
	p.t.Helper()
	r := runCmd(p.t, p.command, args...)
	if r.code != 0 {
		p.t.Fatalf("tmux: %s", r)
	}
	return r.stdout
}

func (p *tmuxPane) tmuxQuiet(args ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), cleanTimeout)
	defer cancel()
	p.command(ctx, args...).Run()
}

// keys types text in the pane (send-keys -l: literally), then keys such
// as Enter or C-z.
func (p *tmuxPane) keys(text string, keys ...string) {
	p.t.Helper()
	if text != "" {
		p.tmux("send-keys", "-t", "t", "-l", text)
	}
	if len(keys) > 0 {
		p.tmux(append([]string{"send-keys", "-t", "t"}, keys...)...)
	}
}

// screen is the pane's history and screen, wrapped lines joined.
func (p *tmuxPane) screen() []string {
	p.t.Helper()
	out := p.tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")
	return strings.Split(strings.TrimRight(out, "\n"), "\n")
}

// expect waits for a line matching re below the lines matched so far.
func (p *tmuxPane) expect(re string) string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	var got string
	eventually(p.t, settleTime, fmt.Sprintf("%q in the tmux pane", re), func() error {
		lines := p.screen()
		for i := p.seen; i < len(lines); i++ {
			if m := rx.FindString(lines[i]); m != "" {
				got, p.seen = m, i+1
				return nil
			}
		}
		return fmt.Errorf("pane:\n%s", strings.Join(lines, "\n"))
	})
	return got
}

func (p *tmuxPane) run(line, want string) string {
	p.t.Helper()
	p.keys(line, "Enter")
	return p.expect(want)
}

// info asks tmux for the pane's pid (its bash) and terminal.
func (p *tmuxPane) info() (pid int, tty string) {
	p.t.Helper()
	f := strings.Fields(p.tmux("display-message", "-p", "-t", "t", "#{pane_pid} #{pane_tty}"))
	if len(f) != 2 {
		p.t.Fatalf("tmux display-message: %q", f)
	}
	pid, _ = strconv.Atoi(f[0])
	return pid, f[1]
}

// TestShellJobTmux is issue 9's scenario as a user meets it: a program
// started from a tmux pane's shell is dumped from elsewhere, then
// restored in that pane with `restore --shell-job`; it must answer what
// is typed next, stop and resume with Ctrl-Z and fg, take Ctrl-C and
// window-size changes, and give the pane's shell its terminal back.
func TestShellJobTmux(t *testing.T) {
	e := newEnv(t)
	pane := startTmux(t, e)
	shellPid, tty := pane.info()

	pane.keys(workloadBin+" -echo", "Enter")
	var job int
	eventually(t, settleTime, "the pane's job", func() error {
		for _, k := range childrenOf(shellPid) {
			if isWorkload(k) {
				job = k
				return nil
			}
		}
		return fmt.Errorf("no workload below the pane's shell %d", shellPid)
	})
	pane.run("before", "echo: before")
	img := filepath.Join(t.TempDir(), "img")
	criuDump(t, job, img, "--shell-job")
	waitGone(t, job)

	id := cid("tmux")
	pane.keys(strings.Join([]string{runtimeBin, "--root", e.root, "restore", "--shell-job", "--image-path", img, id}, " "), "Enter")
	_, root := e.runningTree(id, img)
	ttyNr, err := ttyNrOf(tty)
	if err != nil {
		t.Fatal(err)
	}
	if sid := statField(root, 6); sid != shellPid {
		t.Errorf("restored job %d is in session %d, want the pane shell's %d", root, sid, shellPid)
	}
	if got := statField(root, 7); got != ttyNr {
		t.Errorf("restored job's controlling terminal is %#x, want the pane's %s (%#x)", got, tty, ttyNr)
	}
	pane.run("after", "echo: after")
	pane.keys("", "C-c")
	pane.expect("echo: SIGINT")
	pane.tmux("resize-window", "-t", "t", "-x", "100", "-y", "30")
	pane.expect(`echo: winch 30x100`)
	pane.keys("", "C-z")
	pane.expect(`Stopped`)
	pane.run("echo shell-has-it-$((1+1))", "shell-has-it-2")
	pane.keys("fg; echo restore-exit=$?", "Enter")
	eventually(t, settleTime, "the job to run again", func() error {
		if s := procState(root); s == "T" {
			return fmt.Errorf("state %s", s)
		}
		return nil
	})
	pane.run("again", "echo: again")
	pane.keys("exit 3", "Enter")
	if got := pane.expect(`restore-exit=\d+`); got != "restore-exit=3" {
		t.Errorf("restore ended with %s, want the job's status 3", got)
	}
	waitGone(t, root)
	pane.run("echo pane-$((40+2))", "pane-42")
	if fg := statField(shellPid, 8); fg != shellPid {
		t.Errorf("the pane's foreground group is %d, want its shell's %d", fg, shellPid)
	}
	e.assertNothingLeft()
}
