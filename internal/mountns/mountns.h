#ifndef CRIU_NS_MOUNTNS_H
#define CRIU_NS_MOUNTNS_H
#define CRIU_NS_MOUNTNS_ENV "_CRIU_NS_PRIVATE_MOUNTS"
int criu_ns_private_mounts(void);
int criu_ns_is_value_flag(const char *name);
int criu_ns_cli_restores_tree(int argc, char **argv);
int criu_ns_swrk_fd(int argc, char **argv);
int criu_ns_swrk_restores(int fd);
void criu_ns_warm_cgroup_attach(void);
#include <stddef.h>
int criu_ns_cgroup_procs_path(const char *cgroup_file, char *buf, size_t size);
#endif
