package specgen

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestRestoreNamespaces(t *testing.T) {
	s := Restore(Options{Args: []string{"init"}})
	var got []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			t.Errorf("namespace %s joins %s; want a new one", ns.Type, ns.Path)
		}
		got = append(got, ns.Type)
	}
	want := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("namespaces = %v, want %v", got, want)
	}
}

func TestRestoreMounts(t *testing.T) {
	s := Restore(Options{})
	byDest := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		byDest[m.Destination] = m
	}
	if len(byDest) != 2 {
		t.Fatalf("mounts = %+v, want only /proc and /dev", s.Mounts)
	}
	if p := byDest["/proc"]; p.Type != "proc" {
		t.Errorf("/proc mount = %+v, want a fresh proc", p)
	}
	d := byDest["/dev"]
	if d.Source != "/dev" || !reflect.DeepEqual(d.Options, []string{"rbind", "rslave"}) {
		t.Errorf("/dev mount = %+v, want an rslave rbind of the host's /dev", d)
	}
}

func TestRestoreKeepsTheHostsView(t *testing.T) {
	s := Restore(Options{Args: []string{"a", "b"}, Env: []string{"X=1"}})
	if s.Process.Capabilities != nil {
		t.Errorf("capabilities = %+v, want nil (keep the caller's)", s.Process.Capabilities)
	}
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("spec hides parts of the host: %+v", s.Linux)
	}
	if s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root = %+v, want the staged writable rootfs", s.Root)
	}
	if s.Linux.RootfsPropagation != "rslave" {
		t.Errorf("rootfs propagation = %q, want rslave", s.Linux.RootfsPropagation)
	}
	if s.Process.Cwd != "/" {
		t.Errorf("cwd = %q, want /", s.Process.Cwd)
	}
	if !reflect.DeepEqual(s.Process.Args, []string{"a", "b"}) || !reflect.DeepEqual(s.Process.Env, []string{"X=1"}) {
		t.Errorf("process = %+v", s.Process)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("devices = %+v, want all allowed", d)
	}
}
