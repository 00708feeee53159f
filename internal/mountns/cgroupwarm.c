// The cgroup attach's head start for a tree restore, begun before the Go
// runtime starts.
//
// Every write to a cgroup.procs takes the kernel's global
// cgroup_threadgroup_rwsem for writing, and the first write after a quiet
// spell waits out an RCU grace period (5-10 ms measured here) while
// holding cgroup_mutex; writes soon after are quick. A thread moving this
// process into the cgroup it is already in pays that wait while the Go
// runtime starts and the restore is prepared, instead of libcontainer
// paying it when it moves the container's init. Errors are ignored: this
// is only a head start.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mountns.h"

// criu_ns_cgroup_procs_path writes into buf the cgroup.procs of the
// cgroup that cgroup_file (a /proc/PID/cgroup) names in the v1 "pids"
// hierarchy, else in the unified one; 0 if there is one.
int criu_ns_cgroup_procs_path(const char *cgroup_file, char *buf, size_t size)
{
	FILE *f = fopen(cgroup_file, "re");
	if (f == NULL)
		return -1;
	char line[4096], unified[4096] = "";
	int found = -1;
	while (found < 0 && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		// hierarchy-id:controllers:path
		char *controllers = strchr(line, ':');
		char *path = controllers ? strchr(controllers + 1, ':') : NULL;
		if (path == NULL || path[1] != '/')
			continue;
		*path++ = '\0';
		controllers++;
		if (strcmp(controllers, "pids") == 0)
			found = snprintf(buf, size, "/sys/fs/cgroup/pids%s/cgroup.procs", path) < (int)size ? 0 : -1;
		else if (*controllers == '\0' && unified[0] == '\0') {
			// Hybrid hosts mount the unified hierarchy there.
			const char *mnt = access("/sys/fs/cgroup/unified", F_OK) == 0 ? "/sys/fs/cgroup/unified" : "/sys/fs/cgroup";
			snprintf(unified, sizeof(unified), "%s%s/cgroup.procs", mnt, path);
		}
	}
	fclose(f);
	if (found < 0 && unified[0] != '\0' && strlen(unified) < size) {
		strcpy(buf, unified);
		found = 0;
	}
	return found;
}

static void *move_into_own_cgroup(void *procs)
{
	int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		// "0": the writing thread's process.
		if (write(fd, "0", 1) < 0) {
		}
		close(fd);
	}
	return NULL;
}

void criu_ns_warm_cgroup_attach(void)
{
	static char procs[4096];
	if (criu_ns_cgroup_procs_path("/proc/self/cgroup", procs, sizeof(procs)) != 0)
		return;
	// The thread takes no signal: the Go runtime, once it runs, handles
	// them on its own threads.
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_t attr;
	pthread_t t;
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		pthread_create(&t, &attr, move_into_own_cgroup, procs);
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}
