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
