package imagecheck

// The tests check real images: TestMain dumps a process with CRIU (the
// test binary itself, re-executed as a sleeper), and every case damages a
// copy of that dump. They need root and CRIU >= 4.0 and fail without them.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	criucore "github.com/checkpoint-restore/go-criu/v8/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

const sleeperEnv = "IMAGECHECK_TEST_SLEEPER" // MiB of memory, then the ready file

var (
	criuBin string
	fixture string // a dump of a sleeper with 4 MiB of memory; never changed
	tmpRoot string
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(sleeperEnv); spec != "" {
		sleeper(spec)
	}
	// A shell may hand us descriptors without close-on-exec; CRIU refuses
	// to dump a process that holds them.
	cloexecInherited()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "imagecheck tests: FATAL: they dump a process with CRIU and must run as root; nothing was tested")
		return 1
	}
	var err error
	if criuBin, err = findCriu(); err != nil {
		fmt.Fprintf(os.Stderr, "imagecheck tests: FATAL: %v (make deps installs CRIU); nothing was tested\n", err)
		return 1
	}
	if tmpRoot, err = os.MkdirTemp("/var/tmp", "imagecheck."); err != nil {
		fmt.Fprintln(os.Stderr, "imagecheck tests: FATAL:", err)
		return 1
	}
	defer os.RemoveAll(tmpRoot)
	if fixture, err = dumpSleeper(filepath.Join(tmpRoot, "fixture"), 4); err != nil {
		fmt.Fprintln(os.Stderr, "imagecheck tests: FATAL:", err)
		return 1
	}
	return m.Run()
}

// sleeper is the dumped process: it touches mib MiB, and 1 MiB of shared
// memory (CRIU dumps that through a pagemap-shmem image), and says it is
// ready.
func sleeper(spec string) {
	mib, ready, _ := strings.Cut(spec, ":")
	ready, zombie := strings.CutSuffix(ready, ":zombie")
	n, _ := strconv.Atoi(mib)
	if zombie {
		// A child that has exited and that we never reap.
		pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
		if err != nil {
			os.Exit(1)
		}
		for !isZombie(pid) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	buf := make([]byte, n<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	shared, err := syscall.Mmap(-1, 0, 1<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED|syscall.MAP_ANON)
	if err != nil {
		os.Exit(1)
	}
	for i := range shared {
		shared[i] = byte(i)
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		os.Exit(1)
	}
	for {
		time.Sleep(time.Hour)
		buf[0]++
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := strings.LastIndexByte(string(b), ')')
	return err == nil && i > 0 && strings.HasPrefix(string(b[i+1:]), " Z")
}

// dumpSleeper dumps (and so ends) a sleeper holding mib MiB into dir.
func dumpSleeper(dir string, mib int) (string, error) { return dumpTree(dir, mib, false) }

// dumpTree is dumpSleeper whose sleeper may have a zombie child.
func dumpTree(dir string, mib int, zombie bool) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	ready := filepath.Join(filepath.Dir(dir), filepath.Base(dir)+".ready")
	cmd := exec.Command(self)
	spec := fmt.Sprintf("%s=%d:%s", sleeperEnv, mib, ready)
	if zombie {
		spec += ":zombie"
	}
	cmd.Env = append(os.Environ(), spec)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the sleeper never got ready")
		}
	}
	out, err := exec.Command(criuBin, "dump", "-t", strconv.Itoa(cmd.Process.Pid), "-D", dir, "-o", "dump.log").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
		return "", fmt.Errorf("criu dump: %v: %s\n%s", err, out, log)
	}
	return dir, nil
}

func findCriu() (string, error) {
	bin, err := exec.LookPath("criu")
	if err != nil {
		bin = "/usr/local/sbin/criu"
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("no working criu on PATH or at %s: %v", bin, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			if major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0]); major >= 4 {
				return bin, nil
			}
			return "", fmt.Errorf("%s is CRIU %s, the tests need >= 4.0", bin, v)
		}
	}
	return "", fmt.Errorf("%s --version printed no version: %s", bin, out)
}

func cloexecInherited() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, syscall.FD_CLOEXEC)
		}
	}
}

