// Package swrk is criu-ns's `swrk FD` mode: it serves CRIU's RPC protocol
// on the socket an RPC client (go-criu, pycriu, libcriu) hands to what it
// takes for `criu swrk`, and gives the client what the criu-ns command
// line gives: restores into fresh pid and mount namespaces, and dumps of
// such trees from inside them.
//
// The proxy peeks at each request before it takes it, and routes it:
//
//   - RESTORE makes a new tree container through shim's tree restore,
//     whose init runs `criu swrk` (internal/nsinit, rpc.go). Like every
//     tree restore it needs a mount namespace of its own
//     (internal/mountns): the constructor there makes one when it sees a
//     RESTORE waiting on the socket; otherwise (a RESTORE after other
//     requests) the proxy re-executes itself into one, the request still
//     unread. rst_sibling is forced, so the restored root
//     is the init's child, and cgroups default to CRIU's IGNORE mode, as
//     `criu-ns restore` does it.
//   - DUMP, PRE_DUMP and SINGLE_PRE_DUMP of a pid that lives in one of
//     our tree containers run inside its namespaces: a relay started with
//     setns(2) (internal/setns) runs `criu swrk`, the pid becomes the
//     container's, and CRIU's pre-dump loop stays on that relay.
//   - Anything else, including a dump of any other tree and a dump without
//     a pid (a self-dump), is CRIU's plain business: when it is the first
//     request and does not keep the connection open, the proxy execs CRIU
//     on the socket, which is then exactly bare CRIU; otherwise the proxy
//     relays to a `criu swrk` of its own.
//
// Between the client and CRIU, the proxy hands the relay the descriptors
// the request names (taken from the client with pidfd_getfd), turns
// images_dir paths into descriptors for CRIU in a container, translates
// pids both ways (opts.pid in, notification and restore pids out), and
// passes everything else on unchanged: CRIU's own answers, errors and
// notifications, for which CRIU waits for the client's reply as always.
// internal/criurpc carries the messages; the proxy's exit status is 0
// when its last answer was a success, 1 otherwise.
package swrk
