//go:build !unix

package rules

func cpuTime() int64 { return 0 }
