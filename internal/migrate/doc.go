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
// connection, and once more for each data connection: one per CRIU stream
// (a pre-dump's or the final pre-copy dump's page-server stream, or the
// lazy-pages stream of a post-copy migration) and one for the image
// files' bytes. Every connection opens with one frame: Hello on the
// control connection, Attach (session, round, or "images") on a data
// connection, answered by Attached. After that a CRIU stream is CRIU's
// alone: both sides hand the socket to CRIU (--ps-socket); the images
// connection carries raw file bytes (sendfile on one side, splice on the
// other). No connection goes from the destination to the source, and no
// shared filesystem is assumed.
//
// A frame is one type byte, a 4-byte big-endian payload length and the
// payload (JSON). Both sides send a Heartbeat every third of the timeout;
// a side that hears nothing for the whole timeout gives up, and a data
// copy that makes no progress for the timeout fails.
//
// # Phases and messages
//
//  1. Hello: source → Hello{version, session, mode, rounds, CRIU features};
//     destination → Welcome, or Error (wrong version, id taken, no
//     userfaultfd for post-copy, ...).
//  2. Pre-copy (--pre-copy N), rounds 1..N: source → PreDump{i} and a CRIU
//     stream; the destination stores it with `criu page-server` in pre-i/
//     while the source runs `criu pre-dump` into it; source →
//     PreDumpDone{i} once its CRIU succeeded, destination →
//     PreDumpStored{i} once its page server did. The tree keeps running.
//  3. Dump: source → Dump. Plain: the memory goes into the local images.
//     Pre-copy: what changed since the last round streams to the
//     destination's page server (a CRIU stream). Post-copy: the memory
//     stays in the frozen tree, and the destination keeps the CRIU stream
//     for its lazy-pages daemon. CRIU then calls the post-dump hook and
//     waits: the dump is complete, the tree frozen, the source copy intact.
//  4. Images: source → File{name, size} for every image file, its bytes on
//     the images connection, then ImagesDone{files, bytes}. Post-copy:
//     the hook now lets CRIU serve the pages (the destination's restore
//     may fault on them already); CRIU leaves the tree stopped when done.
//  5. Restore: the destination restores the tree into a new tree
//     container (fresh pid and mount namespaces), left stopped, and sends
//     Restored{root pid}, or Error.
//  6. Commit: source → Commit; the destination resumes its copy and sends
//     Running. Plain and pre-copy: the hook first lets CRIU end the source
//     copy. Post-copy: the source copy ends once CRIU has sent every page.
//  7. Done: the source sends Done once its CRIU finished and its copy is
//     gone, and both sides exit 0.
//
// Either side may send Error{side, message} at any time and close: the
// message says which side failed and why. Until the source copy is ended
// it is intact: on any failure (an Error, a closed connection, silence for
// the timeout, CRIU dying) the data connections are cut, the hook says
// stop, and CRIU (or the source itself, if CRIU left it stopped) resumes
// the tree; the destination removes everything it made. The destination
// resumes its copy only on Commit, so two copies never run. In post-copy,
// the destination's copy runs before every page has arrived: if the pages
// cannot all arrive, the source resumes its copy and the destination ends
// its own.
package migrate
