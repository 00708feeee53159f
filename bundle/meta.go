package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/smallfile"
)

const metaFile = "meta.json"

// Kind says what a container is. It is recorded once, when the container
// is made, and never inferred from anything else.
type Kind string

const (
	// KindTree is a plain process tree restored from CRIU images: pid 1
	// is our init, the root is the host's own, and dumps run inside.
	KindTree Kind = "tree"
	// KindBundle is a container made from a manager's OCI bundle
	// (create, run, restore --bundle); libcontainer checkpoints and
	// restores it, as runc does.
	KindBundle Kind = "bundle"
)

// Valid says whether k is one of the kinds.
func (k Kind) Valid() bool { return k == KindTree || k == KindBundle }

// Phase says how far the making of a container got.
type Phase string

const (
	// PhaseRestoring: a restore claimed the id and has not finished. A
	// container still in this phase once nobody holds its lock was left
	// by a restore that died; the next command looks at what is there
	// and records it (shim's recovery).
	PhaseRestoring Phase = "restoring"
	// PhaseReady: the container was made completely. An empty phase
	// (older meta.json, bundle containers) means the same.
	PhaseReady Phase = "ready"
)

// Meta is what criu-ns-runtime records about a container beyond
// libcontainer's state.
type Meta struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Bundle is the OCI bundle a manager created the container from
	// (KindBundle only).
	Bundle    string `json:"bundle,omitempty"`
	ImagePath string `json:"image_path,omitempty"`
	// Phase is PhaseRestoring until a tree restore has recorded its root.
	Phase     Phase `json:"phase,omitempty"`
	RootPid   int   `json:"root_pid,omitempty"`
	RootNsPid int   `json:"root_ns_pid,omitempty"`
	// RootStartTime is the restored root's start time (field 22 of
	// /proc/PID/stat): with RootPid it names the process, not a pid that
	// may be reused.
	RootStartTime uint64    `json:"root_start_time,omitempty"`
	CRIU          string    `json:"criu,omitempty"`
	Created       time.Time `json:"created"`
	// Ephemeral containers (criu-ns mode) are deleted once their tree ends.
	Ephemeral bool `json:"ephemeral,omitempty"`
	// MemTrack says which earlier dump a dump with a parent may take the
	// pages the tree has not written from (tree containers). Nil: no dump
	// has reset the tree's soft-dirty bits since it was restored, so
	// CRIU finds every page written and takes none from a parent.
	MemTrack *MemTrack `json:"mem_track,omitempty"`
}

// MemTrack is what the soft-dirty bits of a running tree count from: the
// pages marked written are those written since the last dump that tracked
// memory (a pre-dump, or a dump with --track-mem) reset them.
type MemTrack struct {
	// DumpUptime is the stamp CRIU put on that dump's inventory
	// (dump_uptime): the one dump whose images hold every page the tree
	// has not written since.
	DumpUptime uint64 `json:"dump_uptime,omitempty"`
	// Images is where that dump was committed, for messages.
	Images string `json:"images,omitempty"`
	// Lost, if set, says why no dump is such a base: a dump that may
	// have reset the bits did not commit.
	Lost string `json:"lost,omitempty"`
}

// Restoring says whether a restore of the container has not finished.
func (m *Meta) Restoring() bool { return m.Phase == PhaseRestoring }

// MetaPath is the container's meta.json.
func MetaPath(dir string) string { return filepath.Join(dir, metaFile) }

// ReadMeta reads dir's meta.json.
func ReadMeta(dir string) (*Meta, error) {
	var m Meta
	path := filepath.Join(dir, metaFile)
	err := smallfile.Use(path, func(b []byte) error {
		if err := json.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("%s is corrupt: %w", path, JSONError(b, err))
		}
		return nil
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, ErrNotExist
	case err != nil:
		return nil, err
	}
	if !m.Kind.Valid() {
		return nil, fmt.Errorf("%s: unknown container kind %q", filepath.Join(dir, metaFile), m.Kind)
	}
	return &m, nil
}

// WriteMeta replaces dir's meta.json atomically.
func WriteMeta(dir string, m *Meta) error {
	return writeJSON(filepath.Join(dir, metaFile), m)
}

// WriteSpec writes the container's config.json.
func WriteSpec(dir string, s *specs.Spec) error {
	return writeJSON(SpecPath(dir), s)
}

// ReadSpec reads the container's config.json.
func ReadSpec(path string) (*specs.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Journal is the record of a checkpoint in progress, in the container
// dir: what a later command needs to finish or undo it if the one that
// started it died (shim's recovery). Its content is shim's.
const (
	journalFile = "checkpoint.json"
	// CheckpointExitFile gets CRIU's exit status from the process that
	// waits for it (internal/setns), which outlives a killed runtime.
	CheckpointExitFile = "checkpoint.exit"
	// CheckpointCRIUPidFile gets CRIU's pid, also the id of the process
	// group of CRIU and its helpers, from the same process.
	CheckpointCRIUPidFile = CheckpointExitFile + ".pid"
	// CheckpointStderrFile gets CRIU's stderr: a pipe to the runtime
	// would kill CRIU with SIGPIPE once the runtime is gone.
	CheckpointStderrFile = "checkpoint.stderr"
)

// WriteJournal replaces dir's checkpoint journal with v, atomically.
func WriteJournal(dir string, v any) error { return writeJSON(filepath.Join(dir, journalFile), v) }

// ReadJournal reads dir's checkpoint journal into v; ErrNotExist if there
// is none.
func ReadJournal(dir string, v any) error {
	p := filepath.Join(dir, journalFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return ErrNotExist
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt: %w", p, JSONError(b, err))
	}
	return nil
}

// HasJournal says whether a checkpoint of the container in dir has not
// finished.
func HasJournal(dir string) bool {
	var st unix.Stat_t // not os.Lstat's FileInfo: list asks this of every container
	return unix.Lstat(filepath.Join(dir, journalFile), &st) == nil
}

// RemoveJournal ends the record of a checkpoint, with the files its CRIU
// run left.
func RemoveJournal(dir string) error {
	for _, f := range []string{CheckpointExitFile, CheckpointCRIUPidFile, CheckpointStderrFile} {
		os.Remove(filepath.Join(dir, f))
	}
	if err := os.Remove(filepath.Join(dir, journalFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// JSONError words an error of json.Unmarshal(b, ...) so it says the file
// is short or empty rather than a bare "EOF".
func JSONError(b []byte, err error) error {
	if len(b) == 0 {
		return errors.New("the file is empty")
	}
	var syn *json.SyntaxError
	if errors.Is(err, io.ErrUnexpectedEOF) || (errors.As(err, &syn) && err.Error() == "unexpected end of JSON input") {
		return fmt.Errorf("truncated after %d bytes", len(b))
	}
	return err
}

// writeJSON writes through a temporary file and a rename, so readers never
// see half a file. No fsync: the files describe processes that do not
// survive a reboot anyway.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
