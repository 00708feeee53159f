package shim

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/migrate"
)

// What both ends of a live migration share; the source is in
// tree_migrate.go, the destination in tree_receive.go, the protocol in
// internal/migrate.

// DefaultMigrateTimeout is how long one side of a migration waits for a
// word from the other before it gives up.
const DefaultMigrateTimeout = 30 * time.Second

// sideError is an error of one side of a migration, as the user
// sees it: "destination: criu restore failed: ...".
func sideError(side migrate.Side, err error) error {
	if fromPeer(err) {
		return err // already says whose
	}
	return migrate.Error{Side: side, Message: err.Error()}
}

// fromPeer says whether err came from the other side (its Error, or the
// connection to it lost): then there is nothing to tell it.
func fromPeer(err error) bool {
	var pe migrate.Error
	var le *migrate.LostError
	return errors.As(err, &pe) || errors.As(err, &le)
}

// expect waits for a message of type T from the peer.
func expect[T migrate.Message](c *migrate.Conn) (T, error) {
	var want T
	m, err := c.Recv()
	if err != nil {
		return want, err
	}
	got, ok := m.(T)
	if !ok {
		return want, fmt.Errorf("the %s sent %s, expected %s", c.Peer(), migrate.Name(m), migrate.Name(want))
	}
	return got, nil
}

// socketFile turns a connection that now belongs to CRIU into a blocking
// descriptor CRIU can inherit; the connection itself is closed.
func socketFile(nc net.Conn) (*os.File, error) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("data connection is not TCP")
	}
	f, err := tc.File()
	tc.Close()
	if err != nil {
		return nil, err
	}
	// O_NONBLOCK is shared with Go's poller's copy: CRIU needs blocking IO.
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// cutSocket makes every blocked or later read and write of the socket
// fail at once, in whichever process holds it: the way to stop a CRIU
// that is streaming into a dead link without killing it.
func cutSocket(f *os.File) {
	if f != nil {
		unix.Shutdown(int(f.Fd()), unix.SHUT_RDWR)
	}
}

// lazyPipeBytes is the size of the pipes CRIU's page server uses to
// serve a post-copy's pages: PIPE_MAX_SIZE pages (criu/include/page-pipe.h,
// 8 pages of 40-byte pipe buffers).
const lazyPipeBytes = 8 * 4096 / 40 * 4096

// checkLazyPipes makes sure CRIU will get those pipes: without
// CAP_SYS_RESOURCE, only up to fs.pipe-max-size, and CRIU then fails only
// once the tree runs on the destination (tee: Operation not permitted).
func checkLazyPipes() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETPIPE_SZ, lazyPipeBytes); err != nil {
		max, _ := os.ReadFile("/proc/sys/fs/pipe-max-size")
		return fmt.Errorf("--lazy: CRIU serves the memory through %d-byte pipes, but without CAP_SYS_RESOURCE this process gets pipes only up to fs.pipe-max-size (%s): raise it (sysctl -w fs.pipe-max-size=4194304)",
			lazyPipeBytes, strings.TrimSpace(string(max)))
	}
	return nil
}

// criuCheck runs `criu check --feature name` and says why it failed.
func criuCheck(criuPath, feature string) error {
	var out bytes.Buffer
	cmd := exec.Command(criuPath, "check", "--feature", feature)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		return fmt.Errorf("criu check --feature %s: %s", feature, strings.TrimSpace(lines[len(lines)-1]))
	}
	return nil
}
