// Package badger is the embedded [storage.Store]: Badger
// (github.com/dgraph-io/badger/v4) in a directory or in memory, the store
// tailor opens by default. One process opens a directory at a time (Badger
// locks it); to share profiles between processes use
// [github.com/tailorhq/tailor/storage/redis].
//
// # Options
//
// [Open] opens a [Store] as [Options] describe. Its defaults are sized for
// tailor's workload (profiles of 0.5–2 KB, about a million of them): see
// Options and the Default constants for each setting and why. Value-log
// garbage collection runs in the background, paced by the writes (# Space
// on disk); [Store.Close] stops it. Badger's log goes to a *slog.Logger,
// its chatty INFO demoted to Debug.
//
// # Versions and conditional writes
//
// The store opens Badger in managed mode and hands out the commit
// timestamps itself: commits are serialized (by the committer goroutine,
// or by a mutex without group commit) and each takes the next timestamp,
// which is the version of every key it writes. The clock only moves
// forward, so a key never gets a version it had before, even after a
// delete, and [Store.Write] knows the new version without reading it
// back. A condition is checked inside the transaction that writes it, at
// the last committed timestamp, so it still holds when it commits. Reads
// see every acknowledged write.
//
// A version filter (filter.go, [Options.VersionFilterSize]: 2 Mi slots,
// 32 MiB without pointers) records, per hash slot of the keys, the
// timestamp and key of the latest write since Open. It lets most
// conditional writes skip the lookup that checks them (the slot holds the
// key at exactly the version the condition names), and it makes reads
// cheaper: Badger's Get stops only when it finds a version equal to its
// read timestamp, so read at the last commit it searches every memtable
// and level; read at the slot's timestamp, which is at least the latest
// version of every key of the slot, it sees the same latest version and
// stops at the level holding it whenever the key was its slot's last
// writer. A Get among 100,000 keys each written four times took 2.9 µs
// and 9 allocations instead of 5.1 µs and 18 (BenchmarkGetOverwritten);
// a whole Identify under sustained load saves 2–4 µs of its ~100–120
// (bench/README.md).
//
// A store opened on existing data seeds the filter in the background with
// the latest version of every key, read from a snapshot taken before the
// first write (seed.go; a key-only pass over the tree, which takes about
// a microsecond of one core per key — 0.12 s for 100,000 keys, 0.8 s for
// a million profiles — while the store serves calls), so that the first
// update of each key after a restart
// takes the same fast path as later ones: conditions are proven at once,
// and reads use the filter once the pass is complete. A Get and a
// conditional write of each of 100,000 keys after reopening took 26 µs
// and 61 allocations instead of 33 µs and 73 (BenchmarkUpdateReopened).
//
// After each commit the store tells Badger
// that older versions may be dropped — except those an open Scan or Backup
// snapshot still reads — which is what lets compaction count value-log
// garbage. [Store.Restore] brings back the snapshot's versions and moves
// the clock past them: do not keep versions read before a Restore. A
// directory written by Badger's own clock opens as it is: the clock starts
// past its newest version.
//
// # Group commit
//
// Concurrent Write calls are group-committed: one committer goroutine
// takes every Write waiting at the moment it is free and commits their ops
// in a single Badger transaction. Without [Options.SyncWrites] it does not
// wait for that transaction to be applied before it builds the next (up to
// 16 in flight), so while one batch is written the next is gathered and
// checked. With SyncWrites it keeps one transaction in flight: Badger
// fsyncs the memtable's log once per transaction, not once per batch of
// them, so transactions in flight together would each pay an fsync, where
// one transaction carrying every op that arrived during the previous fsync
// pays one for all of them. Each caller is answered once the transaction
// that carried its op is applied (and fsynced), and gets the result of its
// own op: a failed condition or an op Badger rejects fails alone. A key is
// written at most once per transaction (all writes of a transaction share
// its version), and an op whose key is in a transaction not yet applied
// waits for it, in arrival order, so that its condition is checked against
// the latest write; ops of other keys go ahead. Throughput with SyncWrites
// therefore grows with the number of concurrent callers. On the 2-core VM
// tailor is benchmarked on, whose shared disk took 3–18 ms per fsync while
// others were busy, 64 goroutines writing 1 KB values reached medians of
// 3,700 and 31,000 fsynced writes per second in two runs, against 340 and
// 1,200 ungrouped; 512 goroutines reached 17,000 while 8 managed 425
// (BenchmarkWrite, BenchmarkWriteDurableCallers, measured before the
// pipelining). The bench's durable run (100,000 profiles, 128 callers)
// reached 0.53–0.58× the throughput of the same run without SyncWrites
// with one transaction in flight, against 0.36–0.38× with 16.
//
// # Queues
//
// [Store.Queue] keeps each queue's messages in the store's own keys (under
// a reserved prefix that Write refuses and Scan skips), so they are as
// durable as any write and travel with Backup and Restore. Only one
// process opens the directory, so which messages are held by a consumer
// is kept in memory: after a restart every unacknowledged message is
// available again at once.
//
// # Space on disk
//
// Profiles are rewritten whole, so every update leaves the previous value
// behind as garbage, in the value log where Badger keeps values of
// ValueThreshold bytes or more (every profile, with the defaults). Badger
// reclaims it by rewriting a value-log file's live values at the end of
// the log and deleting the file (value-log GC: Badger's DB.RunValueLogGC),
// and it picks the file from discard statistics, which count a value as
// garbage only once a compaction has dropped the version it belonged to
// and the file is not the one being written. Reclaiming space therefore
// takes three steps: an update overwrites a value; flushes and
// compactions bring the new version down to the level of the old one and
// drop the old, which counts its value as discardable; GC rewrites a file
// once the counted garbage reaches the discard ratio. The store paces
// each step (gc.go):
//
//   - Compactions: [DefaultNumLevelZeroTables] is 1, so every flushed
//     memtable is compacted into the tree at once, and the statistics
//     trail the writes by about a memtable and a level of the tree (a few
//     hundred thousand writes with a million profiles). With Badger's
//     five level-0 tables they trailed by more than the writes that
//     double the value log, and GC under load found nothing to rewrite.
//   - Under load: every [Options.GCWriteStep] bytes written to the value
//     log (a quarter of a file) wake the GC for a round, which rewrites
//     files for as long as one is [Options.GCDiscardRatio] garbage; the
//     [Options.GCInterval] ticker runs one too. A round costs nothing
//     when no file qualifies.
//   - Idle: once the writes have stayed below a step for
//     [Options.GCIdleAfter], the store runs its idle pass, once per quiet
//     spell (and once after Open): it flushes the memtables (holding new
//     writes back for the fraction of a second that takes), compacts the
//     whole tree into one level, which makes the statistics count every
//     overwritten value, and rewrites every file that is
//     [Options.GCIdleDiscardRatio] garbage or more. The value log is then
//     at most 1/(1−GCIdleDiscardRatio) times the live values (1.25×),
//     plus the file being written.
//
// Measured with the bench (bench/README.md, "Space on disk"): a million
// profiles (1.0 GB of live data) under full-speed Identify calls from two
// callers for ten minutes stayed within 1.89× their live data at every
// five-second sample (1.4–1.6× after the first minute) and fell to 1.13×
// within seconds of idling; the timer-driven GC it replaces swung between
// 2.0× and 3.1× and stayed at 2× once idle. The price is CPU: a rewrite
// reads every entry of a file, looks up each key in the LSM tree and
// writes the live ones again, which on the 2-core test machine cost 34 µs
// of CPU per Identify at full speed (82 µs with GC off, 116 µs with it).
// A higher discard ratio costs less CPU (a rewrite reads 1/r bytes per
// byte reclaimed) and more disk (the value log settles near −ln(1−r)/r
// times the live data plus the uncounted garbage); 0.5 let a freshly
// loaded store reach 2.2× in its first minute, when all its files age at
// once. Keeping the profiles inline in the LSM tree instead (ValueThreshold
// 1 MiB), where compaction reclaims space by itself, cost 2.2× the CPU per
// Identify, a third of the throughput and twice the anonymous memory, and
// compaction fell behind (1.7× after four minutes and rising).
//
// What the store does not bound: the file being written is never
// rewritten, so a store much smaller than [Options.ValueLogFileSize] keeps
// up to a file of garbage (a 24 MB store settled at 100 MB); and one GC
// goroutine reclaims at most what one core can rewrite, so writes faster
// than that (several times the rate measured here) outrun it.
//
// # Memory
//
// Badger memory-maps its value log and tables, and the pages of those files
// a process touches count in its resident set as file-backed memory: page
// cache that the kernel reclaims under pressure, not heap. With the
// defaults, a million profiles (1.25 GB of values) and 200,000 random
// read-and-rewrite updates, the process held 124–130 MB of anonymous
// memory (62 MB of Go heap, 32 MB of it the version filter) and 1.6 GB of
// file-backed pages — the part of the value log it had read or written
// (2026-12-01, two runs; the build before the paced GC held 103 MB
// anonymous, 53 MB of heap, on the same store). Issue 6's build, before
// the version filter, held 40 MB anonymous; with Badger's own memory
// settings (and values inline) 660 MB anonymous and 2.2 GB in all.
// Opening the store took 0.12–0.15 s (0.05–1 s in earlier runs, 2.2 s
// once, right after the load, with the machine's load average at 15). The
// command storage/badger/internal/rsscheck reproduces these measurements.
//
// # Telemetry
//
// With [Options].MeterProvider set, the store reports what only Badger
// knows as OpenTelemetry metrics: the size of every group commit
// (tailor.store.commit.batch_size), value-log GC rounds, the files they
// rewrote and the bytes they freed on disk (tailor.store.gc.*), and the
// live data — key and value bytes of the latest version of every live
// key, estimated from the LSM tree alone when the GC loop starts and
// after GC runs that rewrote files, at most every 30 s
// (tailor.store.live_data). The engine measures the
// rest for any store: the latency of reads and writes, and the size on
// disk through [Store.Size]. Without a provider nothing is measured; the
// global provider is never used.
//
// # Crashes
//
// Badger recovers from a killed process by replaying its memtable logs.
// A crash between creating a memtable or value-log file and sizing it
// leaves a zero-length file that Badger 4.9.6 refuses to open (Badger
// issue 2207); such a file holds nothing, and Open removes it first.
package badger
