package cputime

import "testing"

// Report starts measuring the CPU time the process uses and returns the
// function that reports it per op of b as "cpu-ns/op" (call it after the
// timed loop; it reports nothing where the CPU time cannot be read). It
// counts every goroutine of the process (a store's, the Go GC) and so is
// an upper bound of the benchmarked code's own cost.
func Report(b *testing.B) func() {
	c0 := Process()
	return func() {
		if c := Process(); c > 0 {
			b.ReportMetric(float64(c-c0)/float64(b.N), "cpu-ns/op")
		}
	}
}
