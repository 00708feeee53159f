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

// afterDirs is the first descriptor after the directories (or, in RPC
// mode, after the channel).
func (cfg *Config) afterDirs() int {
	if cfg.RPC {
		return RPCFd + 1
	}
	return DirFds + cfg.Dirs
}

// inheritedFds is how many descriptors from 0 on the runtime handed us.
func (cfg *Config) inheritedFds() int {
	n := cfg.afterDirs()
	if cfg.PageServerSocket {
		n++
	}
	return n
}

// pageServerArgs hands the socket to the daemon cmd, as its next
// descriptor, and returns the arguments that make CRIU use it.
func pageServerArgs(cfg *Config, cmd *exec.Cmd) []string {
	fd := cfg.afterDirs() // where the runtime put it
	cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "page-server"))
	return []string{"--page-server", "--ps-socket", strconv.Itoa(2 + len(cmd.ExtraFiles))}
}
