package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A lazy restore starts the tree before its memory arrived; the pages come
// from a `criu lazy-pages` daemon over userfaultfd. The memory must be
// intact once they have, and repeated lazy restores of the same images
// must not trip over each other's socket.
func TestLazyRestore(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "64")
	for i := 1; i <= 3; i++ {
		id := cid(fmt.Sprintf("lazy%d", i))
		e.mustRun("restore", "-d", "--lazy-pages", "--image-path", img.dir, id)
		host := e.checkTree(id, img, false)
		checkMemory(t, host, img.status)
		waitCounterAdvances(t, img.counter)
		for _, log := range []string{"restore.log", "lazy-pages.log"} {
			if _, err := os.Stat(filepath.Join(img.dir, log)); err != nil {
				t.Errorf("no %s in the work path: %v", log, err)
			}
		}
		e.mustRun("delete", "--force", id)
		waitGone(t, host)
	}
	e.assertNothingLeft()
}
