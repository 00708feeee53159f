// Package specgen builds the minimal OCI spec a restore runs in.
//
// CRIU needs only two things from the container: a fresh pid namespace, so
// the tree gets its old PIDs back, and a mount namespace, so that namespace
// has its own /proc. Everything else is the host's: the root is the host's
// "/" (staged by the shim as a recursive rslave bind, because libcontainer
// cannot pivot into "/" itself), /dev is bound from the host (otherwise
// libcontainer builds a new /dev, and the tree's open devices would not
// match), and there is no capability list, seccomp profile, masked or
// read-only path: the restored tree must see the world it was dumped in.
// The package is pure: it builds a value and touches nothing.
package specgen
