// Package storage defines the store contract tailor keeps its profiles in
// — keys holding versioned values, written one key at a time, optionally on
// condition of the version — and a durable queue. Two implementations sit
// beside it: [github.com/tailorhq/tailor/storage/badger], embedded (the
// default), and [github.com/tailorhq/tailor/storage/redis], shared by
// several processes over Redis or Redis Cluster. Every implementation
// passes the conformance suite in
// [github.com/tailorhq/tailor/storage/storagetest].
//
// # The contract
//
// [Store] is deliberately small: Get returns a value with its [Version];
// Write applies one [Op] (set or delete) atomically, unconditionally or on
// condition that the key is at a given version or absent, and returns the
// new version or [ErrConflict]; Scan visits the keys under a prefix; Queue,
// Backup, Restore, Close. A version is never reused for a key, even after
// a delete, so a conditional write detects any write made since the read
// it is based on — by this process or another sharing the store.
//
// What the contract does not give: a transaction over several keys (Redis
// Cluster cannot write keys of different slots atomically), an order or a
// snapshot for Scan (unless the store says so), or any ordering of versions
// beyond equality. The engine builds its multi-key operations — binding a
// user id, merging profiles, deleting a profile with its aliases — from
// single-key conditional steps that are safe to repeat; package engine
// documents that protocol.
//
// # Queues
//
// [Queue] is a durable FIFO with at-least-once delivery to consumers in
// any number of processes: a message handed out is held until it is
// acknowledged or released, or until its consumer has been silent for the
// store's claim timeout. The engine's import queue runs on it and makes
// repeated delivery harmless by recording, in each profile under the same
// conditional write, which batches it applied.
//
// # Ownership of byte slices
//
// Stores never retain slices passed in after the call returns. Get appends
// into the caller's buffer; slices handed to a Scan callback are valid only
// during that call.
package storage
