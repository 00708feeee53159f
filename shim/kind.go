package shim

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// A container is of one of two kinds (bundle.Kind), recorded when it is
// made. The kinds differ in how they are restored, dumped, described and
// exec'd into; state, list, ps, kill, pause, resume, update and delete are
// shared. This file is the one place that maps a kind to its code: tree
// kind in tree_*.go, bundle kind in bundle_*.go.
type kindOps interface {
	// restore makes a new container of this kind from CRIU images.
	restore(rt *Runtime, o RestoreOptions) (*Restored, error)
	// checkpoint dumps the container's processes; the caller holds its
	// lock and has checked that it runs.
	checkpoint(rt *Runtime, c *container, o CheckpointOptions) error
	// describe adds what this kind reports to a state.
	describe(s *State, c *container)
	// execDefaults are the settings of a process exec'd without --process.
	execDefaults(c *container) *specs.Process
}

var kinds = map[bundle.Kind]kindOps{
	bundle.KindTree:   treeKind{},
	bundle.KindBundle: bundleKind{},
}

// opsOf returns the code of kind k.
func opsOf(k bundle.Kind) (kindOps, error) {
	ops, ok := kinds[k]
	if !ok {
		return nil, fmt.Errorf("unknown container kind %q", k)
	}
	return ops, nil
}

// describeKind says in a few words what a kind of container is, for errors.
func describeKind(k bundle.Kind) string {
	switch k {
	case bundle.KindTree:
		return "a tree container (a process tree restored from CRIU images)"
	case bundle.KindBundle:
		return "a bundle container (made from an OCI bundle)"
	}
	return fmt.Sprintf("a container of kind %q", k)
}

// flag is one command-line flag as an operation got it.
type flag struct {
	name string // as the user typed it: "--lazy-pages"
	set  bool
}

// refuse fails on the first of flags that is set: none of them applies
// to a container of kind k.
func refuse(k bundle.Kind, flags ...flag) error {
	for _, f := range flags {
		if f.set {
			return fmt.Errorf("%s does not apply to %s", f.name, describeKind(k))
		}
	}
	return nil
}
