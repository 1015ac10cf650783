// Package storagetest is the conformance suite for implementations of
// [storage.Store] and [storage.Queue]: run it from a test of the
// implementation with
//
//	storagetest.Run(t, storagetest.Config{
//		Open: func(t *testing.T) storage.Store { ... },
//	})
//
// where Open opens a new, empty store and registers its Close with
// t.Cleanup. The suite checks the contract documented on storage.Store:
// ErrNotFound, copy-out Get, versions that change on every write and never
// come back, conditional writes that write nothing when they fail, no lost
// update among racing conditional writers (on one store, and on two
// instances sharing the data when the store can be shared), Delete, prefix
// Scan, TTL expiry, invalid ops, Backup/Restore (or a clear refusal),
// cancellation, Close, and the queue's delivery, holding, release,
// redelivery after the claim timeout, bound and durability. It takes a few
// seconds, mostly waiting for TTLs and claim timeouts.
package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// Config describes the implementation under test.
type Config struct {
	// Open opens a new, empty store and registers its Close with
	// t.Cleanup (Close is then called twice for the subtests that close
	// it themselves, which the contract allows). Required.
	Open func(t *testing.T) storage.Store
	// Share, when set, opens a second instance over the same data as s
	// (another client of the same Redis, as another process would), so
	// the suite can race writers on two instances. Stores that one
	// process opens at a time (Badger) leave it nil; the race then runs
	// on one instance. It registers the instance's Close with t.Cleanup.
	Share func(t *testing.T, s storage.Store) storage.Store
	// Reopen, when set, closes s and opens it again over the same data,
	// for the durability checks (nil for in-memory stores).
	Reopen func(t *testing.T, s storage.Store) storage.Store
	// Ordered says that Scan visits keys in key order.
	Ordered bool
	// NoBackup says that Backup and Restore are refused (with an error
	// wrapping storage.ErrUnsupported) instead of implemented.
	NoBackup bool
	// ClaimAfter is the store's queue claim timeout as Open configures
	// it: the suite waits for it to see an unacknowledged message handed
	// out again. Keep it short (a few hundred milliseconds). Zero skips
	// that check.
	ClaimAfter time.Duration
}

// Run runs the conformance suite against the stores c.Open returns.
func Run(t *testing.T, c Config) {
	t.Helper()
	if c.Open == nil {
		t.Fatal("storagetest: Config.Open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, c Config)
	}{
		{"GetMissing", testGetMissing},
		{"SetGet", testSetGet},
		{"GetCopiesOut", testGetCopiesOut},
		{"Versions", testVersions},
		{"Conditional", testConditional},
		{"InvalidOps", testInvalidOps},
		{"Delete", testDelete},
		{"ScanPrefix", testScanPrefix},
		{"ScanStop", testScanStop},
		{"TTL", testTTL},
		{"ConcurrentWrites", testConcurrentWrites},
		{"RacingConditionalWrites", testRacingConditional},
		{"RacingCreate", testRacingCreate},
		{"Latest", testLatest},
		{"BackupRestore", testBackupRestore},
		{"CancelledContext", testCancelled},
		{"CloseTwice", testCloseTwice},
		{"ClosedErrors", testClosedErrors},
		{"Durable", testDurable},
		{"QueueOrder", testQueueOrder},
		{"QueueBound", testQueueBound},
		{"QueueNextWaits", testQueueNextWaits},
		{"QueueHeldAndReleased", testQueueHeld},
		{"QueueClaimAfter", testQueueClaimAfter},
		{"QueueConsumers", testQueueConsumers},
		{"QueueDurable", testQueueDurable},
		{"QueueNames", testQueueNames},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, c)
		})
	}
}

var ctx = context.Background()
