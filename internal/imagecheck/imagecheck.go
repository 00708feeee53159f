package imagecheck

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"golang.org/x/sys/unix"
)

// Error is what is wrong with one file of an image directory.
type Error struct {
	Dir  string // the directory Check was given
	File string // relative to Dir: "pages-1.img", "parent/pagemap-7.img", "parent"
	What string // what is wrong, a phrase that follows the file's name
}

func (e *Error) Error() string {
	if e.File == "" {
		return fmt.Sprintf("image path %s %s", e.Dir, e.What)
	}
	return fmt.Sprintf("image path %s: %s %s", e.Dir, e.File, e.What)
}

// Image format versions (inventory img_version) CRIU 4.x reads.
const (
	imagesV1  = 1 // no head magic in any image
	imagesV11 = 2 // every image but the inventory starts with a head magic
)

// Pagemap entry flags (CRIU's criu/include/pagemap.h).
const (
	pageInParent = 1 << 0 // PE_PARENT: the pages are in the parent's images
	pagePresent  = 1 << 2 // PE_PRESENT: the pages are in this dir's pages file
)

// Task states in a core image (CRIU's compel task states).
const (
	taskAlive   = 1
	taskDead    = 2 // a zombie: its core has a task state only
	taskStopped = 3
)

const parentLink = "parent" // CRIU's CR_PARENT_LINK

// Check checks the images in dir, as described in the package doc, and
// returns an *Error for the first problem it finds.
func Check(dir string) error {
	visited := map[fileID]bool{}
	top := &imageDir{top: dir, path: dir, pageSize: int64(os.Getpagesize())}
	d := top
	var tasks []uint32 // the pids of pstree.img
	for {
		id, err := idOf(d.path)
		if err != nil {
			return d.fail("", "cannot be read: %v", err)
		}
		visited[id] = true
		if err := d.checkInventory(top); err != nil {
			return err
		}
		if d.rel == "" {
			// Only the top directory is restored from; parents lend pages.
			if tasks, err = d.checkTasks(); err != nil {
				return err
			}
		}
		parent, err := d.resolveParent(visited)
		if err != nil {
			return err
		}
		if err := d.checkPages(tasks, parent); err != nil {
			return err
		}
		if parent == nil {
			return nil
		}
		d = parent
	}
}

// imageDir is one directory of the chain: the one Check was given, or a
// parent of it.
type imageDir struct {
	top      string // the directory Check was given, for errors
	path     string // this directory
	rel      string // this directory relative to top: "", "parent/", "parent/parent/"
	pageSize int64
	version  uint32 // from this directory's inventory
}

func (d *imageDir) fail(file, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	// The message is one line, whatever a decoder said.
	what = strings.Join(strings.Fields(what), " ")
	return &Error{Dir: d.top, File: strings.TrimSuffix(d.rel+file, "/"), What: what}
}

// checkInventory checks the directory's inventory; top is the directory
// Check was given, for a parent's.
func (d *imageDir) checkInventory(top *imageDir) error {
	const name = "inventory.img"
	entries, err := d.decode(name, "INVENTORY", &inventory.InventoryEntry{})
	if err != nil {
		return err
	}
	inv := entries[0].Message.(*inventory.InventoryEntry)
	if isPreDump(inv) {
		if d == top {
			return d.fail("", "holds a pre-dump (memory only, no process tree): restore from the dump made with it as its parent (--parent-path, --prev-images-dir)")
		}
		// A pre-dump writes a bare inventory, without a format version;
		// CRIU reads its pagemaps in the format of the dump it restores.
		d.version = top.version
		return nil
	}
	switch v := inv.GetImgVersion(); v {
	case imagesV1, imagesV11:
		d.version = v
	default:
		return d.fail(name, "says image format version %d; CRIU 4.x reads versions %d and %d only", v, imagesV1, imagesV11)
	}
	if !inv.GetFdinfoPerId() {
		return d.fail(name, "describes images without per-id fdinfo images, which CRIU 4.x no longer reads")
	}
	if inv.RootCgSet != nil && inv.GetRootCgSet() == 0 {
		return d.fail(name, "has a root cgroup set of 0: the image is corrupt")
	}
	return nil
}

// isPreDump says whether inv is the inventory of a pre-dump: CRIU writes
// it with the pre-dump mode and without a format version.
func isPreDump(inv *inventory.InventoryEntry) bool {
	return inv.PreDumpMode != nil && inv.GetImgVersion() == 0
}

