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
	// Timeout bounds CRIU's run (zero: no bound): on expiry CRIU is
	// stopped, the tree runs on and the image path keeps what it held.
	Timeout time.Duration
	CRIU    CRIUOptions
	OCI     OCICRIUOptions // bundle kind only, but ParentPath
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
