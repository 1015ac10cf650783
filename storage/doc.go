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
// durable to the degree its options promise.
//
// # Badger
//
// [OpenBadger] opens a [Badger] store on disk or in memory
// ([BadgerOptions.InMemory]). Its defaults are sized for tailor's workload
// (profiles of 0.5–2 KB, about a million of them): see [BadgerOptions] for
// each setting and why. Concurrent Apply calls are group-committed: one
// committer goroutine gathers the calls waiting at that moment into a single
// Badger transaction, so that with [BadgerOptions.SyncWrites] one fsync
// covers many callers, each of which is answered with the result of the
// commit that carried its batch. Value-log garbage collection runs in the
// background; [Badger.Close] stops it.
//
// # Ownership of byte slices
//
// Stores never retain slices passed in after the call returns. Get appends
// into the caller's buffer; slices handed to a Scan callback are valid only
// during that call.
package storage
