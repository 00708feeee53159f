package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// reportedKiBFile counts the free memory a VM's kernel has handed back to
// its host (virtio-balloon free page reporting), where the kernel says.
const reportedKiBFile = "/sys/module/page_reporting/parameters/reported_kib"

// memoryProbe says how costly fresh memory is here. Where the guest
// reports free pages to its host, memory it frees goes back to the host
// within seconds, and touching it again faults in the host too. A
// migration keeps its source tree (stopped) until the destination's copy
// runs, so the destination's restore needs memory the machine has not
// just freed; the floor's restore reuses what its dump just freed.
type memoryProbe struct {
	reportedAtStart int64 // KiB; -1: no page reporting here
	touchSPerGiB    float64
}

func probeMemory() memoryProbe {
	p := memoryProbe{reportedAtStart: reportedKiB()}
	// In a process of its own: the bench's peak RSS would otherwise be
	// every later command's (a vfork'd child inherits the high-water
	// mark of the memory it shares until exec).
	self, err := os.Executable()
	if err != nil {
		return p
	}
	out, err := exec.Command(self, touchMemoryArg).Output()
	if err == nil {
		p.touchSPerGiB, _ = strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	}
	return p
}

const touchMemoryArg = "-touch-memory"

// touchMemory is the bench run as touchMemoryArg: it times touching 256
// MiB of fresh anonymous memory and prints seconds per GiB.
func touchMemory() {
	const n = 256 << 20
	start := time.Now()
	m, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: touch memory:", err)
		os.Exit(1)
	}
	fmt.Println(time.Since(start).Seconds() * (1 << 30) / n)
	unix.Munmap(m)
	os.Exit(0)
}

// note describes the probe and what was reported since it ran.
func (p memoryProbe) note() string {
	s := fmt.Sprintf("touching fresh anonymous memory took %.2f s per GiB at the start", p.touchSPerGiB)
	if p.reportedAtStart < 0 {
		return s + "; no free page reporting here"
	}
	gone := float64(reportedKiB()-p.reportedAtStart) / (1 << 20)
	return s + fmt.Sprintf("; free page reporting is on: %.1f GiB the guest freed went back to the host during the run, to be faulted in again when next used", gone)
}

func reportedKiB() int64 {
	b, err := os.ReadFile(reportedKiBFile)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return -1
	}
	return n
}
