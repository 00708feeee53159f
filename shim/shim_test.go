package shim

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want unix.Signal
		ok   bool
	}{
		{"TERM", unix.SIGTERM, true}, {"SIGKILL", unix.SIGKILL, true}, {"usr1", unix.SIGUSR1, true},
		{"9", unix.SIGKILL, true}, {"15", unix.SIGTERM, true},
		{"0", 0, true},
		{"BOGUS", 0, false}, {"SIG", 0, false}, {"-1", 0, false}, {"65", 0, false}, {"", 0, false},
	} {
		got, err := ParseSignal(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestCheckSpecVersion(t *testing.T) {
	for v, ok := range map[string]bool{
		"1.0.0": true, "1.0.2": true, "1.1.0": true, "1.2.1": true, "1.3.0": true, "1.3.9-dev": true,
		"1.4.0": false, "2.0.0": false, "0.9.0": false, "": false, "1.0": false,
	} {
		if err := checkSpecVersion(v); (err == nil) != ok {
			t.Errorf("checkSpecVersion(%q) = %v, want ok=%v", v, err, ok)
		}
	}
}

func TestApplyResources(t *testing.T) {
	limit, swap, shares, quota, pids := int64(64<<20), int64(128<<20), uint64(512), int64(50000), int64(99)
	weight := uint16(300)
	c := &cgroups.Resources{Memory: 1, CpuPeriod: 100000}
	applyResources(c, &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: &limit, Swap: &swap},
		CPU:     &specs.LinuxCPU{Shares: &shares, Quota: &quota, Cpus: "0", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: &pids},
		BlockIO: &specs.LinuxBlockIO{Weight: &weight},
	})
	if c.Memory != limit || c.MemorySwap != swap || c.CpuShares != shares || c.CpuQuota != quota ||
		c.CpuPeriod != 100000 || c.CpusetCpus != "0" || c.PidsLimit == nil || *c.PidsLimit != pids || c.BlkioWeight != weight {
		t.Errorf("resources = %+v", c)
	}
	unlimited := int64(-1)
	c = &cgroups.Resources{}
	applyResources(c, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &unlimited}})
	if c.Memory != -1 || c.MemorySwap != -1 {
		t.Errorf("unlimited memory: %+v", c)
	}
}

func TestNewProcess(t *testing.T) {
	p, err := newProcess(&specs.Process{
		Args: []string{"sh"}, Env: []string{"A=1"}, Cwd: "/w",
		User:         specs.User{UID: 5, GID: 6, AdditionalGids: []uint32{7}},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}},
		Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 10, Soft: 5}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != 5 || p.GID != 6 || !reflect.DeepEqual(p.AdditionalGroups, []int{7}) || p.Cwd != "/w" ||
		p.Capabilities.Bounding[0] != "CAP_KILL" || p.Rlimits[0].Type != unix.RLIMIT_NOFILE || p.Rlimits[0].Soft != 5 {
		t.Errorf("process = %+v", p)
	}
	if _, err := newProcess(&specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}}); err == nil {
		t.Error("unknown rlimit accepted")
	}
	if _, err := newProcess(nil); err == nil {
		t.Error("nil process accepted")
	}
}

func TestCRIUOpts(t *testing.T) {
	o, err := criuOpts("/i", "/w", true, false, CRIUOptions{FileLocks: true},
		OCICRIUOptions{EmptyNs: []string{"network"}, ManageCgroupsMode: "soft", ParentPath: "../p"})
	if err != nil {
		t.Fatal(err)
	}
	if o.ImagesDirectory != "/i" || !o.LeaveRunning || !o.FileLocks || o.EmptyNs != unix.CLONE_NEWNET ||
		o.ManageCgroupsMode != "soft" || o.ParentImage != "../p" {
		t.Errorf("opts = %+v", o)
	}
	if _, err := criuOpts("/i", "", false, false, CRIUOptions{}, OCICRIUOptions{EmptyNs: []string{"bogus"}}); err == nil {
		t.Error("unknown namespace accepted")
	}
}

