// A mount namespace of the runtime's own for a tree restore, made before
// the Go runtime starts (Go cannot unshare a mount namespace for the whole
// process once it has threads). The host's root is staged for the
// container inside it, so the host's mount table never holds the staged
// copy and the kernel removes it however the runtime dies.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mountns.h"

static int private_mounts;

int criu_ns_private_mounts(void) { return private_mounts; }

// The global flags of cmd/criu-ns-runtime that take a value; a test checks
// this list against the command line's own.
static const char *const value_flags[] = {"root", "log", "log-format", "criu", NULL};

int criu_ns_is_value_flag(const char *name)
{
	for (const char *const *f = value_flags; *f; f++)
		if (strcmp(name, *f) == 0)
			return 1;
	return 0;
}

// flag_name is a's name without dashes, or NULL if a is no flag.
static const char *flag_name(const char *a)
{
	if (a[0] != '-' || a[1] == '\0')
		return NULL;
	return a + (a[1] == '-' ? 2 : 1);
}

static int named(const char *name, const char *want)
{
	size_t n = strlen(want);
	return strncmp(name, want, n) == 0 && (name[n] == '\0' || name[n] == '=');
}

// criu_ns_cli_restores_tree says whether argv is `criu-ns-runtime
// [global flags] restore ...` without --bundle: a tree restore.
int criu_ns_cli_restores_tree(int argc, char **argv)
{
	int i = 1;
	for (; i < argc; i++) {
		const char *name = flag_name(argv[i]);
		if (name == NULL)
			break;
		if (*name == '\0') // "--"
			return 0;
		if (strchr(name, '=') == NULL && criu_ns_is_value_flag(name))
			i++;
	}
	if (i >= argc || strcmp(argv[i], "restore") != 0)
		return 0;
	for (i++; i < argc; i++) {
		const char *name = flag_name(argv[i]);
		if (name == NULL)
			continue;
		if (*name == '\0')
			break;
		if (named(name, "bundle") || named(name, "b"))
			return 0;
	}
	return 1;
}

// criu_ns_swrk_fd returns FD of `criu-ns swrk FD` or `criu-ns-runtime
// [global flags] criu swrk FD` (criu-ns swrk mode), or -1.
int criu_ns_swrk_fd(int argc, char **argv)
{
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;
	base = base ? base + 1 : (argc > 0 ? argv[0] : "");
	int i = 1;
	if (strcmp(base, "criu-ns") != 0) {
		for (; i < argc; i++) {
			const char *name = flag_name(argv[i]);
			if (name == NULL)
				break;
			if (strchr(name, '=') == NULL && criu_ns_is_value_flag(name))
				i++;
		}
		if (i >= argc || strcmp(argv[i], "criu") != 0)
			return -1;
		i++;
	}
	if (argc != i + 2 || strcmp(argv[i], "swrk") != 0)
		return -1;
	char *end;
	long fd = strtol(argv[i + 1], &end, 10);
	return *argv[i + 1] && *end == '\0' && fd >= 0 && fd < 1 << 20 ? (int)fd : -1;
}

// criu_ns_swrk_restores says whether the first request waiting on the
// swrk socket fd is a RESTORE, from its first two bytes: field 1 (the
// type, a varint) = 2, as every protobuf encoder writes a request (fields
// in order). A RESTORE this misses still gets its mount namespace, from
// the Go side's re-exec (mountns.Reexec); this only saves that exec.
int criu_ns_swrk_restores(int fd)
{
	unsigned char b[2];
	ssize_t n;
	do
		n = recv(fd, b, sizeof(b), MSG_PEEK);
	while (n < 0 && errno == EINTR);
	return n == 2 && b[0] == 0x08 && b[1] == 0x02;
}

__attribute__((constructor)) static void private_mount_ns(int argc, char **argv)
{
	const char *env = getenv(CRIU_NS_MOUNTNS_ENV);
	int swrk = criu_ns_swrk_fd(argc, argv);
	if (!(env && strcmp(env, "1") == 0) && !criu_ns_cli_restores_tree(argc, argv) &&
	    !(swrk >= 0 && criu_ns_swrk_restores(swrk)))
		return;
	// rslave, not private: mounts the host shares still reach the tree.
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0) {
		fprintf(stderr, "criu-ns-runtime: private mount namespace: %s\n", strerror(errno));
		_exit(1);
	}
	private_mounts = 1;
	// Only now: unshare(CLONE_NEWNS) needs a process of one thread.
	criu_ns_warm_cgroup_attach();
}
