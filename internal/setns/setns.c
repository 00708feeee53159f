// The "setns-exec" mode of the runtime's binary: enter the pid and mount
// namespaces of a process, fork (a new pid namespace only applies to
// children), exec the given command and wait for it. It runs as a
// constructor, before the Go runtime starts: Go cannot enter a mount
// namespace once it has threads, and skipping its start-up keeps a
// checkpoint within a fork and an exec of bare `nsenter ... criu dump`.
//
// The waiting parent is what makes a dump outlive the runtime that
// started it. It holds the container's lock (an inherited descriptor of
// the container directory, _CRIU_NS_SETNS_STATUS) until CRIU is done, so
// no other command touches the container meanwhile; it kills whatever
// CRIU left in its process group (CRIU's helpers, stopped ones included);
// and it writes CRIU's exit status into the container directory, where the
// next command finds it if the runtime is gone. SIGTERM asks it to stop
// CRIU: SIGALRM first, which makes CRIU abort through its own timeout path
// (it cures its parasite and lets the tree go), then SIGKILL to CRIU's
// process group after a grace period.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETNS_ARG "setns-exec"
#define SETNS_ENV "_CRIU_NS_SETNS_PIDFD"
#define STATUS_ENV "_CRIU_NS_SETNS_STATUS" // "DIRFD:NAME"
#define GRACE_ENV "_CRIU_NS_SETNS_GRACE"   // seconds from SIGTERM to SIGKILL

static void die(const char *what)
{
	fprintf(stderr, "setns-exec: %s: %s\n", what, strerror(errno));
	_exit(127);
}

// write_file replaces NAME in dirfd with the text in buf.
static void write_file(int dirfd, const char *name, const char *buf, int n)
{
	char tmp[256];
	if (snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= (int)sizeof(tmp))
		return;
	int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "setns-exec: status file: %s\n", strerror(errno));
		return;
	}
	int ok = write(fd, buf, n) == n && fsync(fd) == 0;
	close(fd);
	if (!ok || renameat(dirfd, tmp, dirfd, name) < 0)
		fprintf(stderr, "setns-exec: status file: %s\n", strerror(errno));
}

// write_status replaces NAME in dirfd with "exit N" or "signal N".
static void write_status(int dirfd, const char *name, int status)
{
	char buf[32];
	int n;
	if (WIFSIGNALED(status))
		n = snprintf(buf, sizeof(buf), "signal %d\n", WTERMSIG(status));
	else
		n = snprintf(buf, sizeof(buf), "exit %d\n", WEXITSTATUS(status));
	write_file(dirfd, name, buf, n);
}

__attribute__((constructor)) static void setns_exec(int argc, char **argv)
{
	const char *env = getenv(SETNS_ENV);
	if (argc < 3 || env == NULL || strcmp(argv[1], SETNS_ARG) != 0)
		return;

	int pidfd = atoi(env);
	// One setns(2) on a pidfd enters both namespaces atomically.
	if (setns(pidfd, CLONE_NEWPID | CLONE_NEWNS) < 0)
		die("setns");
	close(pidfd);
	if (chdir("/") < 0)
		die("chdir /");

	int status_dir = -1;
	char status_name[128] = "";
	const char *st = getenv(STATUS_ENV);
	if (st != NULL && sscanf(st, "%d:%127s", &status_dir, status_name) == 2)
		fcntl(status_dir, F_SETFD, FD_CLOEXEC); // ours alone: CRIU's helpers must not hold the lock
	else
		status_dir = -1;
	int grace = 5;
	if (getenv(GRACE_ENV) != NULL && atoi(getenv(GRACE_ENV)) > 0)
		grace = atoi(getenv(GRACE_ENV));

	// The parent takes its signals synchronously (sigwaitinfo): none can
	// slip in between a check and a wait.
	sigset_t waited, old;
	sigemptyset(&waited);
	sigaddset(&waited, SIGTERM);
	sigaddset(&waited, SIGALRM);
	sigaddset(&waited, SIGCHLD);
	sigprocmask(SIG_BLOCK, &waited, &old);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);

	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		// CRIU and every helper it forks share a process group of their
		// own: the parent kills what is left of it.
		setpgid(0, 0);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &old, NULL);
		execv(argv[2], argv + 2);
		die(argv[2]);
	}
	setpgid(child, child); // either of us may run first
	if (status_dir >= 0) {
		// NAME.pid: the command's pid, which is also its process group's
		// id, for whoever must end it if we are killed.
		char name[160], buf[32];
		snprintf(name, sizeof(name), "%s.pid", status_name);
		write_file(status_dir, name, buf, snprintf(buf, sizeof(buf), "%d\n", child));
	}

	int cancelled = 0;
	for (;;) {
		siginfo_t info;
		memset(&info, 0, sizeof(info));
		// WNOWAIT: CRIU stays a zombie, so its pid (the group's id) cannot
		// be reused before the group is killed below.
		if (waitid(P_PID, child, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno != EINTR)
			die("waitid");
		if (info.si_pid == child)
			break;
		int sig = sigwaitinfo(&waited, NULL);
		if (sig == SIGTERM && !cancelled) {
			cancelled = 1;
			kill(child, SIGALRM);
			alarm(grace);
		} else if (sig == SIGALRM && cancelled) {
			kill(-child, SIGKILL);
		}
	}
	kill(-child, SIGKILL);
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (status_dir >= 0)
		write_status(status_dir, status_name, status);
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}
