package criu

import "strconv"

// Common are the options shared by dump and restore.
type Common struct {
	ImagesDir string // as CRIU will see it
	WorkDir   string // as CRIU will see it; receives the log
	LogFile   string // relative to WorkDir
	// Verbosity is CRIU's -v level; 4 keeps the debug lines a failed
	// restore needs to be understood.
	Verbosity      int
	TCPEstablished bool
	ExtUnixSk      bool
	FileLocks      bool
	ShellJob       bool
	Extra          []string // passed through unchanged, last
}

func (c Common) args() []string {
	a := []string{"-D", c.ImagesDir}
	if c.WorkDir != "" {
		a = append(a, "-W", c.WorkDir)
	}
	if c.LogFile != "" {
		a = append(a, "-o", c.LogFile)
	}
	if c.Verbosity > 0 {
		a = append(a, "-v"+strconv.Itoa(c.Verbosity))
	}
	for _, f := range []struct {
		on   bool
		flag string
	}{
		{c.TCPEstablished, "--tcp-established"},
		{c.ExtUnixSk, "--ext-unix-sk"},
		{c.FileLocks, "--file-locks"},
		{c.ShellJob, "--shell-job"},
	} {
		if f.on {
			a = append(a, f.flag)
		}
	}
	return a
}

// RestoreOpts describe `criu restore` as the container's init runs it.
type RestoreOpts struct {
	Common
	PidFile   string // relative to WorkDir; gets the root's pid
	LazyPages bool   // pages come later from a `criu lazy-pages` daemon
	TCPClose  bool   // established TCP connections come back closed
}

// Args is the restore command line. -d -S: CRIU detaches once the tree
// runs and leaves the restored root as the init's child, so the init reaps
// it and keeps its exit status. Cgroups are ignored so the tree stays in
// the container's cgroup instead of the one it was dumped from.
func (o RestoreOpts) Args() []string {
	a := append([]string{"restore", "-d", "-S"}, o.Common.args()...)
	if o.PidFile != "" {
		a = append(a, "--pidfile", o.PidFile)
	}
	a = append(a, "--manage-cgroups=ignore")
	if o.LazyPages {
		a = append(a, "--lazy-pages")
	}
	if o.TCPClose {
		a = append(a, "--tcp-close")
	}
	return append(a, o.Extra...)
}

// DumpOpts describe `criu dump` run inside the container's namespaces.
type DumpOpts struct {
	Common
	Tree         int // the root's pid as seen in the container
	LeaveRunning bool
	// PreDump saves memory only (`criu pre-dump`), for a later
	// incremental dump; the tree always keeps running.
	PreDump bool
	// Parent is CRIU's --prev-images-dir: the images of an earlier
	// (pre-)dump, relative to ImagesDir, that keep the pages the tree has
	// not written since. CRIU links it from the new images as "parent".
	Parent string
	// TrackMem resets the tree's soft-dirty bits once its memory is
	// dumped, so a later dump can take the pages not written since from
	// this one (CRIU's --track-mem; a pre-dump always does).
	TrackMem bool
	// Remote says where the memory goes in a migration; nil: into the
	// images, as usual.
	Remote *RemoteMemory
	// Hook runs at each stage of the dump (CRIU's --action-script): a
	// migration's post-dump hook.
	Hook string
	// LeaveStopped leaves the tree stopped, not dead, once the dump (and
	// the serving of its lazy pages) is done.
	LeaveStopped bool
}

// RemoteMemory sends a dump's memory over a socket CRIU inherits
// (--ps-socket) instead of into the images (see internal/migrate).
type RemoteMemory struct {
	Socket int // the socket's descriptor in CRIU
	// Lazy serves the pages from the frozen tree after the dump, on
	// request of a lazy-pages daemon (post-copy); otherwise they are
	// streamed to a page server during the dump.
	Lazy bool
	// PrevImagesDir is the previous pre-dump's directory, relative to
	// the images dir (pre-copy); it turns on memory tracking.
	PrevImagesDir string
	TrackMem      bool
}

func (r *RemoteMemory) args() []string {
	if r == nil {
		return nil
	}
	a := []string{"--page-server"}
	if r.Lazy {
		a = []string{"--lazy-pages"}
	}
	a = append(a, "--ps-socket", strconv.Itoa(r.Socket))
	if r.PrevImagesDir != "" {
		a = append(a, "--prev-images-dir", r.PrevImagesDir)
	}
	if r.TrackMem {
		a = append(a, "--track-mem")
	}
	return a
}

// Args is the dump command line.
func (o DumpOpts) Args() []string {
	verb := "dump"
	if o.PreDump {
		verb = "pre-dump"
	}
	a := append([]string{verb, "-t", strconv.Itoa(o.Tree)}, o.Common.args()...)
	if o.LeaveRunning && !o.PreDump {
		a = append(a, "--leave-running")
	}
	if o.Parent != "" {
		a = append(a, "--prev-images-dir", o.Parent)
	}
	if o.TrackMem {
		a = append(a, "--track-mem")
	}
	a = append(a, o.Remote.args()...)
	if o.Hook != "" {
		a = append(a, "--action-script", o.Hook)
	}
	if o.LeaveStopped {
		a = append(a, "--leave-stopped")
	}
	return append(a, o.Extra...)
}

// LazyPagesArgs is the command line of the daemon that serves a lazy
// restore's pages from the images.
func LazyPagesArgs(c Common) []string {
	c.TCPEstablished, c.ExtUnixSk, c.FileLocks, c.ShellJob = false, false, false, false
	return append([]string{"lazy-pages"}, c.args()...)
}

// PageServerArgs is the command line of the page server that stores a
// migration's memory on the destination, reading it from the socket it
// inherits as fd socket. prev, if set, is the previous pre-dump's
// directory, relative to the images dir: CRIU links it as "parent".
func PageServerArgs(c Common, socket int, prev string) []string {
	c.TCPEstablished, c.ExtUnixSk, c.FileLocks, c.ShellJob = false, false, false, false
	a := append([]string{"page-server"}, c.args()...)
	a = append(a, "--ps-socket", strconv.Itoa(socket))
	if prev != "" {
		a = append(a, "--prev-images-dir", prev)
	}
	return a
}
