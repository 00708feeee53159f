package shim

import (
	"reflect"
	"testing"

	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestPidClash(t *testing.T) {
	for _, tc := range []struct {
		errs []string
		want bool
	}{
		{[]string{"Error (criu/cr-restore.c:1230): Can't fork for 8: File exists"}, true},
		{[]string{"Error (criu/pie/restorer.c:2106): Unable to create a thread: -17"}, true},
		{[]string{"Error (criu/cr-restore.c:1530): Pid 12 do not match expected 8"}, true},
		{[]string{"Error (criu/cr-restore.c:1230): Can't fork for 8: Operation not permitted"}, false},
		{[]string{"Error (criu/pie/restorer.c:2106): Unable to create a thread: -170"}, false},
		{[]string{"Error (criu/files-reg.c:2120): Can't open file tmp/x on restore: No such file or directory"}, false},
		{nil, false},
	} {
		if got := pidClash(tc.errs); got != tc.want {
			t.Errorf("pidClash(%q) = %v, want %v", tc.errs, got, tc.want)
		}
	}
}

func TestPodPidNamespace(t *testing.T) {
	spec := func(ns ...specs.LinuxNamespace) *specs.Spec {
		return &specs.Spec{Linux: &specs.Linux{Namespaces: ns}}
	}
	pod := specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/7/ns/pid"}
	for _, tc := range []struct {
		name    string
		spec    *specs.Spec
		pidNs   string
		join    []string
		unshare int
		ok      bool
	}{
		{"CRI host network, shared pid", spec(pod, specs.LinuxNamespace{Type: specs.IPCNamespace, Path: "/proc/7/ns/ipc"},
			specs.LinuxNamespace{Type: specs.MountNamespace}), "/proc/7/ns/pid", []string{"/proc/7/ns/ipc"}, 0, true},
		{"pod network, new uts", spec(pod, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/x"},
			specs.LinuxNamespace{Type: specs.UTSNamespace}), "/proc/7/ns/pid", []string{"/var/run/netns/x"}, unix.CLONE_NEWUTS, true},
		{"own pid namespace", spec(specs.LinuxNamespace{Type: specs.PIDNamespace}), "", nil, 0, false},
		{"host pid namespace", spec(specs.LinuxNamespace{Type: specs.MountNamespace}), "", nil, 0, false},
		{"user namespace", spec(pod, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/7/ns/user"}), "", nil, 0, false},
		{"no linux section", &specs.Spec{}, "", nil, 0, false},
	} {
		pidNs, join, unshare, ok := podPidNamespace(tc.spec)
		if pidNs != tc.pidNs || !reflect.DeepEqual(join, tc.join) || unshare != tc.unshare || ok != tc.ok {
			t.Errorf("%s: podPidNamespace = %q, %q, %#x, %v; want %q, %q, %#x, %v",
				tc.name, pidNs, join, unshare, ok, tc.pidNs, tc.join, tc.unshare, tc.ok)
		}
	}
}

func TestSetPidNamespace(t *testing.T) {
	cfg := &configs.Config{Namespaces: configs.Namespaces{
		{Type: configs.NEWNS}, {Type: configs.NEWPID, Path: "/proc/7/ns/pid"}, {Type: configs.NEWIPC, Path: "/proc/7/ns/ipc"},
	}}
	setPidNamespace(cfg, "")
	if got := cfg.Namespaces.PathOf(configs.NEWPID); got != "/proc/7/ns/pid" {
		t.Errorf("empty path changed the pid namespace to %q", got)
	}
	setPidNamespace(cfg, "/proc/99/ns/pid")
	if got := cfg.Namespaces.PathOf(configs.NEWPID); got != "/proc/99/ns/pid" {
		t.Errorf("pid namespace path %q, want /proc/99/ns/pid", got)
	}
	if got := cfg.Namespaces.PathOf(configs.NEWIPC); got != "/proc/7/ns/ipc" {
		t.Errorf("ipc namespace path changed to %q", got)
	}
}
