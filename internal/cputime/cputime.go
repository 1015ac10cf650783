// Package cputime reads the CPU time the process has used, for benchmarks
// and the bench tool: on a shared machine CPU time per operation is a
// steadier measure of cost than wall time, since time spent waiting for a
// core is not counted.
package cputime
