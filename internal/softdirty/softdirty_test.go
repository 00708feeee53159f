package softdirty

import (
	"os"
	"os/exec"
	"testing"
)

// The probe must give CRIU's own verdict, on a kernel with soft-dirty
// tracking (the tests/vm guest) and on one without (the machine this was
// written on) alike.
func TestAgreesWithCRIU(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatalf("criu check needs root (euid %d)", os.Geteuid())
	}
	criu, err := exec.LookPath("criu")
	if err != nil {
		criu = "/usr/local/sbin/criu"
		if _, err := os.Stat(criu); err != nil {
			t.Fatalf("criu is neither on PATH nor at %s (make deps installs it)", criu)
		}
	}
	ok, err := Available()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(criu, "check", "--feature", "mem_dirty_track").CombinedOutput()
	if criuOK := err == nil; ok != criuOK {
		t.Fatalf("the probe says soft-dirty tracking is %v, criu check --feature mem_dirty_track says %v: %s", ok, criuOK, out)
	}
	t.Logf("soft-dirty tracking: %v (CRIU agrees)", ok)
	// Twice: the probe leaves nothing behind that changes its answer.
	if again, err := Available(); err != nil || again != ok {
		t.Fatalf("a second probe says %v (%v), the first %v", again, err, ok)
	}
}
