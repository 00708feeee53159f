// Package bundle owns criu-ns-runtime's on-disk layout under --root:
//
//	<root>/<id>/config.json    the OCI spec the container was created from
//	<root>/<id>/meta.json      what libcontainer does not know: images, restored root's pids
//	<root>/<id>/rootfs/        the staged host root (libcontainer cannot use "/" itself)
//	<root>/<id>/libct/<id>/    libcontainer's own state
//
// A container directory doubles as the container's lock: every command that
// reads or changes a container holds flock(2) on it, so concurrent commands on
// one id are serialised. Creating the directory is what claims an id.
// It knows nothing of CRIU or of how containers run.
package bundle
