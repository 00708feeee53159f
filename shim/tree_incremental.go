package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
	"github.com/criu-ns-runtime/criu-ns-runtime/internal/imagecheck"
)

// What tree containers add to incremental dumps (incremental.go).
//
// CRIU gets the parent relative to the image directory, whatever form the
// caller gave it in, and writes it as the new images' "parent" link. A
// relative link resolves the same from the staging directory CRIU writes
// into (its sibling, internal/imagedir) as from the image directory, the
// same in the container's mount namespace as in ours, and still holds
// once the two directories are moved together.
//
// The parent must also be the right dump. Once a dump that tracks memory
// has saved the tree's pages, CRIU resets the tree's soft-dirty bits: from
// then on only that dump holds the pages the tree does not write again.
// An incremental dump onto any earlier one, or onto any dump after a
// tracking dump that failed past that reset, would restore stale pages
// without a word. The container's meta.json records which dump the bits
// count from (bundle.MemTrack), and a dump onto any other is refused.

// treeParent is the parent of an incremental dump of a tree.
type treeParent struct {
	given string // as the caller gave it
	dir   string // where it is, symlinks resolved
	link  string // for CRIU: relative to the image directory
}

// planParent checks the parent images given for a dump into imagePath.
func planParent(imagePath, given string) (*treeParent, error) {
	abs, err := filepath.Abs(imagePath)
	if err != nil {
		return nil, err
	}
	img, err := realPath(abs)
	if err != nil {
		return nil, fmt.Errorf("image path %s: %w", imagePath, unwrapPathError(err))
	}
	p := &treeParent{given: given}
	var target string
	switch {
	case filepath.IsAbs(given):
		target = given
	case given == ".." || strings.HasPrefix(given, "../"):
		// CRIU's rule: relative to the image directory. Its leading ".."
		// climb img, which is resolved (and whose missing components
		// will be plain directories); the rest is resolved on disk.
		parts := strings.Split(given, "/")
		target = img
		for len(parts) > 0 && parts[0] == ".." {
			target, parts = filepath.Dir(target), parts[1:]
		}
		target = strings.TrimSuffix(target, "/") + "/" + strings.Join(parts, "/")
		p.link = given
	default:
		return nil, fmt.Errorf("parent images %s: a relative parent is relative to the image path, and one inside it cannot be (the new checkpoint replaces the image path as a whole): give ../DIR or an absolute path", given)
	}
	p.dir, err = filepath.EvalSymlinks(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("parent images %s: %s does not exist", given, target)
	} else if err != nil {
		return nil, fmt.Errorf("parent images %s: %w", given, unwrapPathError(err))
	}
	if p.dir == img || strings.HasPrefix(p.dir, img+"/") {
		return nil, fmt.Errorf("parent images %s: that is the image path %s itself, which the new checkpoint replaces: a checkpoint cannot be its own parent", given, imagePath)
	}
	if _, err := os.Stat(filepath.Join(p.dir, "inventory.img")); err != nil {
		return nil, fmt.Errorf("parent images %s: %s holds no CRIU images (no inventory.img)", given, p.dir)
	}
	if p.link == "" {
		rel, err := filepath.Rel(filepath.Dir(img), p.dir)
		if err != nil {
			return nil, err
		}
		p.link = filepath.Join("..", rel)
	}
	return p, nil
}

// realPath resolves the symlinks of path, whose last components may not
// exist yet: they will be made as plain directories.
func realPath(path string) (string, error) {
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, missing...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == filepath.Dir(p) {
			return "", err
		}
		missing = append([]string{filepath.Base(p)}, missing...)
	}
}

// checkBase refuses a parent that is not the dump the tree's soft-dirty
// bits count from.
func checkBase(m *bundle.Meta, p *treeParent) error {
	base := m.MemTrack
	if base == nil {
		return nil // every page counts as written: CRIU takes none from p
	}
	if base.Lost != "" {
		return fmt.Errorf("parent images %s: %s, so no earlier dump holds the pages the tree has not written since; make a new pre-dump and dump onto it", p.given, base.Lost)
	}
	up, err := imagecheck.DumpUptime(p.dir)
	if err != nil {
		return fmt.Errorf("parent images %s: %w", p.given, err)
	}
	if up != base.DumpUptime {
		return fmt.Errorf("parent images %s are not the last dump of this tree that tracked memory (%s is): pages the tree wrote after %s would be restored stale; dump onto %s, or make a new pre-dump",
			p.given, base.Images, p.given, base.Images)
	}
	return nil
}

// trackMem records in m what a finished dump that tracked memory, of a
// tree that runs on, makes of the tree's soft-dirty bits, and says
// whether that changed m. logPath is CRIU's log of a dump that failed.
func trackMem(m *bundle.Meta, j *checkpointJournal, outcome checkpointOutcome, logPath string) bool {
	switch {
	case !j.TrackMem:
		return false
	case outcome == committed:
		up, err := imagecheck.DumpUptime(j.Swap.Path)
		if err != nil || up == 0 {
			m.MemTrack = &bundle.MemTrack{Lost: "the dump into " + j.Swap.Path + " carries no memory-tracking stamp"}
		} else {
			m.MemTrack = &bundle.MemTrack{DumpUptime: up, Images: j.Swap.Path}
		}
	case resetDirtyBits(logPath):
		m.MemTrack = &bundle.MemTrack{Lost: "a dump into " + j.Swap.Path + " that tracked memory failed after CRIU had reset the tree's soft-dirty bits"}
	default:
		return false // CRIU stopped before it touched them
	}
	return true
}

// resetDirtyBits says whether CRIU's log of a dump shows it reset a
// task's soft-dirty bits (mem.c: "Reset PID's dirty tracking", an info
// line); yes too if the log cannot tell: unreadable, or without CRIU's
// first info line (a -v below 3 in the extra CRIU arguments).
func resetDirtyBits(logPath string) bool {
	f, err := os.Open(logPath)
	if err != nil {
		return true
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	info := false
	for s.Scan() {
		line := s.Text()
		if strings.Contains(line, "'s dirty tracking") {
			return true
		}
		info = info || strings.Contains(line, "Version: ")
	}
	return !info || s.Err() != nil
}
