// Command workload is the process tree the integration tests checkpoint and
// restore. It is deliberately small and built static (CGO_ENABLED=0).
//
//	-counter FILE  every 50ms increment a counter and pwrite it, fixed-width,
//	               at offset 0 of FILE (the fd stays open across dumps)
//	-mem MiB       allocate and touch a buffer filled with a verifiable
//	               pattern; on SIGUSR1 verify it and write "ok" or "bad" to
//	               the -status FILE
//	-status FILE   where SIGUSR1 results go (written to FILE.tmp, renamed)
//	-child         start a child copy of this program (the tree then has two
//	               processes); the child loops until its parent goes away
//	-dirty PERCENT on SIGHUP rewrite that share of the -mem buffer's pages
//	               (its first pages: spread out, they would dirty every
//	               transparent huge page) with the next generation of the
//	               pattern (SIGUSR1 then verifies that generation there),
//	               and write "dirtied N" (N: the generation) to -status
//	-echo          an interactive program, for shell jobs: print "echo: LINE"
//	               for every line read from stdin, "echo: SIGINT" on SIGINT,
//	               "echo: winch ROWSxCOLS" (stdin's window size) on SIGWINCH;
//	               exit N on the line "exit N", 0 at the end of stdin
//	-exit-after D  exit 5 once D has passed since it started (a tree
//	               restored after that ends as soon as it runs)
//	-tcp ADDR      keep a TCP connection to ADDR (from -tcp-from, if given):
//	               every 50ms send an 8-byte sequence number and expect it
//	               echoed; on any error exit 3 (the connection broke)
//
// SIGTERM makes the process exit 42, SIGUSR2 exit 43.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const counterWidth = 20 // digits written at offset 0, then '\n'

func main() {
	counter := flag.String("counter", "", "counter file")
	memMiB := flag.Int("mem", 0, "MiB of patterned memory")
	status := flag.String("status", "", "status file for SIGUSR1 results")
	child := flag.Bool("child", false, "start a child copy of this program")
	dirtyPct := flag.Int("dirty", 0, "percent of the -mem pages SIGHUP rewrites")
	isChild := flag.Bool("is-child", false, "internal: run as the child")
	echo := flag.Bool("echo", false, "echo stdin's lines, report SIGINT and SIGWINCH")
	exitAfter := flag.Duration("exit-after", 0, "exit 5 once this has passed since the start")
	tcpPeer := flag.String("tcp", "", "echo peer to keep a connection to")
	tcpFrom := flag.String("tcp-from", "", "local address of the -tcp connection")
	flag.Parse()
	if *exitAfter > 0 {
		time.AfterFunc(*exitAfter, func() { os.Exit(5) })
	}

	if *isChild {
		runChild()
		return
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2)
	if *dirtyPct > 0 {
		signal.Notify(sigs, syscall.SIGHUP)
	}
	if *echo {
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGWINCH)
		go echoLines()
	}

	var buf []uint64
	if *memMiB > 0 {
		buf = make([]uint64, *memMiB<<20/8)
		for i := range buf {
			buf[i] = pattern(i)
		}
	}

	if *child {
		self, err := os.Executable()
		if err != nil {
			fatal(err)
		}
		cmd := exec.Command(self, "-is-child")
		// nil Stdin/Stdout/Stderr: /dev/null, nothing else is inherited.
		if err := cmd.Start(); err != nil {
			fatal(err)
		}
		go cmd.Wait() //nolint:errcheck // reap it whenever it ends
	}

	if *tcpPeer != "" {
		conn, err := dialFrom(*tcpPeer, *tcpFrom)
		if err != nil {
			fatal(err)
		}
		go echoLoop(conn)
	}

	// "ready" in the status file says the memory is touched and the child
	// started (the benchmark waits for it before dumping).
	if *status != "" {
		writeStatus(*status, "ready")
	}

	// The counter starts only once everything above is set up, so a test
	// that sees it advance knows the tree is complete.
	if *counter != "" {
		f, err := os.OpenFile(*counter, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			fatal(err)
		}
		go func() {
			var n uint64
			for {
				n++
				line := fmt.Sprintf("%0*d\n", counterWidth, n)
				if _, err := f.WriteAt([]byte(line), 0); err != nil {
					fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}

	var gen uint64 // the pattern generation of the dirtied pages
	for s := range sigs {
		switch s {
		case syscall.SIGHUP:
			gen++
			for i := range buf {
				if dirtied(i, len(buf), *dirtyPct) {
					buf[i] = patternGen(i, gen)
				}
			}
			if *status != "" {
				writeStatus(*status, fmt.Sprintf("dirtied %d", gen))
			}
		case syscall.SIGTERM:
			os.Exit(42)
		case syscall.SIGUSR2:
			os.Exit(43)
		case syscall.SIGINT:
			fmt.Println("echo: SIGINT")
		case syscall.SIGWINCH:
			ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ)
			if err != nil {
				fmt.Println("echo: winch", err)
			} else {
				fmt.Printf("echo: winch %dx%d\n", ws.Row, ws.Col)
			}
		case syscall.SIGUSR1:
			res := "ok"
			for i := range buf {
				want := pattern(i)
				if dirtied(i, len(buf), *dirtyPct) {
					want = patternGen(i, gen)
				}
				if buf[i] != want {
					res = "bad"
					break
				}
			}
			if *memMiB > 0 && len(buf) != *memMiB<<20/8 {
				res = "bad"
			}
			if *status != "" {
				writeStatus(*status, res)
			}
		}
	}
}

// echoLines prints back what it reads and exits at "exit N" or EOF.
func echoLines() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		fmt.Println("echo:", line)
		if n, ok := strings.CutPrefix(line, "exit "); ok {
			code, _ := strconv.Atoi(n)
			os.Exit(code)
		}
	}
	os.Exit(0)
}

// pattern is the value word i of the -mem buffer must hold.
func pattern(i int) uint64 {
	x := uint64(i)*0x9e3779b97f4a7c15 + 0x5851f42d4c957f2d
	return x ^ x>>29
}

// patternGen is what word i holds once its page was dirtied gen times.
func patternGen(i int, gen uint64) uint64 { return pattern(i) ^ gen*0xff51afd7ed558ccd }

// wordsPerPage: the buffer's words per 4 KiB page.
const wordsPerPage = 4096 / 8

// dirtied says whether word i of a buffer of n words is in a page SIGHUP
// rewrites: the first pct percent of its pages.
func dirtied(i, n, pct int) bool {
	return i/wordsPerPage < n/wordsPerPage*pct/100
}

func dialFrom(peer, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", peer)
}

// echoLoop sends sequence numbers and checks the echoes; a broken
// connection ends the program with status 3.
func echoLoop(conn net.Conn) {
	var out, in [8]byte
	for seq := uint64(1); ; seq++ {
		binary.BigEndian.PutUint64(out[:], seq)
		if _, err := conn.Write(out[:]); err != nil {
			os.Exit(3)
		}
		if _, err := io.ReadFull(conn, in[:]); err != nil || in != out {
			os.Exit(3)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runChild loops until its parent is gone (it is then re-parented).
func runChild() {
	ppid := os.Getppid()
	for os.Getppid() == ppid {
		time.Sleep(100 * time.Millisecond)
	}
}

// writeStatus replaces the status file whole (through a rename), so a
// reader never sees half of it.
func writeStatus(path, s string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "workload:", err)
	os.Exit(1)
}
