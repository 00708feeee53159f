// A libcriu client for the integration tests (tests/rpcclients_test.go),
// compiled there against CRIU's lib/c:
//
//	libcriu_client SERVICE restore DIR    restore DIR's images, print the root's pid
//	libcriu_client SERVICE dump PID DIR   dump the tree of PID into DIR, leave it running
//
// SERVICE is the binary libcriu runs as `SERVICE swrk FD`
// (criu_set_service_binary).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criu.h"

static int usage(void)
{
	fprintf(stderr, "usage: libcriu_client SERVICE restore DIR | SERVICE dump PID DIR\n");
	return 2;
}

static int open_dir(const char *path)
{
	int fd = open(path, O_DIRECTORY | O_RDONLY);
	if (fd < 0)
		perror(path);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return usage();
	if (criu_init_opts() < 0 || criu_set_service_binary(argv[1]) < 0) {
		fprintf(stderr, "libcriu: cannot set options\n");
		return 1;
	}
	criu_set_log_level(4);
	if (strcmp(argv[2], "restore") == 0 && argc == 4) {
		int dir = open_dir(argv[3]);
		if (dir < 0)
			return 1;
		criu_set_images_dir_fd(dir);
		criu_set_log_file("restore.log");
		int pid = criu_restore();
		if (pid < 0) {
			fprintf(stderr, "libcriu: criu_restore: %d\n", pid);
			return 1;
		}
		printf("%d\n", pid);
		return 0;
	}
	if (strcmp(argv[2], "dump") == 0 && argc == 5) {
		int dir = open_dir(argv[4]);
		if (dir < 0)
			return 1;
		criu_set_images_dir_fd(dir);
		criu_set_log_file("dump.log");
		criu_set_pid(atoi(argv[3]));
		criu_set_leave_running(true);
		int ret = criu_dump();
		if (ret < 0) {
			fprintf(stderr, "libcriu: criu_dump: %d\n", ret);
			return 1;
		}
		return 0;
	}
	return usage();
}
