package pidfd

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRefOfSelf(t *testing.T) {
	r, err := Of(os.Getpid())
	if err != nil || r.StartTime == 0 {
		t.Fatalf("Of(self) = %v, %v", r, err)
	}
	if !r.Alive() {
		t.Fatal("this process is not alive by its own Ref")
	}
	// The same pid with another start time is another process.
	other := Ref{Pid: r.Pid, StartTime: r.StartTime + 1}
	if _, err := other.Open(); !errors.Is(err, ErrGone) {
		t.Fatalf("Open of a Ref with a wrong start time = %v, want ErrGone", err)
	}
	if _, err := (Ref{}).Open(); !errors.Is(err, ErrGone) {
		t.Fatalf("Open of the zero Ref = %v, want ErrGone", err)
	}
}

func TestSignalAndWait(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r, err := Of(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Wait(10 * time.Millisecond) {
		t.Fatal("Wait says a sleeping process exited")
	}
	if err := p.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !p.Wait(5 * time.Second) {
		t.Fatal("Wait did not see the killed process exit")
	}
	// A zombie is gone for Open, and signals through the old pidfd fail
	// once it is reaped.
	if r.Alive() {
		t.Error("a zombie counts as alive")
	}
	cmd.Wait()
	if err := p.Signal(unix.SIGKILL); !errors.Is(err, ErrGone) {
		t.Errorf("Signal after the process was reaped = %v, want ErrGone", err)
	}
	if _, err := Of(cmd.Process.Pid); !errors.Is(err, ErrGone) {
		t.Errorf("Of a reaped pid = %v, want ErrGone", err)
	}
}

// TestParseStat: the fields count from the last ')', whatever the comm
// holds; a short or odd line is malformed.
func TestParseStat(t *testing.T) {
	tail := " 0 0 0 0 0 0 0 0 0 0 0 0 0 987654321 12 34\n" // fields 9-21, 22 and on
	for line, want := range map[string]stat{
		"42 (sh) S 7 42 42 0 -1" + tail:        {'S', 7, 987654321},
		"42 (a ) b (c)) Z 1 42 42 0 -1" + tail: {'Z', 1, 987654321},
	} {
		if got, ok := parseStat([]byte(line)); !ok || got != want {
			t.Errorf("%q: %+v, %v; want %+v", line, got, ok, want)
		}
	}
	for _, line := range []string{
		"", "42 sh S 7", "42 (sh) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0\n", "42 (sh) SS 7 42 42 0 -1" + tail,
		"42 (sh) S x 42 42 0 -1" + tail, "42 (sh) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 -5 1\n",
		"42 (sh) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 99999999999999999999999 1\n",
	} {
		if got, ok := parseStat([]byte(line)); ok {
			t.Errorf("%q: %+v, want malformed", line, got)
		}
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := parseStat(b); !ok || st.ppid != os.Getppid() || st.state != 'R' {
		t.Errorf("/proc/self/stat: %+v, %v; want ppid %d, state R", st, ok, os.Getppid())
	}
}
