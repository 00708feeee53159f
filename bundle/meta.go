package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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

// Meta is what criu-ns-runtime records about a container beyond
// libcontainer's state.
type Meta struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Bundle is the OCI bundle a manager created the container from
	// (KindBundle only).
	Bundle    string    `json:"bundle,omitempty"`
	ImagePath string    `json:"image_path,omitempty"`
	RootPid   int       `json:"root_pid,omitempty"`
	RootNsPid int       `json:"root_ns_pid,omitempty"`
	CRIU      string    `json:"criu,omitempty"`
	Created   time.Time `json:"created"`
	// Ephemeral containers (criu-ns mode) are deleted once their tree ends.
	Ephemeral bool `json:"ephemeral,omitempty"`
}

// ReadMeta reads dir's meta.json.
func ReadMeta(dir string) (*Meta, error) {
	b, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNotExist
		}
		return nil, err
	}
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, metaFile), err)
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
