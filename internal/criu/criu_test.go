package criu

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRestoreArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts RestoreOpts
		want string
	}{
		{"minimal", RestoreOpts{Common: Common{ImagesDir: "/i"}},
			"restore -d -S -D /i --manage-cgroups=ignore"},
		{"full", RestoreOpts{Common: Common{ImagesDir: "/i", WorkDir: "/w", LogFile: "restore.log", Verbosity: 4,
			TCPEstablished: true, ExtUnixSk: true, FileLocks: true, ShellJob: true, Extra: []string{"--x", "y"}},
			PidFile: "p", LazyPages: true},
			"restore -d -S -D /i -W /w -o restore.log -v4 --tcp-established --ext-unix-sk --file-locks --shell-job --pidfile p --manage-cgroups=ignore --lazy-pages --x y"},
	} {
		if got := strings.Join(tc.opts.Args(), " "); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestDumpArgs(t *testing.T) {
	for _, tc := range []struct {
		opts DumpOpts
		want string
	}{
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 7}, "dump -t 7 -D /i"},
		{DumpOpts{Common: Common{ImagesDir: "/i", WorkDir: "/w", LogFile: "dump.log", Verbosity: 4, ShellJob: true, Extra: []string{"--ghost-limit=1M"}},
			Tree: 1, LeaveRunning: true},
			"dump -t 1 -D /i -W /w -o dump.log -v4 --shell-job --leave-running --ghost-limit=1M"},
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 3, PreDump: true, LeaveRunning: true}, "pre-dump -t 3 -D /i"},
		{DumpOpts{Common: Common{ImagesDir: "/i", Extra: []string{"-v4"}}, Tree: 3, PreDump: true, Parent: "../pre1", TrackMem: true},
			"pre-dump -t 3 -D /i --prev-images-dir ../pre1 --track-mem -v4"},
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 3, LeaveRunning: true, Parent: "../pre", TrackMem: true},
			"dump -t 3 -D /i --leave-running --prev-images-dir ../pre --track-mem"},
	} {
		if got := strings.Join(tc.opts.Args(), " "); got != tc.want {
			t.Errorf("got %s\nwant %s", got, tc.want)
		}
	}
}

func TestMigrationArgs(t *testing.T) {
	for _, tc := range []struct {
		opts DumpOpts
		want string
	}{
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 5, Hook: "/hook"},
			"dump -t 5 -D /i --action-script /hook"},
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 5, Remote: &RemoteMemory{Socket: 5, PrevImagesDir: "pre-2", TrackMem: true}, Hook: "/hook"},
			"dump -t 5 -D /i --page-server --ps-socket 5 --prev-images-dir pre-2 --track-mem --action-script /hook"},
		{DumpOpts{Common: Common{ImagesDir: "/i"}, Tree: 5, Remote: &RemoteMemory{Socket: 5, Lazy: true}, Hook: "/hook", LeaveStopped: true},
			"dump -t 5 -D /i --lazy-pages --ps-socket 5 --action-script /hook --leave-stopped"},
		{DumpOpts{Common: Common{ImagesDir: "/i", Extra: []string{"-x"}}, Tree: 5, PreDump: true, Remote: &RemoteMemory{Socket: 5, PrevImagesDir: "../pre-1", TrackMem: true}},
			"pre-dump -t 5 -D /i --page-server --ps-socket 5 --prev-images-dir ../pre-1 --track-mem -x"},
	} {
		if got := strings.Join(tc.opts.Args(), " "); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
	got := strings.Join(PageServerArgs(Common{ImagesDir: "/d", WorkDir: "/w", LogFile: "ps.log", TCPEstablished: true}, 3, "pre-2"), " ")
	if want := "page-server -D /d -W /w -o ps.log --ps-socket 3 --prev-images-dir pre-2"; got != want {
		t.Errorf("page server: got %s, want %s", got, want)
	}
}

func TestLazyPagesArgs(t *testing.T) {
	got := strings.Join(LazyPagesArgs(Common{ImagesDir: "/i", WorkDir: "/w", LogFile: "lazy-pages.log", ShellJob: true}), " ")
	if want := "lazy-pages -D /i -W /w -o lazy-pages.log"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestLogErrors(t *testing.T) {
	log := `(00.000100) Version: 4.1.1
(00.001000) Error (criu/cr-restore.c:1500): Can't setup RLIMIT_NOFILE for 1: Operation not permitted
(00.002000) Error (criu/cr-restore.c:1480): Can't fork for 77: File exists
(00.002100)      1: Error (criu/pie/restorer.c:10): oops
(00.003000) Warn: not an error
(00.004000) Error (criu/cr-restore.c:2): a
(00.004000) Error (criu/cr-restore.c:2): b
(00.004000) Error (criu/cr-restore.c:2): c
(00.004000) Error (criu/cr-restore.c:2): d
`
	got := LogErrors(strings.NewReader(log))
	want := []string{
		"Error (criu/cr-restore.c:1480): Can't fork for 77: File exists",
		"Error (criu/pie/restorer.c:10): oops",
		"Error (criu/cr-restore.c:2): a", "Error (criu/cr-restore.c:2): b", "Error (criu/cr-restore.c:2): c",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LogErrors =\n%q\nwant\n%q", got, want)
	}
}

func TestWithLog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "restore.log")
	base := errors.New("criu restore failed")
	if err := WithLog(base, p); !errors.Is(err, base) || !strings.Contains(err.Error(), p) {
		t.Errorf("missing log: %v", err)
	}
	os.WriteFile(p, []byte("(0.1) Error (x.c:1): pstree.img is corrupt\n"), 0o600)
	err := WithLog(base, p)
	if !strings.Contains(err.Error(), "criu restore failed: Error (x.c:1): pstree.img is corrupt") {
		t.Errorf("WithLog = %v", err)
	}
	if WithLog(nil, p) != nil {
		t.Error("WithLog(nil) != nil")
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want Version
		ok   bool
	}{
		{"Version: 4.1.1\n", Version{4, 1, 1}, true},
		{"Version: 3.17\nGitID: v3.17\n", Version{3, 17, 0}, true},
		{"criu: command not found", Version{}, false},
	} {
		v, err := ParseVersion([]byte(tc.out))
		if (err == nil) != tc.ok || v != tc.want {
			t.Errorf("ParseVersion(%q) = %v, %v", tc.out, v, err)
		}
	}
	if !(Version{4, 1, 1}).AtLeast(4, 0) || (Version{3, 17, 0}).AtLeast(4, 0) || !(Version{5, 0, 0}).AtLeast(4, 1) {
		t.Error("AtLeast is wrong")
	}
}
