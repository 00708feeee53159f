package nsinit

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A restored root that ends at once must still be found by the command
// that restored it, which looks its host pid up in /proc once CRIU has
// reported (a tree that CRIU restores in the middle of its last second
// of sleep, say). That command holds the container's lock until it has
// recorded the root, so the root's parent reaps it only once it can take
// the lock: until then the root is a zombie, which keeps its pid.

// childEvent is siginfo_t as waitid(2) fills it for a child (x/sys's
// Siginfo hides the fields).
type childEvent struct {
	Signo, Errno, Code, _ int32
	Pid, UID, Status      int32
	_                     [100]byte
}

// si_code values for a child that has ended.
const (
	cldExited = 1
	cldKilled = 2
	cldDumped = 3
)

func (e *childEvent) ended() bool {
	return e.Code == cldExited || e.Code == cldKilled || e.Code == cldDumped
}

// peekChild reports the next event of a child (with options: WEXITED,
// WSTOPPED, WCONTINUED, WNOHANG) without consuming it; Pid is 0 if
// WNOHANG found none.
func peekChild(options int) (childEvent, error) {
	var e childEvent
	err := unix.Waitid(unix.P_ALL, 0, (*unix.Siginfo)(unsafe.Pointer(&e)), options|unix.WNOWAIT, nil)
	return e, err
}

// awaitRestorer returns once no command holds the container's lock: the
// one that restored the tree has recorded its root.
func awaitRestorer() {
	unix.Flock(LockFd, unix.LOCK_EX)
	unix.Flock(LockFd, unix.LOCK_UN)
}
