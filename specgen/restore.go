package specgen

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// Options are the parts of a restore spec that vary.
type Options struct {
	Args        []string // the init's command line
	Env         []string
	Cwd         string // default "/"
	CgroupsPath string // empty: libcontainer's default for the id
	Annotations map[string]string
}

// Restore returns the spec of a restore container.
func Restore(o Options) *specs.Spec {
	cwd := o.Cwd
	if cwd == "" {
		cwd = "/"
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Args: o.Args,
			Env:  o.Env,
			Cwd:  cwd,
			// Capabilities stay nil: the init and CRIU keep the caller's set.
		},
		Root: &specs.Root{Path: bundle.RootfsDir},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind", "rslave"}},
		},
		Annotations: o.Annotations,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
			},
			CgroupsPath: o.CgroupsPath,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
			},
			RootfsPropagation: "rslave",
		},
	}
}
