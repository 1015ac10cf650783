//go:build linux

package storage

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// adviseRandom tells the kernel (madvise MADV_RANDOM) that the value-log
// and table files of the store in dir, which Badger memory-maps, are read
// at random. Without it a page fault on those maps reads around the page by
// the device's read-ahead (8 MiB on the machine tailor is benchmarked on),
// so a few thousand random Gets make the whole value log resident and
// count in the process's RSS. The advice only drops read-ahead: it never
// changes or discards data.
//
// It finds the mappings in /proc/self/maps. A mapping that Badger unmaps
// between that read and the madvise makes madvise fail (ignored) or, if
// the range was reused, advises other memory, which is harmless.
func adviseRandom(dir string) (int, error) {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	prefix := dir + string(os.PathSeparator)
	n := 0
	for line := range bytes.Lines(maps) {
		// address perms offset dev inode pathname
		fields := strings.Fields(string(line))
		if len(fields) != 6 || !strings.HasPrefix(fields[5], prefix) ||
			!(strings.HasSuffix(fields[5], ".vlog") || strings.HasSuffix(fields[5], ".sst")) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		_, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), syscall.MADV_RANDOM)
		if errno == 0 {
			n++
		}
	}
	return n, nil
}
