// The "setns-spawn" mode of the runtime's binary: join a container's
// cgroups, enter the pid and mount namespaces of its init, and start a
// command there that outlives this process and becomes the init's child.
// Like setns-exec it runs as a constructor, before the Go runtime starts.
//
// The command is started by a grandchild: a child that entered a pid
// namespace with setns(2) is adopted by the namespace's init when its
// parent dies only if that parent was inside the namespace too (a parent
// outside hands it to its own namespace's reaper). So the first child,
// inside the namespace, forks the command and exits at once. It first
// makes a process group of its own, which the command starts in: one that
// the namespace can see, in the caller's session.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAWN_ARG "setns-spawn"
#define SPAWN_PIDFD_ENV "_CRIU_NS_SPAWN_PIDFD"
#define SPAWN_CGROUPS_ENV "_CRIU_NS_SPAWN_CGROUPS"

static void spawn_die(const char *what, const char *arg)
{
	fprintf(stderr, "setns-spawn: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
	_exit(127);
}

// join_cgroups moves this process into every cgroup.procs file named in
// list (one per line): children inherit it, and the command must run in
// the container's cgroups like the rest of the container.
static void join_cgroups(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	if (copy == NULL)
		spawn_die("strdup", NULL);
	for (char *p = strtok_r(copy, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
		int fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			spawn_die("open", p);
		if (write(fd, "0", 1) != 1)
			spawn_die("join cgroup", p);
		close(fd);
	}
	free(copy);
}

__attribute__((constructor)) static void setns_spawn(int argc, char **argv)
{
	const char *pidfd_env = getenv(SPAWN_PIDFD_ENV);
	if (argc < 3 || pidfd_env == NULL || strcmp(argv[1], SPAWN_ARG) != 0)
		return;
	const char *cgroups = getenv(SPAWN_CGROUPS_ENV);
	if (cgroups != NULL)
		join_cgroups(cgroups);
	unsetenv(SPAWN_PIDFD_ENV);
	unsetenv(SPAWN_CGROUPS_ENV);

	int pidfd = atoi(pidfd_env);
	if (setns(pidfd, CLONE_NEWPID | CLONE_NEWNS) < 0)
		spawn_die("setns", NULL);
	close(pidfd);
	if (chdir("/") < 0)
		spawn_die("chdir", "/");

	pid_t first = fork();
	if (first < 0)
		spawn_die("fork", NULL);
	if (first == 0) {
		// Inside the namespace now.
		if (setpgid(0, 0) < 0)
			spawn_die("setpgid", NULL);
		pid_t cmd = fork();
		if (cmd < 0)
			spawn_die("fork", NULL);
		if (cmd == 0) {
			execv(argv[2], argv + 2);
			spawn_die("exec", argv[2]);
		}
		_exit(0);
	}
	int status;
	while (waitpid(first, &status, 0) < 0)
		if (errno != EINTR)
			spawn_die("waitpid", NULL);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}
