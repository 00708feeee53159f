package mountns

import "testing"

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
