// Package shim is the container lifecycle of criu-ns-runtime over runc's
// libcontainer. A container is of one of two kinds, recorded in its
// metadata when it is made (bundle.Kind) and dispatched on in kind.go:
//
//   - tree (tree_*.go): a plain process tree restored from CRIU images
//     into fresh pid and mount namespaces, under our own init
//     (internal/nsinit), with the host's root staged in the restoring
//     process's own mount namespace (internal/mountns); it is dumped by
//     `criu dump` run inside its namespaces (internal/setns).
//   - bundle (bundle_*.go): a container made from a manager's OCI bundle
//     (create, run, restore --bundle), checkpointed and restored by
//     libcontainer as runc does.
//
// state, list, ps, kill, pause, resume, update, exec and delete are
// shared.
//
// Nothing is lost, whatever happens: a tree checkpoint is a transaction
// (tree_checkpoint.go) and a restore records its phase (tree_restore.go);
// what a killed command leaves half-done, the next command on the
// container finishes or undoes, and says which (recover.go). Processes are
// named by pid and start time and reached through pidfds; a container's
// processes are found through its cgroup when its files are unreadable
// (cgroups.go, delete.go); criu-ns mode's containers have a janitor
// (janitor.go). Each kind refuses the flags that do not apply to it. Command
// lines live in cmd/ and criuns/, the on-disk layout in bundle/, the
// restore spec in specgen/ and CRIU's command lines in internal/criu.
package shim
