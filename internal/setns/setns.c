// The "setns-exec" mode of the runtime's binary: enter the pid and mount
// namespaces of a process, fork (a new pid namespace only applies to
// children), exec the given command and exit with its status. It runs as a
// constructor, before the Go runtime starts: Go cannot enter a mount
// namespace once it has threads, and skipping its start-up keeps a
// checkpoint within a fork and an exec of bare `nsenter ... criu dump`.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SETNS_ARG "setns-exec"
#define SETNS_ENV "_CRIU_NS_SETNS_PIDFD"

static void die(const char *what)
{
	fprintf(stderr, "setns-exec: %s: %s\n", what, strerror(errno));
	_exit(127);
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

	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		execv(argv[2], argv + 2);
		die(argv[2]);
	}
	int status;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(status))
		_exit(128 + WTERMSIG(status));
	_exit(WEXITSTATUS(status));
}
