// Package criurpc carries CRIU's RPC protocol (the `criu swrk FD` mode
// that go-criu, pycriu and libcriu use) across pid and mount namespaces.
//
// CRIU serves one client on a SOCK_SEQPACKET socket, one protobuf message
// (images/rpc.proto, go-criu's rpc package) per packet. It resolves the
// descriptors a request names (images_dir_fd, work_dir_fd, status_fd,
// pidfd_store_sk) through /proc/<peer>/fd/N or pidfd_getfd(2) of its
// socket peer, the process that made the socket pair, and it uses the
// descriptors it inherited itself (inherit_fd, ps.fd) by number. A CRIU
// that restores into, or dumps from, a container's pid namespace cannot
// see the client there. So the peer CRIU talks to is a relay inside the
// namespace (Relay): the container's init for a restore, a process forked
// after setns(2) for a dump. The runtime's proxy (criuns/swrk) talks to
// the relay over a channel, a socket pair of the same kind:
//
//	client ──swrk socket── proxy ──channel── relay ──socket── criu swrk
//
// On the channel, the proxy first sends a hello: the numbers of the
// descriptors the client handed the proxy (as it would have handed them
// to CRIU), with the descriptors attached. The relay starts CRIU only once
// the first request is in, with those descriptors at the same numbers, so
// inherit_fd and ps.fd need no rewriting. Every request then travels with
// the descriptors of its peer-resolved fields attached (PeerFds order);
// the relay holds them and rewrites the fields to its own numbers. CRIU's
// answers, including notifications and the descriptors they carry, come
// back unchanged. The relay knows nothing of pids or containers: the
// proxy translates those.
package criurpc