// DumpUptime is the dump_uptime CRIU stamped on the inventory of the
// images in dir: the host's uptime in microseconds when it dumped, which
// it records only when it tracked memory (a pre-dump, --track-mem), and
// which names that dump wherever its images are copied. Zero if CRIU
// recorded none.
func DumpUptime(dir string) (uint64, error) {
	d := &imageDir{top: dir, path: dir}
	entries, err := d.decode("inventory.img", "INVENTORY", &inventory.InventoryEntry{})
	if err != nil {
		return 0, err
	}
	return entries[0].Message.(*inventory.InventoryEntry).GetDumpUptime(), nil
}

// checkTasks checks the images every task of pstree.img needs and
// returns the tasks' pids.
func (d *imageDir) checkTasks() ([]uint32, error) {
	const name = "pstree.img"
	entries, err := d.decode(name, "PSTREE", &pstree.PstreeEntry{})
	if err != nil {
		return nil, err
	}
	var pids []uint32
	for _, e := range entries {
		task, ok := e.Message.(*pstree.PstreeEntry)
		if !ok {
			return nil, d.fail(name, "does not decode as a process tree: the image is corrupt")
		}
		if err := d.checkTask(task); err != nil {
			return nil, err
		}
		pids = append(pids, task.GetPid())
	}
	return pids, nil
}

func (d *imageDir) checkTask(task *pstree.PstreeEntry) error {
	pid := task.GetPid()
	leader, err := d.core(pid, true)
	if err != nil {
		return err
	}
	for _, tid := range task.GetThreads() {
		// A zombie has no threads to restore: CRIU writes whatever its
		// thread list held (not always its pid) and never reads it.
		if tid != pid && leader.GetTc().GetTaskState() != taskDead {
			if _, err := d.core(tid, false); err != nil {
				return err
			}
		}
	}
	switch leader.GetTc().GetTaskState() {
	case taskAlive, taskStopped:
		// A task with memory: CRIU restores it from these two.
		if _, err := d.decode(fmt.Sprintf("mm-%d.img", pid), "MM", &mm.MmEntry{}); err != nil {
			return err
		}
		if err := d.mustExist(fmt.Sprintf("pagemap-%d.img", pid)); err != nil {
			return err
		}
	}
	return nil
}

// core decodes the core image of thread tid and checks the parts CRIU
// uses without checking them itself.
func (d *imageDir) core(tid uint32, leader bool) (*criucore.CoreEntry, error) {
	name := fmt.Sprintf("core-%d.img", tid)
	entries, err := d.decode(name, "CORE", &criucore.CoreEntry{})
	if err != nil {
		return nil, err
	}
	core := entries[0].Message.(*criucore.CoreEntry)
	if want, ok := march[runtime.GOARCH]; ok && core.GetMtype() != want {
		return nil, d.fail(name, "is for %s, this machine is %s", strings.ToLower(core.GetMtype().String()), runtime.GOARCH)
	}
	if leader && core.GetTc() == nil {
		return nil, d.fail(name, "has no task state: the image is corrupt")
	}
	zombie := leader && core.GetTc().GetTaskState() == taskDead
	if core.GetThreadCore() == nil && !zombie {
		return nil, d.fail(name, "has no thread state: the image is corrupt")
	}
	return core, nil
}

// march is the core image's architecture for each GOARCH CRIU runs on.
var march = map[string]criucore.CoreEntryMarch{
	"amd64":    criucore.CoreEntry_X86_64,
	"arm":      criucore.CoreEntry_ARM,
	"arm64":    criucore.CoreEntry_AARCH64,
	"ppc64le":  criucore.CoreEntry_PPC64,
	"s390x":    criucore.CoreEntry_S390,
	"mips64le": criucore.CoreEntry_MIPS,
	"loong64":  criucore.CoreEntry_LOONGARCH64,
	"riscv64":  criucore.CoreEntry_RISCV64,
}

func (d *imageDir) mustExist(name string) error {
	if _, err := os.Stat(filepath.Join(d.path, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return d.fail(name, "is missing")
		}
		return d.fail(name, "cannot be read: %v", unwrap(err))
	}
	return nil
}

// resolveParent returns the directory the parent link leads to, nil if
// there is none.
func (d *imageDir) resolveParent(visited map[fileID]bool) (*imageDir, error) {
	link := filepath.Join(d.path, parentLink)
	if _, err := os.Lstat(link); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	target := link
	if t, err := os.Readlink(link); err == nil {
		target = t
	}
	leadsTo := func(format string, args ...any) error {
		return d.fail(parentLink, "links to %s, which %s", target, fmt.Sprintf(format, args...))
	}
	st, err := os.Stat(link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, leadsTo("does not exist: the parent images of this incremental dump are gone")
	case err != nil:
		return nil, leadsTo("cannot be read: %v", unwrap(err))
	case !st.IsDir():
		return nil, leadsTo("is not a directory")
	}
	id, err := idOf(link)
	if err != nil {
		return nil, leadsTo("cannot be read: %v", err)
	}
	if visited[id] {
		return nil, leadsTo("is already in the chain of parents: the chain is a loop")
	}
	if _, err := os.Stat(filepath.Join(link, "inventory.img")); err != nil {
		return nil, leadsTo("holds no CRIU images (no inventory.img)")
	}
	return &imageDir{top: d.top, path: link, rel: d.rel + parentLink + "/", pageSize: d.pageSize}, nil
}

