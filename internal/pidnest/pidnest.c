// The "pidns-init" mode of the runtime's binary: make a pid namespace
// nested in a pod's and be its pid 1, so that CRIU can restore a tree
// there with the pids it had, whatever the pod's own namespace holds.
//
// It all happens in this constructor, before the Go runtime starts (the
// namespace and credential calls below need a single thread), and the
// process never reaches Go's main. The runtime passes:
//
//   fd 3  the pod's pid namespace
//   fd 4  report pipe: gets "<host pid>\n" of the init, or "error: ...\n"
//   fd 5  control socket: later gets the restored root's pidfd
//   fd 6  an empty directory, the init's root
//   fd 7+ namespaces the container joins (network, IPC, UTS), N of them
//   env _CRIU_NS_PIDNEST="N FLAGS": FLAGS are the CLONE_NEW* of the
//       namespaces the container gets new (the init gets new ones too)
//
// Three processes: the one the runtime starts enters the pod's namespace
// for its children and forks; that child (in the pod's namespace) makes
// the nested namespace and forks the init, then exits, so the init is
// orphaned to the pod's own init, like any process of the pod whose parent
// left. The init gives up everything it does not need: it joins the
// container's network, IPC and UTS namespaces (or makes new, empty ones
// where the container has new ones), chroots into the empty
// directory (which the runtime then removes), drops every capability and
// becomes undumpable. It then waits for the restored root's pidfd, reaps
// whatever is orphaned to it, and exits once the root has exited; the
// kernel then kills what is left in the nested namespace. If the control
// socket closes without a pidfd (the restore failed, or the runtime died),
// it exits at once.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define PIDNEST_ARG "pidns-init"
#define PIDNEST_ENV "_CRIU_NS_PIDNEST"

enum { POD_NS_FD = 3, REPORT_FD = 4, CTL_FD = 5, ROOT_FD = 6, JOIN_FD = 7 };

static void fail(const char *what)
{
	dprintf(REPORT_FD, "error: %s: %s\n", what, strerror(errno));
	_exit(1);
}

// recv_fd receives one descriptor over the control socket; -1 on EOF.
static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = u.buf, .msg_controllen = sizeof(u.buf),
	};
	ssize_t n;
	while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n <= 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(fd));
	return fd;
}

// confine leaves the init nothing of the host's it could hand to whoever
// reaches it from the pod (ptrace included).
static void confine(int njoin, int unshare_flags)
{
	for (int i = 0; i < njoin; i++) {
		if (setns(JOIN_FD + i, 0) < 0)
			fail("join the container's namespaces");
		close(JOIN_FD + i);
	}
	if (unshare_flags != 0 && unshare(unshare_flags) < 0)
		fail("make the container's new namespaces");
	// This /proc is still the host's, so "self" names our host pid.
	char self[32];
	ssize_t n = readlink("/proc/self", self, sizeof(self) - 1);
	if (n <= 0)
		fail("readlink /proc/self");
	self[n] = '\0';
	if (fchdir(ROOT_FD) < 0 || chroot(".") < 0 || chdir("/") < 0)
		fail("chroot into the empty directory");
	close(ROOT_FD);
	close(POD_NS_FD);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fail("no_new_privs");
	for (int cap = 0; cap <= 63; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			fail("drop the capability bounding set");
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0)
		fail("drop capabilities");
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		fail("undumpable");
	dprintf(REPORT_FD, "%s\n", self);
	close(REPORT_FD);
}

static void on_sigchld(int sig) { (void)sig; }

// init_main is pid 1 of the nested namespace.
static void init_main(int njoin, int unshare_flags)
{
	confine(njoin, unshare_flags);
	int root = recv_fd(CTL_FD);
	close(CTL_FD);
	if (root < 0)
		_exit(0);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);
	sigset_t chld, none;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		struct pollfd p = {.fd = root, .events = POLLIN};
		// SIGCHLD is let through only while we sleep here.
		int n = ppoll(&p, 1, NULL, &none);
		if (n > 0 || (n < 0 && errno != EINTR))
			break; // the root has exited
	}
	_exit(0);
}

__attribute__((constructor)) static void pidnest(int argc, char **argv)
{
	const char *env = getenv(PIDNEST_ENV);
	if (argc < 2 || env == NULL || strcmp(argv[1], PIDNEST_ARG) != 0)
		return;
	int njoin = 0, unshare_flags = 0;
	if (sscanf(env, "%d %i", &njoin, &unshare_flags) != 2 || njoin < 0 ||
	    (unshare_flags & ~(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)) != 0) {
		errno = EINVAL;
		fail(PIDNEST_ENV);
	}

	if (setns(POD_NS_FD, CLONE_NEWPID) < 0)
		fail("enter the pod's pid namespace");
	pid_t child = fork();
	if (child < 0)
		fail("fork");
	if (child > 0) {
		int status;
		while (waitpid(child, &status, 0) < 0)
			if (errno != EINTR)
				fail("waitpid");
		_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
	}
	// In the pod's pid namespace: the next child is pid 1 of a new one.
	if (unshare(CLONE_NEWPID) < 0)
		fail("unshare the pid namespace");
	child = fork();
	if (child < 0)
		fail("fork the init");
	if (child > 0)
		_exit(0);
	init_main(njoin, unshare_flags);
}
