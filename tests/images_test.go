package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v8/crit"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v8/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

// TestCorruptImagesRefused: damaged images are refused before CRIU runs,
// by every restore (tree, bundle, criu-ns): one line naming the file and
// what is wrong, exit 1, the images byte-identical, nothing left. A pages
// file cut short makes CRIU itself loop forever; without the check that
// case fails on the command timeout instead of hanging the suite.
func TestCorruptImagesRefused(t *testing.T) {
	img := makeImages(t, "-mem", "4", "-child")
	tree := decodeImage(t, img.dir, "pstree.img", &pstree.PstreeEntry{})
	if len(tree.Entries) != 2 {
		t.Fatalf("pstree.img of a workload with -child has %d tasks, want 2", len(tree.Entries))
	}
	child := tree.Entries[1].Message.(*pstree.PstreeEntry).GetPid()
	rootPagemap := fmt.Sprintf("pagemap-%d.img", img.origPid)
	head := decodeImage(t, img.dir, rootPagemap, &pagemap.PagemapEntry{}).Entries[0].Message.(*pagemap.PagemapHead)
	pages := fmt.Sprintf("pages-%d.img", head.GetPagesId())
	childCore := fmt.Sprintf("core-%d.img", child)

	// A bundle libcontainer would accept: were the images not checked
	// first, it would create the container and hand the images to CRIU.
	bundleDir := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(filepath.Join(bundleDir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	newEnv(t).mustRun("spec", "--bundle", bundleDir)
	config := filepath.Join(bundleDir, "config.json")
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec["process"].(map[string]any)["terminal"] = false // no console socket
	if b, err = json.Marshal(spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, b, 0o644); err != nil {
		t.Fatal(err)
	}

	edit := func(name string, f func(p string) error) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := f(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	garbage := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		b := make([]byte, st.Size())
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return os.WriteFile(p, b, 0o644)
	}
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		file   string // the file the error names
		what   string // what it says is wrong
	}{
		{"truncated pages file", edit(pages, func(p string) error { return os.Truncate(p, 4096) }),
			pages, "has 4096 bytes but " + rootPagemap + " maps"},
		{"pages file missing", edit(pages, os.Remove), pages, "is missing"},
		{"pagemap garbage", edit(rootPagemap, garbage), rootPagemap, "is not a CRIU PAGEMAP image"},
		{"inventory missing", edit("inventory.img", os.Remove), "inventory.img", "no inventory.img"},
		{"inventory garbage", edit("inventory.img", garbage), "inventory.img", "is not a CRIU INVENTORY image"},
		{"pstree missing", edit("pstree.img", os.Remove), "pstree.img", "is missing"},
		{"pstree garbage", edit("pstree.img", garbage), "pstree.img", "is not a CRIU PSTREE image"},
		{"core of a task missing", edit(childCore, os.Remove), childCore, "is missing"},
		{"dangling parent link", edit("parent", func(p string) error { return os.Symlink("../gone", p) }),
			"parent", "links to ../gone, which does not exist"},
		{"unknown image version", func(t *testing.T, dir string) {
			inv := decodeImage(t, dir, "inventory.img", &inventory.InventoryEntry{})
			inv.Entries[0].Message.(*inventory.InventoryEntry).ImgVersion = proto.Uint32(3)
			encodeImage(t, dir, "inventory.img", inv)
		}, "inventory.img", "image format version 3"},
	}
	fronts := []struct {
		name   string
		prefix string
		run    func(e *env, dir string) result
	}{
		{"restore", errPrefix, func(e *env, dir string) result {
			return e.run("restore", "-d", "--image-path", dir, cid("corrupt"))
		}},
		{"restore --bundle", errPrefix, func(e *env, dir string) result {
			return e.run("restore", "-d", "--bundle", bundleDir, "--image-path", dir, cid("corrupt"))
		}},
		{"criu-ns restore", "criu-ns: ", func(e *env, dir string) result {
			return e.criuNs(runtimeBin, "criu", "restore", "-D", dir, "-d")
		}},
	}
	for _, c := range cases {
		for _, f := range fronts {
			t.Run(c.name+"/"+f.name, func(t *testing.T) {
				e := newEnv(t)
				dir := copyImages(t, img.dir)
				c.damage(t, dir)
				before := hashDir(t, dir)
				msg := checkFailureFrom(t, f.run(e, dir), f.prefix, []string{c.what})
				if !strings.Contains(msg, "image path "+dir) || !strings.Contains(msg, c.file) {
					t.Errorf("the error names not both the image path %s and %s: %q", dir, c.file, msg)
				}
				assertSameImages(t, before, dir)
				if f.name != "criu-ns restore" {
					e.mustFail([]string{"does not exist"}, "state", cid("corrupt"))
				}
				e.assertNothingLeft()
			})
		}
	}
	// The images the damage was done to restore fine.
	e := newEnv(t)
	e.mustRun("restore", "-d", "--image-path", copyImages(t, img.dir), cid("intact"))
	e.mustRun("delete", "--force", cid("intact"))
	e.assertNothingLeft()
}

// decodeImage reads one image of dir with go-criu's crit.
func decodeImage(t *testing.T, dir, name string, entry proto.Message) *crit.CriuImage {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(entry)
	if err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	return img
}

// encodeImage writes img as the image name of dir.
func encodeImage(t *testing.T, dir, name string, img *crit.CriuImage) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := crit.New(nil, f, "", false, true).Encode(img); err != nil {
		t.Fatalf("encoding %s: %v", name, err)
	}
}
