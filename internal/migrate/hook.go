package migrate

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// The post-dump hook. CRIU runs its action scripts at each stage of a
// dump and, after "post-dump", resumes the tree if a script failed and
// ends it otherwise (with --lazy-pages, once every page is served). The
// source gives CRIU this program as its action script: run as one, it
// asks the source, over a unix socket named in its environment, whether
// CRIU may go on, and fails unless the answer is "go". While it waits,
// the dump is complete and the tree frozen, with CRIU's parasite gone:
// the source copy is intact, and whatever dies (the source, its CRIU,
// the destination) it resumes.

// hookEnv carries "SOCKET TOKEN" to the hook; CRIU passes its
// environment to its scripts.
const hookEnv = "_CRIU_NS_MIGRATE_HOOK"

// The stages the source hears of; the hook answers the others itself.
const (
	ActionPreDump  = "pre-dump"  // before the tree is frozen
	ActionPostDump = "post-dump" // the dump is complete, the tree frozen
)

// Hook is the source's end of the hook: where CRIU's hook calls arrive.
type Hook struct {
	ln    *net.UnixListener
	name  string
	token string
	calls chan HookCall
	done  chan struct{}
}

// HookCall is CRIU waiting at Action until it is answered.
type HookCall struct {
	Action string
	At     time.Time
	conn   net.Conn
}

// Answer lets CRIU go on (goOn) or makes its script fail.
func (c HookCall) Answer(goOn bool) {
	reply := "stop\n"
	if goOn {
		reply = "go\n"
	}
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.conn.Write([]byte(reply))
	c.conn.Close()
}

// NewHook listens for hook calls on an abstract unix socket: it needs no
// path that CRIU, inside a container's mount namespace, might not see.
func NewHook() (*Hook, error) {
	b := make([]byte, 16)
	rand.Read(b)
	name := fmt.Sprintf("@criu-ns-runtime/migrate/%d/%x", os.Getpid(), b[:8])
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("post-dump hook socket: %w", err)
	}
	h := &Hook{ln: ln, name: name, token: hex.EncodeToString(b[8:]), calls: make(chan HookCall), done: make(chan struct{})}
	go h.accept()
	return h, nil
}

// Env is what CRIU's environment must hold for the hook to find us.
func (h *Hook) Env() string { return hookEnv + "=" + h.name + " " + h.token }

// Calls delivers the calls; each must be answered.
func (h *Hook) Calls() <-chan HookCall { return h.calls }

// Close stops listening; calls that come later fail, so CRIU resumes.
func (h *Hook) Close() {
	select {
	case <-h.done:
	default:
		close(h.done)
		h.ln.Close()
	}
}

func (h *Hook) accept() {
	for {
		conn, err := h.ln.Accept()
		if err != nil {
			return
		}
		go h.serve(conn)
	}
}

func (h *Hook) serve(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	token, action, ok := strings.Cut(strings.TrimSpace(line), " ")
	if err != nil || !ok || token != h.token {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	select {
	case h.calls <- HookCall{Action: action, At: time.Now(), conn: conn}:
	case <-h.done:
		conn.Close()
	}
}

// IsHook says whether this process was started by CRIU as the hook.
func IsHook() bool {
	return os.Getenv(hookEnv) != "" && os.Getenv("CRTOOLS_SCRIPT_ACTION") != ""
}

// RunHook is the hook: it returns the exit code CRIU gets.
func RunHook() int {
	action := os.Getenv("CRTOOLS_SCRIPT_ACTION")
	if action != ActionPreDump && action != ActionPostDump {
		return 0
	}
	name, token, _ := strings.Cut(os.Getenv(hookEnv), " ")
	conn, err := net.Dial("unix", name)
	if err != nil {
		// The source is gone: the dump must not end the tree.
		fmt.Fprintf(os.Stderr, "criu-ns-runtime migrate hook: %v\n", err)
		return 1
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s %s\n", token, action); err != nil {
		return 1
	}
	reply, _ := bufio.NewReader(conn).ReadString('\n')
	if strings.TrimSpace(reply) != "go" {
		return 1
	}
	return 0
}
