package shim

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Annotations that State adds for tree containers.
const (
	AnnotationRootPid   = "io.criu-ns-runtime.root.pid"
	AnnotationRootNsPid = "io.criu-ns-runtime.root.ns-pid"
	AnnotationImagePath = "io.criu-ns-runtime.image-path"
)

// describe reports the images and the restored root's pids.
func (treeKind) describe(s *State, c *container) {
	s.Annotations = map[string]string{AnnotationImagePath: c.meta.ImagePath}
	if c.meta.RootPid > 0 {
		s.Annotations[AnnotationRootPid] = strconv.Itoa(c.meta.RootPid)
		s.Annotations[AnnotationRootNsPid] = strconv.Itoa(c.meta.RootNsPid)
	}
}

// execDefaults: a tree has no process settings of its own to inherit.
func (treeKind) execDefaults(*container) *specs.Process { return defaultExecProcess() }
