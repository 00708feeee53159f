package shim

// Where runc 1.5's libcontainer refuses configs that runc 1.1 (which
// managers and runtime-tools were written against) ran, and the refused
// part has no effect in the kernel anyway, the config is adjusted here.

import (
	"slices"

	"github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// relaxConfig drops what the kernel ignores but libcontainer now refuses:
//   - data options on bind mounts (mount(2) ignores them with MS_BIND);
//   - device numbers of FIFOs (mknod(2) ignores them for S_IFIFO, and
//     libcontainer then finds 0:0 and fails its check).
func relaxConfig(c *configs.Config) {
	for _, m := range c.Mounts {
		if m.IsBind() {
			m.Data = ""
		}
	}
	for _, d := range c.Devices {
		if d.Type == config.FifoDevice {
			d.Major, d.Minor = 0, 0
		}
	}
}

// allowStatx adds statx to seccomp profiles that predate it.
//
// libcontainer applies the profile before its init closes inherited
// descriptors (when noNewPrivileges is off), and that step stats
// /proc/thread-self with statx to check it is not overmounted. A profile
// that never names statx (written before Linux 4.11, like runtime-tools'
// default) makes it fail with ENOSYS, so no container starts. statx tells
// no more than the stat family such profiles already allow.
func allowStatx(s *specs.LinuxSeccomp) {
	if s == nil || s.DefaultAction == specs.ActAllow {
		return
	}
	for _, rule := range s.Syscalls {
		if slices.Contains(rule.Names, "statx") {
			return // the profile decided about statx itself
		}
	}
	s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"statx"}, Action: specs.ActAllow})
}
