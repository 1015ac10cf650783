package runner

import (
	"syscall"
	"time"
)

// rusageThread is Linux's RUSAGE_THREAD, absent from package syscall.
const rusageThread = 1

// threadCPU returns the user plus system CPU time of the calling OS
// thread; the caller locks its goroutine to the thread.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
