package migrate

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Version is the protocol version this package speaks. Both sides must
// speak the same one; a mismatch ends the migration at Hello.
const Version = 1

// magic opens every connection, so a stray client is told apart from a
// source that speaks another version.
const magic = "criu-ns-runtime/migrate"

// Mode is how the memory moves.
type Mode string

const (
	// Plain: one dump of everything while the tree is frozen; the images,
	// memory included, travel; then the tree is restored.
	Plain Mode = "plain"
	// PostCopy: the dump leaves the memory in the frozen source tree;
	// the destination restores at once and pulls the pages (userfaultfd).
	PostCopy Mode = "post-copy"
	// PreCopy: pre-dump rounds copy the memory while the tree runs, and
	// the final dump sends only what changed since (soft-dirty tracking).
	PreCopy Mode = "pre-copy"
)

// Valid says whether m is a known mode.
func (m Mode) Valid() bool { return m == Plain || m == PostCopy || m == PreCopy }

// Side names an end of a migration in errors.
type Side string

const (
	Source      Side = "source"
	Destination Side = "destination"
)

// Other is the side at the other end.
func (s Side) Other() Side {
	if s == Source {
		return Destination
	}
	return Source
}

// NewSession returns a fresh session id: data connections carry it, so
// they can only join the migration they belong to.
func NewSession() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Frame types.
type frameType byte

const (
	tHello         frameType = 'H'
	tWelcome       frameType = 'W'
	tPreDump       frameType = 'P'
	tPreDumpDone   frameType = 'p'
	tPreDumpStored frameType = 's'
	tDump          frameType = 'D'
	tFile          frameType = 'F'
	tData          frameType = 'd'
	tImagesDone    frameType = 'I'
	tRestored      frameType = 'R'
	tCommit        frameType = 'C'
	tRunning       frameType = 'U'
	tDone          frameType = 'E'
	tHeartbeat     frameType = '.'
	tError         frameType = '!'
	tAttach        frameType = 'A'
	tAttached      frameType = 'a'
)

// Message is one protocol message.
type Message interface{ frame() frameType }

// CRIUFeatures are the dump options the restore must repeat.
type CRIUFeatures struct {
	TCPEstablished bool `json:"tcp_established,omitempty"`
	ExtUnixSk      bool `json:"ext_unix_sk,omitempty"`
	FileLocks      bool `json:"file_locks,omitempty"`
}

// Hello opens the control connection (source → destination).
type Hello struct {
	Magic   string       `json:"magic"`
	Version int          `json:"version"`
	Session string       `json:"session"`
	Mode    Mode         `json:"mode"`
	Rounds  int          `json:"rounds,omitempty"` // pre-dump rounds (PreCopy)
	Tree    string       `json:"tree"`             // what moves, for messages
	CRIU    CRIUFeatures `json:"criu"`
}

// NewHello is a Hello of this version.
func NewHello(session string, mode Mode, rounds int, tree string, f CRIUFeatures) Hello {
	return Hello{Magic: magic, Version: Version, Session: session, Mode: mode, Rounds: rounds, Tree: tree, CRIU: f}
}

// Check refuses a Hello this side cannot follow.
func (h Hello) Check() error {
	switch {
	case h.Magic != magic:
		return fmt.Errorf("the peer does not speak the migration protocol")
	case h.Version != Version:
		return fmt.Errorf("the source speaks migration protocol version %d, this destination version %d", h.Version, Version)
	case !h.Mode.Valid():
		return fmt.Errorf("unknown migration mode %q", h.Mode)
	case h.Session == "":
		return fmt.Errorf("no session id")
	case h.Mode == PreCopy && h.Rounds < 1:
		return fmt.Errorf("pre-copy with %d rounds", h.Rounds)
	case h.Mode != PreCopy && h.Rounds != 0:
		return fmt.Errorf("%d pre-dump rounds in a %s migration", h.Rounds, h.Mode)
	}
	return nil
}

// Welcome accepts a Hello (destination → source).
type Welcome struct {
	Version int `json:"version"`
}

// PreDump starts pre-copy round Round (1-based); its data connection
// follows (source → destination).
type PreDump struct {
	Round int `json:"round"`
}

