package shim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"

	"github.com/criu-ns-runtime/criu-ns-runtime/bundle"
)

// Runtime is one --root with the CRIU binary to use.
type Runtime struct {
	Root *bundle.Root
	Self string // this executable; the container init re-runs it
	criu string // as given; resolved only by commands that run CRIU
	// Notify, if set, gets what a command did beyond what it was asked
	// for: finishing or undoing what a command that died left behind.
	Notify func(string)
}

func (rt *Runtime) notify(msg string) {
	if rt.Notify != nil {
		rt.Notify(msg)
	}
}

// New opens root; criu is a name looked up on PATH, or a path.
func New(root, criu string) (*Runtime, error) {
	r, err := bundle.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &Runtime{Root: r, Self: self, criu: criu}, nil
}

// CRIU resolves the CRIU binary.
func (rt *Runtime) CRIU() (string, error) { return LookCRIU(rt.criu) }

// installedCRIU are where `make deps` and Debian put CRIU: managers often
// call runtimes with a PATH that lacks /usr/local/sbin.
var installedCRIU = []string{"/usr/local/sbin/criu", "/usr/sbin/criu"}

// LookCRIU resolves the CRIU binary: a name on PATH ("criu" if empty) or a path.
func LookCRIU(criu string) (string, error) {
	if criu == "" {
		criu = "criu"
	}
	path, err := exec.LookPath(criu)
	if err == nil {
		return path, nil
	}
	if criu == "criu" {
		for _, p := range installedCRIU {
			if _, err := exec.LookPath(p); err == nil {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("criu binary %q not found (install it with `make deps` or pass --criu PATH)", criu)
}

// CRIUOptions are the CRIU features a restore or checkpoint asks for.
type CRIUOptions struct {
	TCPEstablished bool
	ExtUnixSk      bool
	FileLocks      bool
	ShellJob       bool
	// TCPClose restores established TCP connections closed (restore of
	// tree containers only: libcontainer has no such option).
	TCPClose bool
	// LogFile is CRIU's log, relative to the work path (default
	// restore.log or dump.log); its error lines go into CRIU failures.
	LogFile string
	Extra   []string // raw CRIU arguments, passed last
}

// logFile is CRIU's log as o names it, def if it does not.
func (o CRIUOptions) logFile(def string) string {
	if o.LogFile != "" {
		return o.LogFile
	}
	return def
}

// logPath is where a log named log (relative to the work dir) is.
func logPath(workDir, log string) string {
	if filepath.IsAbs(log) {
		return log
	}
	return filepath.Join(workDir, log)
}

// ErrNotRunning is libcontainer's, so managers see the words they match.
var ErrNotRunning = libcontainer.ErrNotRunning
