// Package redis is a [storage.Store] on Redis — a standalone server or a
// Redis Cluster (Valkey speaks the same protocol) — shared by every
// process that opens it with the same [Options.KeyPrefix]. It uses
// [rueidis], for RESP3 client-side caching and automatic pipelining. It
// passes the conformance suite in
// [github.com/tailorhq/tailor/storage/storagetest] on both, with two
// instances racing on the same data; the tests run real servers, started
// by [github.com/tailorhq/tailor/storage/redis/redistest]. It needs Redis
// 7.0.9 or later (queues use 7.0's XADD id "0-*"; 7.0.0 to 7.0.8 can crash
// when the tracking table behind client-side caching fills up, Redis issue
// 11715), configured with maxmemory-policy noeviction: an evicted key is a
// lost profile.
//
// [Open] connects; the store is safe for concurrent use; [Store.Close]
// waits for the calls in flight.
//
// # Key layout
//
// Store key k is the Redis string at KeyPrefix + "{" + k + "}", holding
// the key's version as 16 lowercase hex digits followed by the value. The
// braces make k the hash tag, so keys spread over the cluster's slots one
// by one; every operation touches exactly one Redis key, so nothing needs
// two keys in one slot. A k that contains '}' has only its part before
// the first '}' as hash tag ("a}b" and "a}c" share a slot), and one that
// starts with '}' is hashed whole — which changes where keys live, never
// what an operation does. KeyPrefix may not contain braces, which would
// move the tag. Queue q is the stream at KeyPrefix + "~q{" + q + "}", which
// no store key's Redis key can equal (those continue the prefix with
// '{'). The store writes no other keys.
//
// # Writes and versions
//
// [Store.Write] runs one Lua script (EVALSHA; EVAL when the node answers
// NOSCRIPT, as a restarted node or a just-promoted replica does, since
// Redis does not replicate its script cache). The script reads the first
// 16 bytes of the key (GETRANGE), checks the op's condition — no
// condition, absent, or at version v — and either returns nil, writing
// nothing (ErrConflict), or deletes the key, or sets it with the new
// version in front of the value (SET, with PX for a TTL; a SET without PX
// drops an earlier expiry, so no PERSIST is needed). Redis runs a script
// atomically, so no other command on that key runs between the check and
// the write.
//
// The new version is the larger of the old version plus one and the
// primary's clock in microseconds (TIME, inside the script). Replicas
// receive the script's effects, not the script, so a promoted replica
// holds the same versions. While a key exists its versions only grow,
// whatever the clocks do. After a delete (or an expiry) the key starts
// again from the clock, so a recreated key gets a version it never had
// only if the clock of the primary that recreates it has passed every
// version the key had: a clock stepped back, or a failover to a replica
// whose clock is behind the old primary's by more than the time since the
// key's last write, could give a recreated key a version it had before
// the delete. A writer that read that old version before the delete and
// writes on condition of it would then overwrite the recreated key. This
// takes a clock error larger than the time between the read and the
// write, and a collision to the microsecond; keep the primaries' clocks in
// sync (NTP, slewing rather than stepping) and it does not happen.
//
// # Caching
//
// [Store.Get] reads through rueidis's client-side cache (DoCache, with
// CLIENT TRACKING in opt-in mode): the first Get of a key costs one round
// trip (CLIENT CACHING YES, MULTI, PTTL, GET, EXEC, pipelined), keeps the
// value in the memory of the connection to the key's node for at most
// [Options.CacheTTL] and at most until the key expires, and Redis
// remembers that this connection holds the key. Later Gets are answered
// from memory, with no round trip, until Redis sends an invalidation
// because the key changed — written by anyone — and rueidis drops it. Not
// found is cached too.
//
// A store sees its own writes: a Get that starts after a Write returned
// sees that write or a later one. The store keeps one pipelined
// connection per node (Open sets rueidis's PipelineMultiplex to -1),
// so a key's Gets and Writes share the connection that holds the key's
// cache entry. Redis puts an invalidation for a connection in its output
// when the key changes, before the answers to any later command on it
// (for the connection that made the change, right after that command's
// answer), and rueidis applies invalidations on its reading goroutine in
// the order they arrive, before it hands out the answers behind them.
// Every Write therefore pipelines a PTTL of its key behind the script, on
// the same connection, and returns only once that answer is in, so the
// invalidation its own write caused has been applied. The same holds for
// a Write that fails with ErrConflict: the invalidation for the other
// writer's change arrived before the script's answer, so a Get after
// ErrConflict already returns the newer version, and a caller that
// re-reads and retries does not retry on a stale copy. (A Write with
// WaitReplicas sends its script on another connection, see # Durability;
// it then sends the PTTL on the cache's connection, one more round trip.)
//
// A write by another store instance reaches this store's cache when its
// invalidation does: eventually, not at once. Every connection is read
// continuously (the store registers an invalidation callback, which puts
// rueidis's connections in background mode from the start), so that is
// about one network hop: on the 2-core test machine, with the cluster on
// it and a load average near 3, a Get saw another instance's write after
// a median of 40–180 µs, the slowest of 200 keys after 1.7–7.8 ms, in six
// runs of TestInvalidationByOtherInstance.
// A stale read never loses an update: Write checks the version on the
// server, so a write based on a stale read fails with ErrConflict.
//
// An invalidation can be lost only with its connection, and rueidis drops
// a connection's cache when the connection breaks. CacheTTL bounds
// staleness in whatever failure is left. When Redis's tracking table is
// full (tracking-table-max-keys) it forgets keys and sends their
// invalidations: more misses, no staleness. [Options.DisableCache] turns
// the cache off, for servers without RESP3 client tracking.
//
// # Round trips
//
// Measured on the network by TestRoundTrips, standalone and on a cluster:
//
//	Get, answered by the cache              0
//	Get, not cached (or DisableCache)       1
//	Write                                   1  (script + PTTL)
//	Write with WaitReplicas                 2  (script + WAIT, then PTTL; 1 with DisableCache)
//	Scan                                    1 (CLUSTER SLOTS) + 2 per batch of 512 keys per primary
//	Enqueue, Ack                            1  (2 with WaitReplicas)
//	Next                                    2 per wait slice (claim, then XREADGROUP)
//	Len, Oldest, Release                    1
//
// [Store.Stats] counts them as they happen (RoundTrips, and Gets answered
// by the cache in CacheHits), for benchmarks of the code above the store.
// BenchmarkStore has the latencies and allocations on a local cluster.
//
// # Scan
//
// [Store.Scan] asks any node for CLUSTER SLOTS, checks that the primaries
// serve all 16384 slots between them (it fails rather than skip a shard
// without a primary), and runs SCAN with MATCH (KeyPrefix + "{" + prefix,
// glob-escaped, + "*}") and COUNT 512 on every primary — not on replicas,
// which hold the same keys. It reads the values of each batch with one
// pipelined round trip of GETs, not through the cache. SCAN may report a
// key twice (when a node resizes its hash table); Scan visits it once, by
// remembering every key it visited, so it holds them in memory until it
// returns. Scan is not a snapshot: a key written during the scan may be
// seen with its old or its new value, a key created or deleted during it
// may or may not be visited, and a key moved to another node during the
// scan (resharding) may be missed.
//
// # Queues
//
// A [storage.Queue] is a Redis stream read by the consumer group "tailor",
// in which each Store instance is one consumer (named after ClientName,
// host, process id and a random suffix).
//
//   - Enqueue is a script that checks the bound against XLEN and appends
//     the message with XADD id "0-*", so ids are 1, 2, 3, ... in enqueue
//     order (the stream remembers its last id after deletes).
//   - Next first claims the oldest message held longer than
//     [Options.ClaimAfter] (or released): a script finds it with XPENDING
//     IDLE and takes it with XCLAIM, whose own idle check stops two
//     consumers from both taking it. (XAUTOCLAIM would do both, but gives
//     up after scanning ten pending entries per message asked for, so it
//     can miss an old message behind many held ones.) Otherwise it reads a
//     new message with XREADGROUP, blocking on one of the node's blocking
//     connections for slices of ClaimAfter/4 (between 20 ms and 1 s), so
//     that it notices claimable messages, ctx and Close; a cancelled ctx
//     ends the wait at once (CLIENT UNBLOCK).
//   - Ack is a script of XACK and XDEL, so the stream holds exactly the
//     unacknowledged messages: Len is XLEN, Oldest the stream's first id.
//   - Release is XCLAIM with an idle time of two years (JUSTID, no
//     delivery counted), so the next Next of any instance claims it.
//
// Close removes the instance's consumer from the group of every queue it
// read, if it holds no message there; messages it holds are claimed by
// others after ClaimAfter. Enqueue and Ack wait for replicas like Write;
// claims and releases do not, so a failover may undo one, which at most
// delays a message or hands it out once more — delivery is at least once
// in any case.
//
// # Durability
//
// What a Write that returned nil survives:
//
//   - The application process crashing: everything. The store buffers
//     nothing; Redis had applied the write before answering.
//   - A Redis process crashing or restarting, without a failover (a
//     standalone server, or a cluster node back before its replica takes
//     over): what Redis's persistence kept. With no persistence, nothing;
//     with RDB snapshots, what the last snapshot holds; with AOF
//     (appendonly yes), what was written to the file: with appendfsync
//     everysec (the default, and the usual choice) Redis fsyncs once a
//     second, so a crash can lose about the last second of writes (Redis's
//     own figure; more if the disk stalls fsync), and with appendfsync
//     always it fsyncs before answering, so nothing is lost, at a large
//     cost in write throughput. Run replicas with AOF too.
//   - A failover to a replica (Redis Cluster; the store does not follow
//     Sentinel), without WaitReplicas: replication is
//     asynchronous, and a write the primary acknowledged but had not yet
//     sent to the replica that is promoted is lost. TestFailover measured
//     this with SIGKILL of a primary under 8 writers: with the replica in
//     sync (on loopback it trails by microseconds), none of the 1,200–2,800
//     acknowledged writes to the failed shard was lost, in each of 9 runs
//     (and 4 more with 64 writers);
//     with the replica's link down when the primary died, every write
//     acknowledged since was (123, 133, 141, 189 and 223 in five runs).
//   - A failover with [Options.WaitReplicas] = n: Write returns nil only
//     after n replicas of the key's primary have the write (WAIT), else it
//     returns an error wrapping [ErrNotReplicated]: the write is on the
//     primary, and may or may not survive. Redis Cluster promotes the
//     replica with the most replicated data first, so with one replica per
//     shard and WaitReplicas 1 the promoted replica holds every write that
//     returned nil; TestFailover lost none in 9 runs with the replica in
//     sync and 5 with its link down (those writes failed with
//     ErrNotReplicated instead).
//
// What WaitReplicas does not give — as Redis's WAIT documentation says,
// WAIT does not make Redis a strongly consistent store:
//
//   - A replica acknowledges a write it holds in memory, not on disk
//     (Redis 7.2's WAITAOF would say that; this store does not use it). A
//     replica that restarts without persistence before it is promoted
//     loses it.
//   - With more replicas per shard than WaitReplicas, the replica promoted
//     may not be one that acknowledged (Redis prefers the most up-to-date
//     replica, but an election can go to another, for instance one on the
//     majority side of a partition). Set WaitReplicas to the number of
//     replicas for the strongest guarantee, at the cost of failing writes
//     while any replica is down.
//   - A forced failover (CLUSTER FAILOVER FORCE or TAKEOVER, or Sentinel
//     promoting a lagging replica) can promote a replica without the
//     write.
//   - A Write that returned an error, or ctx's error after it was sent,
//     may or may not have been applied; read the key to tell.
//
// WaitReplicas costs the replica's acknowledgement and a round trip (on
// the test machine a Write took a median of 0.22 ms with it and 0.08 ms
// without, BenchmarkStore), and fails writes to a shard that has fewer
// live replicas than WaitReplicas, after WaitTimeout.
//
// # Failures
//
// During a failover, Writes to the failed shard return errors (connection
// refused or reset, CLUSTERDOWN) at once, never silently; they succeed
// again once the replica has taken over and the client has learnt the new
// topology, which rueidis refreshes on those errors (in TestFailover the
// replica took over 2.1–2.9 s after the kill, with cluster-node-timeout
// 1000 ms). Gets retry on their own (rueidis retries read-only
// commands until ctx ends), so a Get with a deadline longer than the
// failover rides it out; give ctx a deadline.
//
// # What is not guaranteed
//
//   - Atomicity across keys: every operation is on one key (package
//     storage says how the engine builds multi-key steps on that).
//   - A snapshot from Scan.
//   - That another instance's write is visible at once: only eventually,
//     by invalidation (see # Caching); conditional writes catch the
//     difference.
//   - Versions that order writes, or compare across keys: only equality
//     of one key's versions means something. Never-repeating versions for
//     a key that is deleted and recreated rest on the clocks (see # Writes
//     and versions).
//   - Exactly-once delivery from a queue: at least once.
//   - Backup and Restore: they return an error wrapping
//     storage.ErrUnsupported. Back up Redis itself (RDB snapshots, AOF,
//     replicas); for a logical dump of the profiles use engine.Export.
//
// [rueidis]: https://github.com/redis/rueidis
package redis