// copyImages copies the fixture's image files to a new directory.
func copyImages(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "img")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".img") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// decoded reads an image of dir with crit.
func decoded(t testing.TB, dir, name string, entry proto.Message) *crit.CriuImage {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(entry)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return img
}

// rewrite decodes an image, lets edit change it and encodes it again.
func rewrite(t testing.TB, dir, name string, entry proto.Message, edit func(*crit.CriuImage)) {
	t.Helper()
	img := decoded(t, dir, name, entry)
	edit(img)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := crit.New(nil, f, "", false, true).Encode(img); err != nil {
		t.Fatalf("encode %s: %v", name, err)
	}
}

// fixtureFacts are names in the fixture the cases need.
type fixtureFacts struct {
	pid        int    // the dumped task
	thread     int    // one of its threads other than the leader
	pagemap    string // its pagemap image
	pages      string // the pages file that pagemap names
	pagesBytes int64
	shmem      string // the pagemap of the shared memory
	shmemPages string // the pages file it names
}

func facts(t testing.TB, dir string) fixtureFacts {
	t.Helper()
	var f fixtureFacts
	tree := decoded(t, dir, "pstree.img", &pstree.PstreeEntry{}).Entries[0].Message.(*pstree.PstreeEntry)
	f.pid = int(tree.GetPid())
	for _, tid := range tree.GetThreads() {
		if int(tid) != f.pid {
			f.thread = int(tid)
		}
	}
	if f.thread == 0 {
		t.Fatalf("the sleeper has no thread besides its leader: %v", tree.GetThreads())
	}
	f.pagemap = fmt.Sprintf("pagemap-%d.img", f.pid)
	head := decoded(t, dir, f.pagemap, &pagemap.PagemapEntry{}).Entries[0].Message.(*pagemap.PagemapHead)
	f.pages = fmt.Sprintf("pages-%d.img", head.GetPagesId())
	st, err := os.Stat(filepath.Join(dir, f.pages))
	if err != nil {
		t.Fatal(err)
	}
	f.pagesBytes = st.Size()
	shmem, _ := filepath.Glob(filepath.Join(dir, "pagemap-shmem-*.img"))
	if len(shmem) != 1 {
		t.Fatalf("the dump of the sleeper has shared memory pagemaps %q, want one", shmem)
	}
	f.shmem = filepath.Base(shmem[0])
	head = decoded(t, dir, f.shmem, &pagemap.PagemapEntry{}).Entries[0].Message.(*pagemap.PagemapHead)
	f.shmemPages = fmt.Sprintf("pages-%d.img", head.GetPagesId())
	return f
}

func TestRealImagesPass(t *testing.T) {
	if err := Check(fixture); err != nil {
		t.Fatalf("a fresh CRIU dump fails the check: %v", err)
	}
	// A parent that is another full dump: CRIU accepts it, and so must we.
	dir := copyImages(t, fixture)
	if err := os.Symlink(copyImages(t, fixture), filepath.Join(dir, "parent")); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("a dump with a valid parent fails the check: %v", err)
	}
	// A pagemap of a pid the tree does not have, left over from an older
	// dump into the same directory, is no concern of CRIU's.
	dir = copyImages(t, fixture)
	fx := facts(t, dir)
	stale, err := os.ReadFile(filepath.Join(dir, fx.pagemap))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pagemap-999999.img"), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	rewrite(t, dir, "pagemap-999999.img", &pagemap.PagemapEntry{}, func(img *crit.CriuImage) {
		img.Entries[0].Message.(*pagemap.PagemapHead).PagesId = proto.Uint32(4242) // no such pages file
	})
	if err := Check(dir); err != nil {
		t.Fatalf("a stale pagemap fails the check: %v", err)
	}
	// Pagemap entries without flags (older images) are pages in this dump.
	dir = copyImages(t, fixture)
	rewrite(t, dir, facts(t, dir).pagemap, &pagemap.PagemapEntry{}, func(img *crit.CriuImage) {
		for _, e := range img.Entries[1:] {
			e.Message.(*pagemap.PagemapEntry).Flags = nil
		}
	})
	if err := Check(dir); err != nil {
		t.Fatalf("a pagemap without flags fails the check: %v", err)
	}
}

