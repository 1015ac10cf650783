// Package storage defines the small ordered key-value interface tailor keeps
// its profiles in, the Badger implementation of it, and (in
// [github.com/tailorhq/tailor/storage/storagetest]) the conformance suite
// every implementation must pass.
//
// # The interface
//
// [Store] is deliberately small — Get, atomic Apply of a batch of [Op]s,
// prefix Scan, Backup, Restore, Close — so that it can later be implemented
// on a distributed engine. The engine serializes writers per key itself, so
// a Store needs no conflict detection; it must make every Apply atomic and
// durable to the degree its options promise. [Sizer] is optional.
//
// # Badger
//
// [OpenBadger] opens a [Badger] store on disk or in memory
// ([BadgerOptions.InMemory]). Its defaults are sized for tailor's workload
// (profiles of 0.5–2 KB, about a million of them): see [BadgerOptions] and
// the Default constants for each setting and why. Value-log garbage
// collection runs in the background every [DefaultGCInterval];
// [Badger.Close] stops it. Badger's log goes to a *slog.Logger, its chatty
// INFO demoted to Debug.
//
// # Group commit
//
// Concurrent Apply calls are group-committed: one committer goroutine
// takes every Apply waiting at the moment it is free and writes their
// batches in a single Badger transaction, so that with
// [BadgerOptions.SyncWrites] one fsync covers them all. Each caller is
// answered with the result of the commit that carried its batch; a batch is
// never split across transactions, and a batch too big for one transaction
// fails alone. Throughput with SyncWrites therefore grows with the number of
// concurrent callers. On the 2-core VM tailor is benchmarked on, whose
// shared disk took 3–18 ms per fsync while others were busy, 64 goroutines
// writing 1 KB values reached medians of 3,700 and 31,000 fsynced Apply
// calls per second in two runs, against 340 and 1,200 ungrouped; 512
// goroutines reached 17,000 while 8 managed 425 (BenchmarkApply,
// BenchmarkApplyDurableCallers).
//
// # Memory
//
// Badger memory-maps its value log and tables, and the pages of those files
// a process touches count in its resident set as file-backed memory: page
// cache that the kernel reclaims under pressure, not heap. With the
// defaults, a million profiles (1.25 GB of values) and 200,000 random
// read-and-rewrite updates, the process held 40 MB of anonymous memory
// (23 MB of Go heap) and 1.6 GB of file-backed pages — the part of the
// value log it had read or written; with Badger's own memory settings
// (and values inline) it held 660 MB anonymous and 2.2 GB in all. Opening
// the store took 0.05–1 s (2.2 s once, right after the load, with the
// machine's load average at 15). The command storage/internal/rsscheck
// reproduces these measurements.
//
// # Ownership of byte slices
//
// Stores never retain slices passed in after the call returns. Get appends
// into the caller's buffer; slices handed to a Scan callback are valid only
// during that call.
package storage
