package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptStateFiles: with meta.json or libcontainer's state.json
// empty, truncated or garbage, every command names the file, list shows
// the container with status "error", a plain delete refuses while the
// tree runs (and the tree runs on, intact), and delete --force kills the
// tree it finds by cgroup and removes everything.
func TestCorruptStateFiles(t *testing.T) {
	img := makeImages(t, "-mem", "8", "-child")
	table := newOutcomes(t, "file", "corruption", "state says", "list says", "plain delete", "delete --force")
	for _, file := range []string{"meta.json", "state.json"} {
		for _, tc := range []struct {
			name   string
			mangle func([]byte) []byte
		}{
			{"empty", func([]byte) []byte { return nil }},
			{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
			{"garbage", func([]byte) []byte { return []byte("Lorem ipsum \x00\xff not JSON") }},
		} {
			t.Run(file+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t)
				id := cid("bad")
				e.mustRun("restore", "-d", "--image-path", img.dir, id)
				host := e.checkTree(id, img, true)
				kids := childrenOf(host)
				path := filepath.Join(e.root, id, "meta.json")
				if file == "state.json" {
					path = filepath.Join(e.root, id, "libct", id, "state.json")
				}
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tc.mangle(b), 0o600); err != nil {
					t.Fatal(err)
				}
				named := []string{path + " is corrupt"}

				stateSays := e.mustFail(named, "state", id)
				var list []state
				r := e.mustRun("list", "--format", "json")
				if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list) != 1 {
					t.Fatalf("list --format json: %v: %s", err, r.stdout)
				}
				if list[0].ID != id || list[0].Status != "error" || !strings.Contains(list[0].Annotations["io.criu-ns-runtime.reason"], path) {
					t.Errorf("list says %+v, want %s with status error naming %s", list[0], id, path)
				}
				if strings.HasPrefix(list[0].Created, "0001") {
					t.Errorf("list says %s was created at %s", id, list[0].Created)
				}
				if out := e.mustRun("list").stdout; !strings.Contains(out, id) || !strings.Contains(out, "error") {
					t.Errorf("list (table) does not show %s as error:\n%s", id, out)
				}
				ck := filepath.Join(t.TempDir(), "ck")
				for _, cmd := range [][]string{
					{"ps", id}, {"kill", id, "USR1"}, {"kill", "--all", id, "USR1"}, {"pause", id},
					{"checkpoint", "--image-path", ck, id}, {"checkpoint", "--leave-running", "--image-path", ck, id},
				} {
					e.mustFail(named, cmd...)
				}
				if _, err := os.Stat(ck); !os.IsNotExist(err) {
					t.Errorf("a refused checkpoint made %s: %v", ck, err)
				}
				deleteSays := e.mustFail([]string{"--force"}, "delete", id)
				if !isWorkload(host) {
					t.Fatalf("the tree died after a refused delete: %s", deleteSays)
				}
				waitCounterAdvances(t, img.counter)
				checkMemory(t, host, img.status)

				e.mustRun("delete", "--force", id)
				waitGone(t, append(kids, host)...)
				counterStopped(t, img.counter)
				e.assertNothingLeft()
				table.add(file, tc.name, strings.TrimPrefix(stateSays, errPrefix+"container "+id+": "), list[0].Status,
					"refused, tree runs", "tree killed, all removed")
			})
		}
	}
}

// A checkpoint a killed command left, in a container whose meta.json is
// then corrupt: delete --force still settles the checkpoint (CRIU said it
// succeeded, so it is committed) and leaves no staging directory.
func TestCorruptMetaDuringCheckpoint(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	rec := recorder(t)
	id := cid("cm")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host := e.checkTree(id, img, true)
	ck := filepath.Join(t.TempDir(), "ck")
	manifest := filepath.Join(t.TempDir(), "manifest")
	e.runFaulted("checkpoint.after-criu-exit", []string{"CRIU_NS_TEST_MANIFEST=" + manifest},
		"--criu", rec, "checkpoint", "--leave-running", "--image-path", ck, id)
	meta := filepath.Join(e.root, id, "meta.json")
	if err := os.WriteFile(meta, []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustFail([]string{meta + " is corrupt"}, "state", id)
	e.mustRun("delete", "--force", id)
	waitGone(t, host)
	if got := classify(t, ck, nil, manifest); got != "new" {
		t.Errorf("the image dir holds the %s checkpoint", got)
	}
	assertNothingBeside(t, ck)
	e.assertNothingLeft()
}
