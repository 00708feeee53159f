// Package pidfd names processes so that a reused pid never stands in for
// them. A Ref is a pid with the process's start time (field 22 of
// /proc/PID/stat): every pid the runtime stores is stored as a Ref. Open
// turns a Ref into a Proc, a pidfd checked against that start time, and
// signals, waits and setns(2) go through the pidfd: once opened, it names
// that one process however long it lives, and a pid reused after it died
// can never be reached through it.
package pidfd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/criu-ns-runtime/criu-ns-runtime/internal/smallfile"
)

// ErrGone says the process a Ref names no longer runs (it exited, or its
// pid now belongs to another process).
var ErrGone = errors.New("process is gone")

// Ref names one process: its pid and its start time, in clock ticks after
// boot.
type Ref struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

func (r Ref) String() string { return fmt.Sprintf("pid %d (started at tick %d)", r.Pid, r.StartTime) }

// Of names the process that has pid now.
func Of(pid int) (Ref, error) {
	st, err := readStat(pid)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Pid: pid, StartTime: st.start}, nil
}

// Proc is an open pidfd of the process a Ref names.
type Proc struct {
	Ref
	fd int
}

// Open opens a pidfd of the process r names; ErrGone if it has exited
// (zombies included) or its pid is someone else's now.
func (r Ref) Open() (*Proc, error) {
	if r.Pid <= 0 {
		return nil, ErrGone
	}
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return nil, ErrGone
		}
		return nil, fmt.Errorf("pidfd of %d: %w", r.Pid, err)
	}
	// Read after opening: if the start time still matches, the pidfd is
	// of the very process r names (a pidfd pins its process).
	st, err := readStat(r.Pid)
	if err != nil || st.start != r.StartTime || st.state == 'Z' || st.state == 'X' {
		unix.Close(fd)
		return nil, ErrGone
	}
	return &Proc{Ref: r, fd: fd}, nil
}

// Alive says whether the process r names still runs. It needs no pidfd:
// the start time alone says whether the pid is still r's process, and
// state and list ask this of every container.
func (r Ref) Alive() bool {
	if r.Pid <= 0 {
		return false
	}
	st, err := readStat(r.Pid)
	return err == nil && st.start == r.StartTime && st.state != 'Z' && st.state != 'X'
}

// Dying says whether the process r names has a SIGKILL pending: it has
// not ended yet, but nothing can keep it from ending. (A tree CRIU was
// ending when it was killed is in this state for a moment.)
func (r Ref) Dying() bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(r.Pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		key, value, _ := strings.Cut(line, ":")
		if key != "SigPnd" && key != "ShdPnd" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err == nil && mask&(1<<(unix.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// Fd is the pidfd, for setns(2); it stays owned by p.
func (p *Proc) Fd() int { return p.fd }

// File duplicates the pidfd into a file a child process can inherit.
func (p *Proc) File() (*os.File, error) {
	fd, err := unix.FcntlInt(uintptr(p.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}

// Signal sends sig to the process; ErrGone if it has exited.
func (p *Proc) Signal(sig unix.Signal) error {
	err := unix.PidfdSendSignal(p.fd, sig, nil, 0)
	if err == unix.ESRCH {
		return ErrGone
	}
	return err
}

// Wait waits until the process exits, at most timeout (forever if
// timeout < 0), and says whether it did.
func (p *Proc) Wait(timeout time.Duration) bool {
	ms := -1
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	pfd := []unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
	for {
		if timeout >= 0 {
			ms = int(time.Until(deadline).Milliseconds())
			if ms < 0 {
				ms = 0
			}
		}
		n, err := unix.Poll(pfd, ms)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return false
		}
		return n > 0
	}
}

// Close releases the pidfd.
func (p *Proc) Close() error {
	if p == nil || p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}

type stat struct {
	state byte
	ppid  int
	start uint64
}

// readStat reads what the package needs of /proc/PID/stat; list reads
// one of these per container, hence smallfile, and a parse that
// allocates nothing.
func readStat(pid int) (stat, error) {
	var st stat
	err := smallfile.UseOnce("/proc/"+strconv.Itoa(pid)+"/stat", func(b []byte) error {
		var ok bool
		if st, ok = parseStat(b); !ok {
			return fmt.Errorf("/proc/%d/stat: malformed", pid)
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
		return stat{}, ErrGone
	}
	return st, err
}

// parseStat picks the state (field 3), the ppid (4) and the start time
// (22) from the content of /proc/PID/stat.
func parseStat(b []byte) (st stat, ok bool) {
	// The comm (field 2) may hold spaces and parentheses: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, false
	}
	b = b[i+1:]
	n := 2 // the field b starts in
	for n < 22 {
		for len(b) > 0 && (b[0] == ' ' || b[0] == '\n') {
			b = b[1:]
		}
		end := bytes.IndexAny(b, " \n")
		if end < 0 {
			end = len(b)
		}
		if end == 0 {
			return stat{}, false // fewer than 22 fields
		}
		f := b[:end]
		b = b[end:]
		switch n++; n {
		case 3:
			if len(f) != 1 {
				return stat{}, false
			}
			st.state = f[0]
		case 4:
			v, ok := decimal(f)
			if !ok || v > math.MaxInt32 {
				return stat{}, false
			}
			st.ppid = int(v)
		case 22:
			if st.start, ok = decimal(f); !ok {
				return stat{}, false
			}
		}
	}
	return st, true
}

// decimal is f's value as an unsigned decimal number.
func decimal(f []byte) (uint64, bool) {
	var v uint64
	for _, c := range f {
		if c < '0' || c > '9' || v > (math.MaxUint64-uint64(c-'0'))/10 {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, len(f) > 0
}

// Parent is the pid of r's parent, if r is alive.
func (r Ref) Parent() (int, error) {
	st, err := readStat(r.Pid)
	if err != nil {
		return 0, err
	}
	if st.start != r.StartTime {
		return 0, ErrGone
	}
	return st.ppid, nil
}
