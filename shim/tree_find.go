package shim

import "github.com/criu-ns-runtime/criu-ns-runtime/bundle"

// FindByRootPid returns the id of the container whose restored root has
// host pid pid, or "" if none does.
func (rt *Runtime) FindByRootPid(pid int) (string, error) {
	ids, err := rt.Root.IDs()
	if err != nil {
		return "", err
	}
	for _, id := range ids {
		m, err := bundle.ReadMeta(rt.Root.ContainerDir(id))
		if err == nil && m.Kind == bundle.KindTree && m.RootPid == pid {
			return id, nil
		}
	}
	return "", nil
}
