//go:build !linux

package storage

// adviseRandom is a no-op outside Linux.
func adviseRandom(dir string) (int, error) { return 0, nil }