// checkPages checks the pagemaps CRIU reads from the directory, those of
// the tasks and the shared memory ones, against the pages file each
// names, and against the parent for pages kept there. Pagemaps of other
// pids (left over from an older dump into the same directory) CRIU never
// opens.
func (d *imageDir) checkPages(tasks []uint32, parent *imageDir) error {
	pagemaps, err := filepath.Glob(filepath.Join(d.path, "pagemap-shmem-*.img"))
	if err != nil {
		return err
	}
	for _, pid := range tasks {
		p := filepath.Join(d.path, fmt.Sprintf("pagemap-%d.img", pid))
		if _, err := os.Lstat(p); err == nil {
			pagemaps = append(pagemaps, p)
		}
	}
	slices.Sort(pagemaps)
	for _, p := range slices.Compact(pagemaps) {
		name := filepath.Base(p)
		m, err := d.pagemap(name)
		if err != nil {
			return err
		}
		if err := d.checkPagesFile(name, m); err != nil {
			return err
		}
		if m.inParent > 0 {
			if parent == nil {
				return d.fail(name, "keeps %d pages in a parent dump, but there is no parent link", m.inParent)
			}
			if _, err := os.Stat(filepath.Join(parent.path, name)); err != nil {
				return parent.fail(name, "is missing, but %s keeps %d pages there", d.rel+name, m.inParent)
			}
		}
	}
	return nil
}

// pagemapSum is what one pagemap image says about its pages.
type pagemapSum struct {
	pagesID  uint32
	present  uint64 // pages in this directory's pages file
	inParent uint64 // pages in the parent's images
}

func (d *imageDir) pagemap(name string) (pagemapSum, error) {
	var s pagemapSum
	entries, err := d.decode(name, "PAGEMAP", &pagemap.PagemapEntry{})
	if err != nil {
		return s, err
	}
	head, ok := entries[0].Message.(*pagemap.PagemapHead)
	if !ok {
		return s, d.fail(name, "has no pagemap head: the image is corrupt")
	}
	s.pagesID = head.GetPagesId()
	maxPages := uint64(1<<63-1) / uint64(d.pageSize)
	for i, e := range entries[1:] {
		pe, ok := e.Message.(*pagemap.PagemapEntry)
		if !ok {
			return s, d.fail(name, "entry %d is no pagemap entry: the image is corrupt", i+2)
		}
		n := uint64(pe.GetCompatNrPages())
		if pe.NrPages != nil { // CRIU 4.2 and later: 64 bits
			n = pe.GetNrPages()
		}
		flags := pe.GetFlags()
		// CRIU's rule for images older than the flags.
		if pe.GetInParent() {
			flags |= pageInParent
		} else if pe.Flags == nil {
			flags = pagePresent
		}
		if flags&pagePresent != 0 {
			s.present += n
		}
		if flags&pageInParent != 0 {
			s.inParent += n
		}
		if n > maxPages || s.present > maxPages || s.inParent > maxPages {
			return s, d.fail(name, "maps more pages than any file can hold: the image is corrupt")
		}
	}
	return s, nil
}

// checkPagesFile compares the size of the pages file a pagemap names
// with the pages the pagemap says it holds. It only stats the file.
func (d *imageDir) checkPagesFile(pagemapName string, m pagemapSum) error {
	name := fmt.Sprintf("pages-%d.img", m.pagesID)
	want := int64(m.present) * d.pageSize
	maps := fmt.Sprintf("%s maps %d (%d pages)", d.rel+pagemapName, want, m.present)
	st, err := os.Stat(filepath.Join(d.path, name))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if m.present == 0 {
			return nil // CRIU reads nothing from it
		}
		return d.fail(name, "is missing, but %s in it", maps)
	case err != nil:
		return d.fail(name, "cannot be read: %v", unwrap(err))
	case !st.Mode().IsRegular():
		return d.fail(name, "is not a regular file")
	case st.Size() < want:
		return d.fail(name, "has %d bytes but %s: the image is truncated", st.Size(), maps)
	case st.Size() > want:
		return d.fail(name, "has %d bytes but %s: the images do not match", st.Size(), maps)
	}
	return nil
}

// fileID names a directory whatever path leads to it.
type fileID struct{ dev, ino uint64 }

func idOf(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{uint64(st.Dev), st.Ino}, nil
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
