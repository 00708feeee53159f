package nsinit

import (
	"os"
	"os/exec"
	"strconv"
)

// A migration's post-copy restore: the runtime passes, right after the
// directories, a socket connected to the source's page server (see
// internal/migrate), and the lazy-pages daemon reads the pages through it
// (CRIU's --page-server --ps-socket) instead of from the images.

// inheritedFds is how many descriptors from 0 on the runtime handed us.
func (cfg *Config) inheritedFds() int {
	n := DirFds + cfg.Dirs
	if cfg.PageServerSocket {
		n++
	}
	return n
}

// pageServerArgs hands the socket to the daemon cmd, as its next
// descriptor, and returns the arguments that make CRIU use it.
func pageServerArgs(cfg *Config, cmd *exec.Cmd) []string {
	fd := DirFds + cfg.Dirs // where the runtime put it
	cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "page-server"))
	return []string{"--page-server", "--ps-socket", strconv.Itoa(2 + len(cmd.ExtraFiles))}
}