func TestRefuseFlags(t *testing.T) {
	// Each kind refuses, by name, the flags that do not apply to it.
	for _, tc := range []struct {
		kind bundle.Kind
		o    RestoreOptions
		want string
	}{
		{bundle.KindTree, RestoreOptions{Bundle: BundleOptions{IO: IO{ConsoleSocket: "/s"}}}, "--console-socket"},
		{bundle.KindTree, RestoreOptions{Bundle: BundleOptions{NoPivot: true}}, "--no-pivot"},
		{bundle.KindTree, RestoreOptions{Bundle: BundleOptions{NoNewKeyring: true}}, "--no-new-keyring"},
		{bundle.KindTree, RestoreOptions{Bundle: BundleOptions{SystemdCgroup: true}}, "--systemd-cgroup"},
		{bundle.KindTree, RestoreOptions{OCI: OCICRIUOptions{LsmProfile: "p"}}, "--lsm-profile"},
		{bundle.KindTree, RestoreOptions{OCI: OCICRIUOptions{LsmMountContext: "c"}}, "--lsm-mount-context"},
		{bundle.KindTree, RestoreOptions{OCI: OCICRIUOptions{EmptyNs: []string{"network"}}}, "--empty-ns"},
		{bundle.KindTree, RestoreOptions{OCI: OCICRIUOptions{ManageCgroupsMode: "soft"}}, "--manage-cgroups-mode"},
		{bundle.KindBundle, RestoreOptions{CRIU: CRIUOptions{TCPClose: true}}, "--tcp-close"},
		{bundle.KindBundle, RestoreOptions{CRIU: CRIUOptions{Extra: []string{"-v4"}}}, "-- CRIU-ARGS"},
	} {
		tc.o.Kind = tc.kind
		_, err := (&Runtime{}).Restore(tc.o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+" does not apply to a "+string(tc.kind)+" container") {
			t.Errorf("restore of a %s container with %s: %v", tc.kind, tc.want, err)
		}
	}
	for _, tc := range []struct {
		o    CheckpointOptions
		want string
	}{
		{CheckpointOptions{OCI: OCICRIUOptions{EmptyNs: []string{"network"}}}, "--empty-ns"},
		{CheckpointOptions{OCI: OCICRIUOptions{ManageCgroupsMode: "soft"}}, "--manage-cgroups-mode"},
	} {
		err := treeKind{}.checkpoint(nil, nil, tc.o)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+" does not apply to a tree container") {
			t.Errorf("checkpoint of a tree container with %s: %v", tc.want, err)
		}
	}
	err := bundleKind{}.checkpoint(nil, nil, CheckpointOptions{CRIU: CRIUOptions{Extra: []string{"-v4"}}})
	if err == nil || !strings.HasPrefix(err.Error(), "-- CRIU-ARGS does not apply to a bundle container") {
		t.Errorf("checkpoint of a bundle container with CRIU arguments: %v", err)
	}
	err = bundleKind{}.checkpoint(nil, nil, CheckpointOptions{TrackMem: true})
	if err == nil || !strings.HasPrefix(err.Error(), "--track-mem does not apply to a bundle container") {
		t.Errorf("checkpoint of a bundle container with --track-mem: %v", err)
	}
}

func TestLookCRIU(t *testing.T) {
	if _, err := LookCRIU("/nonexistent/criu"); err == nil {
		t.Error("a missing CRIU path resolved")
	}
}

func TestAllowStatx(t *testing.T) {
	old := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read", "newfstatat"}, Action: specs.ActAllow}}}
	allowStatx(old)
	if n := len(old.Syscalls); n != 2 || old.Syscalls[1].Names[0] != "statx" || old.Syscalls[1].Action != specs.ActAllow {
		t.Errorf("old profile not given statx: %+v", old.Syscalls)
	}
	denied := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"statx"}, Action: specs.ActErrno}}}
	allowStatx(denied)
	explicit := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"statx"}, Action: specs.ActErrno}}}
	allowStatx(explicit)
	if len(denied.Syscalls) != 1 || len(explicit.Syscalls) != 1 {
		t.Error("a profile that names statx was changed")
	}
	allowStatx(nil)
}

func TestRelaxConfig(t *testing.T) {
	c := &configs.Config{
		Mounts: []*configs.Mount{
			{Device: "bind", Flags: unix.MS_BIND, Data: "mode=755,size=1k"},
			{Device: "tmpfs", Data: "size=1k"},
		},
		Devices: []*devconfig.Device{
			{Rule: devconfig.Rule{Type: devconfig.FifoDevice, Major: 8, Minor: 666}},
			{Rule: devconfig.Rule{Type: devconfig.CharDevice, Major: 1, Minor: 3}},
		},
	}
	relaxConfig(c)
	if c.Mounts[0].Data != "" || c.Mounts[1].Data != "size=1k" {
		t.Errorf("mount data = %q, %q", c.Mounts[0].Data, c.Mounts[1].Data)
	}
	if d := c.Devices[0]; d.Major != 0 || d.Minor != 0 {
		t.Errorf("fifo keeps %d:%d", d.Major, d.Minor)
	}
	if d := c.Devices[1]; d.Major != 1 || d.Minor != 3 {
		t.Errorf("char device changed to %d:%d", d.Major, d.Minor)
	}
}