// PreDumpDone: the source's `criu pre-dump` of Round succeeded.
type PreDumpDone struct {
	Round int `json:"round"`
}

// PreDumpStored: the destination's page server stored Round.
type PreDumpStored struct {
	Round int `json:"round"`
}

// Dump starts the final dump; its data connection follows.
type Dump struct{}

// File announces an image file; its Size bytes follow on the images
// data connection.
type File struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// Dir is the pre-dump round's directory it belongs in ("pre-2");
	// empty: the final images.
	Dir string `json:"dir,omitempty"`
}

// Data is a frame of raw bytes (unused by this version's phases; the
// image bytes travel on a data connection of their own, zero-copy).
type Data []byte

// ImagesDone ends the images: Files files of Bytes bytes in all.
type ImagesDone struct {
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
}

// Restored: the tree is restored on the destination, stopped; RootPid
// is its root's pid on the destination host.
type Restored struct {
	RootPid int `json:"root_pid"`
}

// Commit: the source copy is being ended; the destination's runs.
type Commit struct{}

// Running: the destination resumed the tree.
type Running struct{}

// Done: the source's CRIU finished (post-copy: every page was sent).
type Done struct{}

// Heartbeat keeps a quiet connection alive; Recv never returns one.
type Heartbeat struct{}

// Error ends a migration: Side failed, Message says why.
type Error struct {
	Side    Side   `json:"side"`
	Message string `json:"message"`
}

func (e Error) Error() string { return fmt.Sprintf("%s: %s", e.Side, e.Message) }

// Attach opens a data connection (source → destination).
type Attach struct {
	Magic   string `json:"magic"`
	Version int    `json:"version"`
	Session string `json:"session"`
	// Round is the pre-dump round (1..N), or 0 for the final dump.
	Round int `json:"round"`
	// Images: the connection carries the image files' bytes, not CRIU's.
	Images bool `json:"images,omitempty"`
}

// Attached accepts a data connection; CRIU's bytes follow.
type Attached struct{}

func (Hello) frame() frameType         { return tHello }
func (Welcome) frame() frameType       { return tWelcome }
func (PreDump) frame() frameType       { return tPreDump }
func (PreDumpDone) frame() frameType   { return tPreDumpDone }
func (PreDumpStored) frame() frameType { return tPreDumpStored }
func (Dump) frame() frameType          { return tDump }
func (File) frame() frameType          { return tFile }
func (Data) frame() frameType          { return tData }
func (ImagesDone) frame() frameType    { return tImagesDone }
func (Restored) frame() frameType      { return tRestored }
func (Commit) frame() frameType        { return tCommit }
func (Running) frame() frameType       { return tRunning }
func (Done) frame() frameType          { return tDone }
func (Heartbeat) frame() frameType     { return tHeartbeat }
func (Error) frame() frameType         { return tError }
func (Attach) frame() frameType        { return tAttach }
func (Attached) frame() frameType      { return tAttached }

// newMessage is an empty message of frame type t, to decode into.
func newMessage(t frameType) (Message, error) {
	switch t {
	case tHello:
		return &Hello{}, nil
	case tWelcome:
		return &Welcome{}, nil
	case tPreDump:
		return &PreDump{}, nil
	case tPreDumpDone:
		return &PreDumpDone{}, nil
	case tPreDumpStored:
		return &PreDumpStored{}, nil
	case tDump:
		return &Dump{}, nil
	case tFile:
		return &File{}, nil
	case tImagesDone:
		return &ImagesDone{}, nil
	case tRestored:
		return &Restored{}, nil
	case tCommit:
		return &Commit{}, nil
	case tRunning:
		return &Running{}, nil
	case tDone:
		return &Done{}, nil
	case tHeartbeat:
		return &Heartbeat{}, nil
	case tError:
		return &Error{}, nil
	case tAttach:
		return &Attach{}, nil
	case tAttached:
		return &Attached{}, nil
	}
	return nil, fmt.Errorf("unknown message type %q", byte(t))
}

// Name is a message's name for errors ("unexpected Restored").
func Name(m Message) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "migrate.")
}
