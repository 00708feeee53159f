package mountns

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestCLIRestoresTree(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"x", "restore", "id"}, true},
		{[]string{"x", "--root", "/r", "restore", "--image-path", "/i", "-d", "id"}, true},
		{[]string{"x", "--root=/r", "-log", "l", "--debug", "restore", "id"}, true},
		{[]string{"x", "--log-format", "json", "--criu", "/c", "restore", "--", "--tcp-close", "id"}, true},
		// The value of a global flag is not the command.
		{[]string{"x", "--root", "restore", "state", "id"}, false},
		{[]string{"x", "restore", "--bundle", "/b", "id"}, false},
		{[]string{"x", "restore", "-b", "/b", "id"}, false},
		{[]string{"x", "restore", "--bundle=/b", "id"}, false},
		{[]string{"x", "restore", "-b=/b", "id"}, false},
		// After "--", arguments are CRIU's.
		{[]string{"x", "restore", "--", "-b", "id"}, true},
		{[]string{"x", "--bundled", "restore", "id"}, true},
		{[]string{"x", "checkpoint", "id"}, false},
		{[]string{"x", "--", "restore", "id"}, false},
		{[]string{"x"}, false},
		{[]string{"x", "init"}, false},
	} {
		if got := cliRestoresTree(tc.args); got != tc.want {
			t.Errorf("cliRestoresTree(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestNotPrivateInTests(t *testing.T) {
	// The test binary's command line is no tree restore.
	if Private() {
		t.Fatal("the constructor unshared for a command line that restores nothing")
	}
}

func TestSwrkFd(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"/usr/sbin/criu-ns", "swrk", "5"}, 5},
		{[]string{"criu-ns", "swrk", "5", "x"}, -1},
		{[]string{"criu-ns", "restore", "-D", "d"}, -1},
		{[]string{"criu-ns", "swrk", "5x"}, -1},
		{[]string{"criu-ns", "swrk", ""}, -1},
		{[]string{"criu-ns-runtime", "criu", "swrk", "7"}, 7},
		{[]string{"criu-ns-runtime", "--root", "/r", "--debug", "criu", "swrk", "7"}, 7},
		{[]string{"criu-ns-runtime", "--root", "criu", "swrk", "7"}, -1}, // "criu" is --root's value
		{[]string{"criu-ns-runtime", "swrk", "7"}, -1},
		{[]string{"criu"}, -1},
	} {
		if got := swrkFd(tc.args); got != tc.want {
			t.Errorf("swrkFd(%q) = %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestSwrkRestores(t *testing.T) {
	for _, tc := range []struct {
		packet []byte
		want   bool
	}{
		{[]byte{0x08, 0x02, 0x12, 0x00}, true},  // type RESTORE, then opts
		{[]byte{0x08, 0x01, 0x12, 0x00}, false}, // DUMP
		{[]byte{0x08, 0x0a}, false},             // VERSION
		{[]byte{0x12, 0x00, 0x08, 0x02}, false}, // opts first: the Go side re-execs
	} {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Write(fds[0], tc.packet)
		if got := swrkRestores(fds[1]); got != tc.want {
			t.Errorf("swrkRestores(% x) = %v, want %v", tc.packet, got, tc.want)
		}
		// The peek leaves the request for the proxy.
		b := make([]byte, 16)
		if n, _ := unix.Read(fds[1], b); n != len(tc.packet) {
			t.Errorf("after the peek, %d bytes of %d are left", n, len(tc.packet))
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	}
}
