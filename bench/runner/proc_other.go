//go:build !linux

package runner

import "time"

// threadCPU is 0 where the CPU time of one thread cannot be read.
func threadCPU() time.Duration { return 0 }
