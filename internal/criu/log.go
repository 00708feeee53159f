package criu

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxLogErrors bounds how many of CRIU's error lines go into a message.
const maxLogErrors = 5

// tailBytes is how much of a log end LogErrors reads: errors are near the
// end, and a runaway log can be gigabytes.
const tailBytes = 4 << 20

// harmless are error lines CRIU prints on this kind of host that never
// explain a failure.
var harmless = []string{"RLIMIT_NOFILE"}

// LogErrors returns CRIU's own "Error (...)" lines from a log, without the
// timestamps, at most maxLogErrors of them (the first ones: later ones
// tend to be consequences).
func LogErrors(r io.Reader) []string {
	var errs []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() && len(errs) < maxLogErrors {
		line := sc.Text()
		i := strings.Index(line, "Error (")
		if i < 0 || isHarmless(line) {
			continue
		}
		errs = append(errs, strings.TrimSpace(line[i:]))
	}
	return errs
}

func isHarmless(line string) bool {
	for _, h := range harmless {
		if strings.Contains(line, h) {
			return true
		}
	}
	return false
}

// LogFileErrors reads the error lines of the log at path; none if it
// cannot be read.
func LogFileErrors(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > tailBytes {
		f.Seek(-tailBytes, io.SeekEnd)
	}
	return LogErrors(f)
}

// LogTail is the last n bytes of the log at path; "" if it cannot be read.
func LogTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// WithLog wraps err with the error lines of the log at path, so the
// message says why CRIU failed, not only that it did.
func WithLog(err error, path string) error {
	if err == nil {
		return nil
	}
	lines := LogFileErrors(path)
	if len(lines) == 0 {
		return fmt.Errorf("%w (log: %s)", err, path)
	}
	return fmt.Errorf("%w: %s (log: %s)", err, strings.Join(lines, "; "), path)
}

// Version is CRIU's version.
type Version struct{ Major, Minor, Sub int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Sub) }

// AtLeast reports whether v >= major.minor.
func (v Version) AtLeast(major, minor int) bool {
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// ParseVersion reads the output of `criu --version`.
func ParseVersion(out []byte) (Version, error) {
	for _, line := range bytes.Split(out, []byte("\n")) {
		s, ok := strings.CutPrefix(string(line), "Version:")
		if !ok {
			continue
		}
		var v Version
		n, _ := fmt.Sscanf(strings.TrimSpace(s), "%d.%d.%d", &v.Major, &v.Minor, &v.Sub)
		if n >= 2 {
			return v, nil
		}
	}
	return Version{}, fmt.Errorf("no CRIU version in %q", bytes.TrimSpace(out))
}
