// Package softdirty says whether the kernel tracks which pages a process
// wrote since a given moment (the soft-dirty bits of /proc/PID/pagemap).
// CRIU's pre-dumps and incremental dumps (--track-mem, --prev-images-dir)
// need it; a kernel built without CONFIG_MEM_SOFT_DIRTY makes CRIU abort
// them halfway. The runtime asks here first, so it can refuse such a dump
// in one line before CRIU runs.
//
// The probe is the one CRIU's kerndat makes (kerndat_get_dirty_track):
// reset the calling process's soft-dirty bits, write to a fresh page, and
// see whether pagemap marks that page soft-dirty. It takes well under a
// millisecond; `criu check --feature mem_dirty_track` gives the same
// answer, from CRIU itself.
package softdirty

import (
	"encoding/binary"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pmeSoftDirty is bit 55 of a pagemap entry (Documentation/admin-guide/mm/soft-dirty.rst).
const pmeSoftDirty = 1 << 55

// Available says whether this kernel tracks soft-dirty pages; the error
// says why it could not find out.
func Available() (bool, error) {
	page := os.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return false, fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(mem)

	// "4" clears the soft-dirty bits of every page of the process; a
	// kernel without them refuses it (EINVAL) or ignores it.
	if err := os.WriteFile("/proc/self/clear_refs", []byte("4"), 0); err != nil {
		if os.IsPermission(err) {
			return false, fmt.Errorf("/proc/self/clear_refs: %w", err)
		}
		return false, nil
	}
	mem[0] = 1
	pm, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return false, err
	}
	defer pm.Close()
	var entry [8]byte
	off := int64(uintptr(unsafe.Pointer(&mem[0])) / uintptr(page) * 8)
	if _, err := pm.ReadAt(entry[:], off); err != nil {
		return false, fmt.Errorf("/proc/self/pagemap: %w", err)
	}
	return binary.LittleEndian.Uint64(entry[:])&pmeSoftDirty != 0, nil
}
