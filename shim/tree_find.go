package shim

import (
	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/pidfd"
)

// FindByRootPid returns the id of the container whose restored root is
// the process with host pid pid now, or "" if none is: a container whose
// root has ended never matches the process that got its pid next.
func (rt *Runtime) FindByRootPid(pid int) (string, error) {
	now, err := pidfd.Of(pid)
	if err != nil {
		return "", nil
	}
	ids, err := rt.Root.IDs()
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		m, err := bundle.ReadMeta(rt.Root.ContainerDir(id))
		if err == nil && m.Kind == bundle.KindTree && m.RootPid == pid && m.RootStartTime == now.StartTime {
			return id, nil
		}
	}
	return "", nil
}
