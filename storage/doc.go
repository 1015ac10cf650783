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
// concurrent callers: on the 2-core VM tailor is benchmarked on, 64
// goroutines writing 1 KB values reached a median of 31,000 acknowledged,
// fsynced Apply calls per second grouped against 1,200 ungrouped
// (BenchmarkApply; the shared disk made single runs vary from 12,000 to
// 42,000).
//
// # Memory
//
// Badger memory-maps its value log and tables, and the pages of those files
// a process touches count in its resident set as file-backed memory: page
// cache that the kernel reclaims under pressure, not heap. With the
// defaults, a million profiles (1.25 GB of values) and 200,000 random
// read-and-rewrite updates, the process held 40 MB of anonymous memory
// (23 MB of Go heap) and 1.6 GB of file-backed pages — the part of the
// value log it had read or written. Opening that store took 0.07–0.7 s.
// The command storage/internal/rsscheck reproduces the measurement.
//
// # Ownership of byte slices
//
// Stores never retain slices passed in after the call returns. Get appends
// into the caller's buffer; slices handed to a Scan callback are valid only
// during that call.
package storage
