//go:build unix

package cputime

import (
	"syscall"
	"time"
)

// Process returns the user plus system CPU time this process has used,
// all its threads included (the store's background work, the Go GC).
func Process() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
