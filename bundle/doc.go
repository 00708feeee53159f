// Package bundle owns criu-ns-runtime's on-disk layout under --root:
//
//	<root>/<id>/config.json        the OCI spec the container was created from
//	<root>/<id>/meta.json          what libcontainer does not know: kind, phase, images, restored root's pid and start time
//	<root>/<id>/rootfs/            the staged host root (libcontainer cannot use "/" itself)
//	<root>/<id>/libct/<id>/        libcontainer's own state
//	<root>/<id>/checkpoint.json    the journal of a checkpoint under way (with checkpoint.exit,
//	                               checkpoint.exit.pid and checkpoint.stderr from its CRIU run)
//
// A container directory doubles as the container's lock: every command that
// reads or changes a container holds flock(2) on it, so concurrent commands on
// one id are serialised. The lock belongs to the open file, so a process that
// inherits it (the one waiting for a checkpoint's CRIU, a restoring init)
// keeps the container locked after the command that took it is gone.
// Creating the directory is what claims an id. Files are replaced through a
// rename, so a reader never sees half of one; one that is corrupt anyway is
// reported by name. It knows nothing of CRIU or of how containers run.
package bundle
