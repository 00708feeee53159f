// Package migrate is the wire protocol of a live migration between two
// criu-ns-runtime processes: `migrate` on the source host and `receive`
// on the destination. It owns the messages, their framing, the
// heartbeats that bound every wait, the hand-over of CRIU's own data
// connections, and the post-dump hook through which CRIU waits for the
// destination's verdict. Running CRIU and restoring the tree is shim's.
//
// # Connections
//
// The source dials the destination's ADDR:PORT once for the control
// connection, and once more for each CRIU data connection (a pre-dump's
// or the final dump's page-server stream, or the lazy-pages stream of a
// post-copy migration). Every connection opens with one frame: Hello on
// the control connection, Attach (with the session and the round) on a
// data connection. After the destination's Attached, a data connection
// is CRIU's alone: both sides hand the socket to CRIU (--ps-socket). No
// connection ever goes from the destination to the source, and no shared
// filesystem is assumed: the non-memory images travel on the control
// connection.
//
// A frame is one type byte, a 4-byte big-endian payload length and the
// payload: JSON for messages, raw bytes for Data. Both sides send a
// Heartbeat every third of the timeout; a side that hears nothing for the
// whole timeout gives up.
//
// # Phases and messages
//
//  1. Hello: source → Hello{version, session, mode, rounds, CRIU features};
//     destination → Welcome, or Error (wrong version, id taken, no
//     userfaultfd for post-copy, ...).
//  2. Pre-copy (--pre-copy N), rounds 1..N: source → PreDump{i} and a data
//     connection; the destination stores it with `criu page-server` in
//     pre-i/ while the source runs `criu pre-dump` into it; source →
//     PreDumpDone{i} once its CRIU succeeded, destination →
//     PreDumpStored{i} once its page server did. The tree keeps running.
//  3. Dump: source → Dump and a data connection. Plain and pre-copy: the
//     destination's page server stores the memory while `criu dump`
//     streams it. Post-copy: the destination keeps the socket for its
//     lazy-pages daemon; `criu dump --lazy-pages` keeps the memory in the
//     frozen tree. CRIU then calls the post-dump hook and waits: the tree
//     stays frozen, the source copy intact.
//  4. Images: source → File{name, size} with its Data frames, for every
//     image file, then ImagesDone{files, bytes}.
//  5. Restore: the destination restores the tree into a new tree
//     container (fresh pid and mount namespaces), left stopped, and sends
//     Restored{root pid}, or Error.
//  6. Commit: the source answers CRIU's hook "go on": CRIU ends the
//     source copy (post-copy: only once every page has been sent), and the
//     source sends Commit. The destination resumes the tree and sends
//     Running.
//  7. Done: the source sends Done once its CRIU finished (post-copy: every
//     page sent) and both sides exit 0.
//
// Either side may send Error{side, message} at any time and close: the
// message says which side failed and why. Until step 6 the source copy
// is intact: on any failure (an Error, a closed connection, silence for
// the timeout, CRIU dying) the hook answers "stop" and CRIU resumes the
// tree, and the destination removes everything it made. The destination
// resumes its copy only on Commit, so two copies never run.
package migrate
