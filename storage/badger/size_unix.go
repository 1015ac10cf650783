//go:build unix

package badger

import (
	"io/fs"
	"syscall"
)

// diskUsage is the space f takes on disk: its allocated blocks, which
// leave out the unwritten, preallocated tail of Badger's active value-log
// file.
func diskUsage(f fs.FileInfo) int64 {
	if st, ok := f.Sys().(*syscall.Stat_t); ok {
		return int64(st.Blocks) * 512
	}
	return f.Size()
}
