//go:build !unix

package badger

import "io/fs"

// diskUsage is the apparent size of f.
func diskUsage(f fs.FileInfo) int64 { return f.Size() }