// preDumpOf makes a copy of the images in src look like what `criu
// pre-dump` writes: only the inventory (bare: no format version, the
// pre-dump mode, the dump's uptime), the pagemaps and the pages.
func preDumpOf(t *testing.T, src string) string {
	t.Helper()
	dir := copyImages(t, src)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		n := e.Name()
		if n != "inventory.img" && !strings.HasPrefix(n, "pagemap-") && !strings.HasPrefix(n, "pages-") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	rewrite(t, dir, "inventory.img", &inventory.InventoryEntry{}, func(img *crit.CriuImage) {
		img.Entries[0].Message = &inventory.InventoryEntry{
			ImgVersion: proto.Uint32(0), PreDumpMode: proto.Uint32(1), DumpUptime: proto.Uint64(4242000000),
		}
	})
	return dir
}

// A pre-dump is never restored from, but lends its pages to the dump made
// with it as its parent.
// A zombie's core image has a task state and no thread state (CRIU's
// dump_one_zombie): a tree with an unreaped child is no corrupt image.
func TestZombiePasses(t *testing.T) {
	dir, err := dumpTree(filepath.Join(t.TempDir(), "zombie"), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("a dump of a tree holding a zombie fails the check: %v", err)
	}
}

func TestPreDumpParent(t *testing.T) {
	fx := facts(t, fixture)
	pre := preDumpOf(t, fixture)
	err := Check(pre)
	if err == nil || !strings.Contains(err.Error(), "holds a pre-dump") || strings.Contains(err.Error(), "\n") {
		t.Errorf("Check of a pre-dump = %v, want one line saying it is a pre-dump", err)
	}
	t.Log(err)

	// The final dump keeps its last pagemap entry's pages in the pre-dump.
	dir := copyImages(t, fixture)
	var n uint64
	rewrite(t, dir, fx.pagemap, &pagemap.PagemapEntry{}, func(img *crit.CriuImage) {
		pe := img.Entries[len(img.Entries)-1].Message.(*pagemap.PagemapEntry)
		n = uint64(pe.GetCompatNrPages())
		pe.Flags = proto.Uint32(pageInParent)
	})
	if err := os.Truncate(filepath.Join(dir, fx.pages), fx.pagesBytes-int64(n)*int64(os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pre, filepath.Join(dir, "parent")); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err != nil {
		t.Fatalf("a dump whose parent is a pre-dump fails the check: %v", err)
	}
	// ... and the pre-dump's pages are checked all the same.
	if err := os.Truncate(filepath.Join(pre, fx.pages), 4096); err != nil {
		t.Fatal(err)
	}
	if err := Check(dir); err == nil || !strings.Contains(err.Error(), "parent/"+fx.pages+" has 4096 bytes") {
		t.Errorf("Check with a truncated pre-dump parent = %v, want the parent's pages named", err)
	}

	if up, err := DumpUptime(pre); err != nil || up != 4242000000 {
		t.Errorf("DumpUptime of the pre-dump = %d, %v; want 4242000000", up, err)
	}
	if up, err := DumpUptime(fixture); err != nil || up != 0 {
		t.Errorf("DumpUptime of a dump without --track-mem = %d, %v; want 0", up, err)
	}
}

func TestDamagedImages(t *testing.T) {
	fx := facts(t, fixture)
	ps := int64(os.Getpagesize())
	core := fmt.Sprintf("core-%d.img", fx.pid)
	threadCore := fmt.Sprintf("core-%d.img", fx.thread)
	mmImg := fmt.Sprintf("mm-%d.img", fx.pid)

	write := func(t *testing.T, p string, b []byte) {
		t.Helper()
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mangle := func(name string, f func([]byte) []byte) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			write(t, p, f(b))
		}
	}
	remove := func(name string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	truncate := func(name string, size int64) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, name), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	link := func(target func(t *testing.T, dir string) string) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			if err := os.Symlink(target(t, dir), filepath.Join(dir, "parent")); err != nil {
				t.Fatal(err)
			}
		}
	}
	garbage := func(b []byte) []byte {
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return b
	}
	// lastInParent marks the pagemap's last entry as kept in the parent
	// and drops its pages from the pages file, as an incremental dump
	// would have written it.
	markLast := func(mark func(*pagemap.PagemapEntry)) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			var n uint64
			rewrite(t, dir, fx.pagemap, &pagemap.PagemapEntry{}, func(img *crit.CriuImage) {
				pe := img.Entries[len(img.Entries)-1].Message.(*pagemap.PagemapEntry)
				n = uint64(pe.GetCompatNrPages())
				mark(pe)
			})
			truncate(fx.pages, fx.pagesBytes-int64(n)*ps)(t, dir)
		}
	}
	lastInParent := markLast(func(pe *pagemap.PagemapEntry) { pe.Flags = proto.Uint32(pageInParent) })
	// Images older than the flags said in_parent instead.
	lastInParentOld := markLast(func(pe *pagemap.PagemapEntry) { pe.Flags, pe.InParent = nil, proto.Bool(true) })

	for _, c := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string   // the file the error names
		what   []string // words the error has
	}{
		{"pages truncated to one page", truncate(fx.pages, 4096), fx.pages,
			[]string{"has 4096 bytes but " + fx.pagemap + " maps", "the image is truncated"}},
		{"pages with a page too many", truncate(fx.pages, fx.pagesBytes+ps), fx.pages,
			[]string{fmt.Sprintf("has %d bytes", fx.pagesBytes+ps), "do not match"}},
		{"pages missing", remove(fx.pages), fx.pages, []string{"is missing", fx.pagemap}},
		{"shared memory pages truncated", truncate(fx.shmemPages, 4096), fx.shmemPages,
			[]string{"has 4096 bytes but " + fx.shmem + " maps", "the image is truncated"}},
		{"pages a directory", func(t *testing.T, dir string) {
			remove(fx.pages)(t, dir)
			os.Mkdir(filepath.Join(dir, fx.pages), 0o755)
		}, fx.pages, []string{"not a regular file"}},
		{"pagemap garbage", mangle(fx.pagemap, garbage), fx.pagemap, []string{"not a CRIU PAGEMAP image"}},
		{"pagemap entries garbage", mangle(fx.pagemap, func(b []byte) []byte {
			for i := 8; i < len(b); i++ {
				b[i] = 0xff
			}
			return b
		}), fx.pagemap, []string{"claims", "truncated"}},
		{"pagemap cut in an entry", mangle(fx.pagemap, func(b []byte) []byte { return b[:len(b)-3] }),
			fx.pagemap, []string{"truncated"}},
		{"pagemap missing", remove(fx.pagemap), fx.pagemap, []string{"is missing"}},
		{"pagemap empty", truncate(fx.pagemap, 0), fx.pagemap, []string{"is empty"}},
		{"inventory missing", remove("inventory.img"), "inventory.img", []string{"is missing"}},
		{"inventory garbage", mangle("inventory.img", garbage), "inventory.img", []string{"not a CRIU INVENTORY image"}},
		{"inventory truncated", truncate("inventory.img", 20), "inventory.img", []string{"truncated"}},
		{"unknown image version", func(t *testing.T, dir string) {
			rewrite(t, dir, "inventory.img", &inventory.InventoryEntry{}, func(img *crit.CriuImage) {
				img.Entries[0].Message.(*inventory.InventoryEntry).ImgVersion = proto.Uint32(3)
			})
		}, "inventory.img", []string{"version 3", "CRIU 4.x reads versions 1 and 2"}},
		{"images without per-id fdinfo", func(t *testing.T, dir string) {
			rewrite(t, dir, "inventory.img", &inventory.InventoryEntry{}, func(img *crit.CriuImage) {
				img.Entries[0].Message.(*inventory.InventoryEntry).FdinfoPerId = proto.Bool(false)
			})
		}, "inventory.img", []string{"per-id fdinfo"}},
		{"pstree missing", remove("pstree.img"), "pstree.img", []string{"is missing"}},
		{"pstree garbage", mangle("pstree.img", garbage), "pstree.img", []string{"not a CRIU PSTREE image"}},
		{"pstree truncated", mangle("pstree.img", func(b []byte) []byte { return b[:len(b)/2] }),
			"pstree.img", []string{"truncated"}},
		{"pstree payload garbage", mangle("pstree.img", func(b []byte) []byte {
			for i := 12; i < len(b); i++ {
				b[i] = 0xff
			}
			return b
		}), "pstree.img", []string{"does not decode", "corrupt"}},
		{"pstree a FIFO", func(t *testing.T, dir string) {
			remove("pstree.img")(t, dir)
			if err := syscall.Mkfifo(filepath.Join(dir, "pstree.img"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "pstree.img", []string{"not a regular file"}},
		{"core of the leader missing", remove(core), core, []string{"is missing"}},
		{"core of a thread missing", remove(threadCore), threadCore, []string{"is missing"}},
		{"core without head magic", mangle(core, func(b []byte) []byte { return b[4:] }), core,
			[]string{"lacks the head magic"}},
		{"core of another architecture", func(t *testing.T, dir string) {
			rewrite(t, dir, core, &criucore.CoreEntry{}, func(img *crit.CriuImage) {
				other := criucore.CoreEntry_AARCH64
				if march[runtime.GOARCH] == other {
					other = criucore.CoreEntry_X86_64
				}
				img.Entries[0].Message.(*criucore.CoreEntry).Mtype = &other
			})
		}, core, []string{"is for", "this machine is"}},
		{"mm missing", remove(mmImg), mmImg, []string{"is missing"}},
		{"dangling parent link", link(func(t *testing.T, dir string) string { return "../no-such-parent" }),
			"parent", []string{"links to ../no-such-parent, which does not exist"}},
		{"parent link to a file", link(func(t *testing.T, dir string) string { return "inventory.img" }),
			"parent", []string{"is not a directory"}},
		{"parent without images", link(func(t *testing.T, dir string) string { return t.TempDir() }),
			"parent", []string{"no inventory.img"}},
		{"parent link to itself", link(func(t *testing.T, dir string) string { return "." }),
			"parent", []string{"loop"}},
		{"parent with truncated pages", link(func(t *testing.T, dir string) string {
			p := copyImages(t, fixture)
			truncate(fx.pages, 4096)(t, p)
			return p
		}), "parent/" + fx.pages, []string{"has 4096 bytes but parent/" + fx.pagemap, "truncated"}},
		{"pages in a parent, no parent", lastInParent, fx.pagemap, []string{"in a parent dump, but there is no parent link"}},
		{"pages in a parent (old flag), no parent", lastInParentOld, fx.pagemap, []string{"in a parent dump, but there is no parent link"}},
		{"pages in a parent without that pagemap", func(t *testing.T, dir string) {
			lastInParent(t, dir)
			p := copyImages(t, fixture)
			remove(fx.pagemap)(t, p)
			link(func(*testing.T, string) string { return p })(t, dir)
		}, "parent/" + fx.pagemap, []string{"is missing, but " + fx.pagemap + " keeps"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyImages(t, fixture)
			c.damage(t, dir)
			err := Check(dir)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("Check = %v, want an *Error", err)
			}
			msg := err.Error()
			t.Log(msg)
			if ie.File != c.file {
				t.Errorf("the error names %q, want %q", ie.File, c.file)
			}
			if ie.Dir != dir || !strings.HasPrefix(msg, "image path "+dir+": "+c.file+" ") {
				t.Errorf("the error does not start with the image path and the file: %q", msg)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("the error has more than one line: %q", msg)
			}
			for _, w := range c.what {
				if !strings.Contains(msg, w) {
					t.Errorf("the error does not say %q", w)
				}
			}
		})
	}
}

// The benchmarks time Check on a small dump and on a 1 GiB one; nothing
// asserts the times. The 1 GiB dump is made only when benchmarks run.
func BenchmarkCheckSmall(b *testing.B) { benchmarkCheck(b, fixture) }

var bigDump = sync.OnceValues(func() (string, error) { return dumpSleeper(filepath.Join(tmpRoot, "big"), 1024) })

func BenchmarkCheck1GiB(b *testing.B) {
	dir, err := bigDump()
	if err != nil {
		b.Fatal(err)
	}
	benchmarkCheck(b, dir)
}

func benchmarkCheck(b *testing.B, dir string) {
	size := int64(0)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			size += fi.Size()
		}
	}
	for b.Loop() {
		if err := Check(dir); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB-of-images")
}
