package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// parallel runs f(0..n-1) at once and returns the results.
func parallel(n int, f func(i int) result) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = f(i)
		}()
	}
	wg.Wait()
	return out
}

func succeeded(rs []result) (ok []int) {
	for i, r := range rs {
		if r.code == 0 {
			ok = append(ok, i)
		}
	}
	return ok
}

// TestParallelOneID: restores, checkpoints and deletes of one id at once
// are serialised by the container's lock: one restore wins, checkpoints
// take turns and the image dir ends up exactly one of them, one ending
// checkpoint wins.
func TestParallelOneID(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "8", "-child")
	rec := recorder(t)
	id := cid("one")
	table := newOutcomes(t, "at once", "succeeded", "the others said")
	others := func(rs []result, ok []int) string {
		seen := map[string]bool{}
		var msgs []string
		for i, r := range rs {
			if len(ok) == 1 && i == ok[0] || r.code == 0 {
				continue
			}
			m := strings.TrimPrefix(strings.TrimSpace(r.stderr), errPrefix)
			if !seen[m] {
				seen[m] = true
				msgs = append(msgs, m)
			}
		}
		return strings.Join(msgs, " | ")
	}

	rs := parallel(4, func(int) result { return e.runQuietEnv(nil, "restore", "-d", "--image-path", img.dir, id) })
	ok := succeeded(rs)
	table.add("4 × restore -d (one id)", fmt.Sprint(len(ok)), others(rs, ok))
	if len(ok) != 1 {
		t.Fatalf("%d of 4 restores of one id succeeded: %v", len(ok), rs)
	}
	for _, r := range rs {
		if r.code != 0 && !strings.Contains(r.stderr, "already exists") {
			t.Errorf("a losing restore says: %s", r)
		}
	}
	host := e.checkTree(id, img, true)

	ck := filepath.Join(t.TempDir(), "ck")
	manifests := make([]string, 4)
	rs = parallel(4, func(i int) result {
		manifests[i] = filepath.Join(e.dir, fmt.Sprintf("manifest-%d", i))
		return e.runQuietEnv([]string{"CRIU_NS_TEST_MANIFEST=" + manifests[i]},
			"--criu", rec, "checkpoint", "--leave-running", "--image-path", ck, id)
	})
	ok = succeeded(rs)
	table.add("4 × checkpoint --leave-running (one image dir)", fmt.Sprint(len(ok)), others(rs, ok))
	if len(ok) != 4 {
		t.Fatalf("%d of 4 serialised checkpoints succeeded: %v", len(ok), rs)
	}
	now, matches := imageSums(hashDir(t, ck)), 0
	for _, m := range manifests {
		if sameSums(now, readManifest(t, m)) {
			matches++
		}
	}
	if matches != 1 {
		t.Errorf("the image dir matches %d of the 4 checkpoints, want exactly one", matches)
	}
	e.checkRuns(id, host, img)

	rs = parallel(3, func(i int) result {
		manifests[i] = filepath.Join(e.dir, fmt.Sprintf("ending-%d", i))
		return e.runQuietEnv([]string{"CRIU_NS_TEST_MANIFEST=" + manifests[i]},
			"--criu", rec, "checkpoint", "--image-path", ck, id)
	})
	ok = succeeded(rs)
	table.add("3 × checkpoint (ending the tree)", fmt.Sprint(len(ok)), others(rs, ok))
	if len(ok) != 1 {
		t.Fatalf("%d of 3 ending checkpoints succeeded: %v", len(ok), rs)
	}
	if !sameSums(imageSums(hashDir(t, ck)), readManifest(t, manifests[ok[0]])) {
		t.Errorf("the image dir is not what the winning checkpoint wrote")
	}
	waitGone(t, host)
	e.checkRestores(ck, img)

	rs = parallel(3, func(int) result { return e.runQuietEnv(nil, "delete", id) })
	ok = succeeded(rs)
	table.add("3 × delete (stopped)", fmt.Sprint(len(ok)), others(rs, ok))
	if len(ok) != 1 {
		t.Errorf("%d of 3 deletes succeeded: %v", len(ok), rs)
	}
	assertNothingBeside(t, ck)
	e.assertNothingLeft()
}

// TestManyIDs: 20 containers at once, and deletes racing restores for the
// cgroup parents they share.
func TestManyIDs(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "1")
	const n = 20
	id := func(prefix string, i int) string { return cid(fmt.Sprintf("%s%02d", prefix, i)) }
	table := newOutcomes(t, "at once", "succeeded")
	check := func(what string, rs []result) {
		t.Helper()
		ok := succeeded(rs)
		table.add(what, fmt.Sprintf("%d of %d", len(ok), len(rs)))
		for _, r := range rs {
			if r.code != 0 {
				t.Errorf("%s: %s", what, r)
			}
		}
	}
	check("restore -d of 20 ids", parallel(n, func(i int) result {
		return e.runQuietEnv(nil, "restore", "-d", "--image-path", img.dir, id("m", i))
	}))
	for i := 0; i < n; i++ {
		if st := e.state(id("m", i)); st.Status != "running" {
			t.Errorf("%s is %q", id("m", i), st.Status)
		}
	}
	check("checkpoint --leave-running of 20 ids", parallel(n, func(i int) result {
		return e.runQuietEnv(nil, "checkpoint", "--leave-running", "--image-path", filepath.Join(e.dir, "ck", id("m", i)), id("m", i))
	}))
	check("delete --force of 10 ids while 10 more restore", parallel(n, func(i int) result {
		if i%2 == 0 {
			return e.runQuietEnv(nil, "delete", "--force", id("m", i/2))
		}
		return e.runQuietEnv(nil, "restore", "-d", "--image-path", img.dir, id("n", i/2))
	}))
	check("delete --force of the other 20", parallel(n, func(i int) result {
		if i < n/2 {
			return e.runQuietEnv(nil, "delete", "--force", id("m", n/2+i))
		}
		return e.runQuietEnv(nil, "delete", "--force", id("n", i-n/2))
	}))
	e.assertNothingLeft()
	assertNoEmptyCgroupTop(t)
}

// assertNoEmptyCgroupTop checks no hierarchy keeps an empty
// /criu-ns-runtime: the runtime removes it with the last container below
// it. Other runtimes on the machine may be creating it at this moment, so
// only one that stays empty counts.
func assertNoEmptyCgroupTop(t *testing.T) {
	t.Helper()
	empty := func() []string {
		var out []string
		for _, mnt := range cgroupMounts() {
			top := filepath.Join(mnt, "criu-ns-runtime")
			ents, err := os.ReadDir(top)
			if err != nil {
				continue
			}
			hasChild := false
			for _, e := range ents {
				hasChild = hasChild || e.IsDir()
			}
			if !hasChild {
				out = append(out, top)
			}
		}
		return out
	}
	for i := 0; ; i++ {
		left := empty()
		if len(left) == 0 {
			return
		}
		if i == 20*slowdown {
			t.Errorf("empty cgroup parents left: %q", left)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runQuietEnv is runQuiet with more environment, for commands run off
// the test's goroutine (no t.Fatal there), bounded by cmdTimeout.
func (e *env) runQuietEnv(extra []string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := e.command(ctx, args...)
	cmd.Env = append(os.Environ(), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = pipeDelay
	err := cmd.Run()
	return result{args: args, stdout: out.String(), stderr: errb.String(), code: exitCode(cmd, err), err: err}
}
