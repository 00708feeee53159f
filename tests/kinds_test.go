package tests

import (
	"path/filepath"
	"testing"
)

// Each kind of container refuses, by name and in one line, the flags that
// do not apply to it, and leaves nothing behind; it never ignores them.
func TestFlagsRefusedByKind(t *testing.T) {
	e := newEnv(t)
	img := makeImages(t, "-mem", "4")
	restoreRefused := []struct {
		flag string
		args []string
	}{
		{"--console-socket", []string{"--console-socket", filepath.Join(e.dir, "sock")}},
		{"--no-pivot", []string{"--no-pivot"}},
		{"--no-new-keyring", []string{"--no-new-keyring"}},
		{"--lsm-profile", []string{"--lsm-profile", "unconfined"}},
		{"--lsm-mount-context", []string{"--lsm-mount-context", "system_u:object_r:container_file_t:s0"}},
		{"--empty-ns", []string{"--empty-ns", "network"}},
		{"--manage-cgroups-mode", []string{"--manage-cgroups-mode", "soft"}},
	}
	for _, tc := range restoreRefused {
		id := cid("refused")
		args := append(append([]string{"restore", "-d", "--image-path", img.dir}, tc.args...), id)
		e.mustFail([]string{tc.flag + " does not apply to a tree container"}, args...)
		e.mustFail([]string{"does not exist"}, "state", id)
	}
	// A global flag a tree restore cannot honour is refused too.
	r := e.run("--systemd-cgroup", "restore", "-d", "--image-path", img.dir, cid("refused"))
	checkFailure(t, r, []string{"--systemd-cgroup does not apply to a tree container"})

	// A bundle restore refuses what libcontainer cannot do.
	bundleDir := t.TempDir()
	e.mustFail([]string{"--tcp-close does not apply to a bundle container"},
		"restore", "-d", "--bundle", bundleDir, "--tcp-close", "--image-path", img.dir, cid("refused"))
	e.mustFail([]string{"-- CRIU-ARGS does not apply to a bundle container"},
		"restore", "-d", "--bundle", bundleDir, "--image-path", img.dir, cid("refused"), "--", "--ghost-limit", "1M")

	// A tree checkpoint refuses the OCI-only flags, and the tree runs on.
	id := cid("tree")
	e.mustRun("restore", "-d", "--image-path", img.dir, id)
	host, _ := e.rootPids(id)
	ck := filepath.Join(e.dir, "ck")
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"--empty-ns", []string{"--empty-ns", "network"}},
		{"--manage-cgroups-mode", []string{"--manage-cgroups-mode", "soft"}},
	} {
		args := append(append([]string{"checkpoint", "--image-path", ck}, tc.args...), id)
		e.mustFail([]string{tc.flag + " does not apply to a tree container"}, args...)
	}
	checkMemory(t, host, img.status)
	waitCounterAdvances(t, img.counter)
	e.mustRun("delete", "--force", id)
	e.assertNothingLeft()
}
