package shim

import (
	"fmt"
	"time"
)

// CheckpointOptions describe a dump of a container's processes.
type CheckpointOptions struct {
	ID           string
	ImagePath    string
	WorkPath     string // default: ImagePath
	LeaveRunning bool
	// PreDump saves memory only, for a later incremental dump; the tree
	// keeps running. (The kernel needs soft-dirty tracking for it.)
	PreDump bool
	// TrackMem makes the dump one a later incremental dump can build on
	// (CRIU's --track-mem, criu-ns mode's own flag; tree containers).
	// A pre-dump, and a dump with a parent, always track memory.
	TrackMem bool
	// Timeout bounds CRIU's run (zero: no bound): on expiry CRIU is
	// stopped, the tree runs on and the image path keeps what it held.
	Timeout time.Duration
	CRIU    CRIUOptions
	// OCI is for the bundle kind only, but ParentPath: the images of an
	// earlier (pre-)dump of the same processes, relative to ImagePath or
	// absolute, that keep the pages not written since (runc's
	// --parent-path, CRIU's --prev-images-dir).
	OCI OCICRIUOptions
}

// Checkpoint dumps the container's processes with CRIU. The images in
// ImagePath are replaced, as a whole, only once the dump succeeded; on
// failure the processes keep running and the old images stay as they
// were.
func (rt *Runtime) Checkpoint(o CheckpointOptions) error {
	if o.ImagePath == "" {
		return fmt.Errorf("image path is empty")
	}
	return rt.withRunning(o.ID, func(c *container) error {
		return c.ops.checkpoint(rt, c, o)
	})
}
