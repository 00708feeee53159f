// Package shim is the container lifecycle of criu-ns-runtime over runc's
// libcontainer: it restores CRIU images into a new container whose init is
// ours (package nsinit), checkpoints a container by running `criu dump`
// inside its pid and mount namespaces, and answers state, list, ps, kill
// and delete. Command-line parsing lives in cmd/, the on-disk layout in
// bundle/, the spec in specgen/ and CRIU's command lines in shim/criu.
package shim
