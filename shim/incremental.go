package shim

import (
	"fmt"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/softdirty"
)

// Incremental dumps, of both kinds: a pre-dump saves the memory of a
// running tree and resets its soft-dirty bits; a later dump with that
// pre-dump as its parent saves only the pages written since, and links
// the parent for the rest. Both need the kernel's soft-dirty tracking.
// Tree containers add their own rules (tree_incremental.go).

// incremental names what of o needs soft-dirty tracking; "" if nothing.
func (o CheckpointOptions) incremental() string {
	switch {
	case o.PreDump:
		return "pre-dump"
	case o.OCI.ParentPath != "":
		return "an incremental dump (onto the parent images " + o.OCI.ParentPath + ")"
	case o.TrackMem:
		return "--track-mem"
	}
	return ""
}

// refuseWithoutSoftDirty refuses, before CRIU runs and in one line, a
// dump that needs soft-dirty tracking on a kernel without it: CRIU would
// start it, abort it halfway, and say so in terms of its own internals.
// If the kernel cannot be asked, CRIU decides.
func refuseWithoutSoftDirty(o CheckpointOptions) error {
	what := o.incremental()
	if what == "" {
		return nil
	}
	if ok, err := softdirty.Available(); err == nil && !ok {
		return fmt.Errorf("%s needs soft-dirty memory tracking, which this kernel lacks (criu check --feature mem_dirty_track)", what)
	}
	return nil
}
