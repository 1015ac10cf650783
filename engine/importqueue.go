package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// Batch limits of IdentifyBatch and Import, on top of Identify's own
// (at most 200 events and 50 identify events per request).
const (
	// MaxBatchProfiles is the most distinct anonymousIds one batch may hold.
	MaxBatchProfiles = 50
	// DefaultImportQueueSize is the default of Options.ImportQueueSize.
	DefaultImportQueueSize = 1024
)

// ErrQueueFull is returned by Import when Options.ImportQueueSize batches
// are already waiting. Nothing was queued; retry later.
var ErrQueueFull = errors.New("tailor: import queue full")

// importQueueName is the name of the store queue (storage.Queue) that
// holds Import batches.
const importQueueName = "import"

// Keys of the import queue of stores written before queues were part of
// the store contract: a batch waited under legacyBatchPrefix + its
// sequence (8 bytes, big-endian) and, while partly applied, under
// legacyProgressPrefix + its sequence, the number of its groups done. The
// worker applies such batches first, then removes them.
var (
	legacyBatchPrefix    = []byte("q/b/")
	legacyProgressPrefix = []byte("q/p/")
)

// legacyBatch is set in the batch ids of legacy batches, so that their
// marks never meet the ids of the store's queue.
const legacyBatch = 1 << 63

// importMark names one group of one batch: the batch's queue id and the
// group's index. A profile keeps the marks of the groups applied to it
// while their batch may still be delivered again.
type importMark struct {
	Batch uint64
	Group uint32
}

// pruneImports drops the marks no longer needed once oldest is the oldest
// batch that can still be delivered: those of older batches. Legacy
// batches are applied before any other, so while one is applied the marks
// of queue batches stay, and once a queue batch is applied no legacy mark
// is needed.
func pruneImports(marks []importMark, oldest uint64) []importMark {
	legacy := oldest&legacyBatch != 0
	return slices.DeleteFunc(marks, func(m importMark) bool {
		if (m.Batch&legacyBatch != 0) != legacy {
			return !legacy
		}
		return m.Batch < oldest
	})
}

// importRecord is a queued batch as stored (JSON, versioned).
type importRecord struct {
	V        int      `json:"v"`
	Events   []Event  `json:"events"`
	Features []string `json:"features,omitempty"`
	IP       string   `json:"ip,omitempty"`
	Locale   string   `json:"locale,omitempty"`
	// Untrusted keeps Request.Untrusted, so identity verification applies
	// to imported identify events as to synchronous ones.
	Untrusted bool `json:"untrusted,omitempty"`
	// At is when Import queued the batch (Unix ms), for the import lag
	// and delay metrics; 0 in batches queued before it was recorded.
	At int64 `json:"at,omitempty"`
}

const importRecordVersion = 1

// importQueue is the engine's handle on the store's import queue and the
// state of the one worker goroutine that applies it.
type importQueue struct {
	e   *Engine
	q   storage.Queue
	max int

	legacy atomic.Int64 // legacy batches not yet applied
	// taken is when the batch the worker took last was queued (Unix ms),
	// until it is acknowledged: 0 while the worker waits for one.
	taken atomic.Int64

	mu     sync.Mutex
	cancel context.CancelFunc // stops the running worker
	done   chan struct{}      // closed when that worker has returned

	// crashAfter, when set (tests only), is called after each group is
	// applied; returning true makes the worker stop at once, as a crash
	// would, leaving the store as it is.
	crashAfter atomic.Pointer[func(batch uint64, group int) bool]
}

// startImportQueue opens the store's import queue and starts its worker.
// Open calls it.
func (e *Engine) startImportQueue() error {
	sq, err := e.store.Queue(importQueueName)
	if err != nil {
		return fmt.Errorf("tailor: import queue: %w", err)
	}
	q := &importQueue{e: e, q: sq, max: e.opts.ImportQueueSize}
	if q.max <= 0 {
		q.max = DefaultImportQueueSize
	}
	e.queue = q
	return q.start()
}

// stopImportQueue stops the worker and waits for it. A batch being applied
// is left where it stopped and resumes when a worker takes it again. Close
// calls it first, Restore too (before taking the engine's lock, which the
// worker may be waiting for).
func (e *Engine) stopImportQueue() {
	if e.queue == nil {
		return
	}
	e.queue.mu.Lock()
	cancel, done := e.queue.cancel, e.queue.done
	e.queue.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// start counts the legacy batches (left by an earlier version, or restored
// from its backup) and starts a worker, which applies them, then the
// queue. The caller makes sure no worker runs.
func (q *importQueue) start() error {
	n := 0
	err := q.e.store.Scan(context.Background(), legacyBatchPrefix, func(key, _ []byte, _ storage.Version) error {
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("tailor: import queue: %w", err)
	}
	q.legacy.Store(int64(n))
	q.taken.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	q.mu.Lock()
	q.cancel, q.done = cancel, make(chan struct{})
	done := q.done
	q.mu.Unlock()
	go q.run(ctx, done)
	return nil
}

// Import durably queues a batch of events and returns once it is stored
// (fsynced when Options.SyncWrites is set); a background worker applies it
// later. req is validated first, with the limits of IdentifyBatch (every
// event needs an anonymousId; at most MaxBatchProfiles distinct ones), and
// nothing is queued when it is invalid. Events without any timestamp get
// the time of the Import call, so they keep it however late they apply.
// req.Options, IP and Locale are kept with the batch; req.Preflight is
// rejected.
//
// The worker applies batches in queue order: each batch is grouped by
// anonymousId in order of first appearance and each group is one Identify
// on that id. Every group is applied exactly once, also across crashes and
// restarts and with workers in several processes sharing the store: the
// group's profile write records the group (batch id and index) in the
// profile under the same conditional write, and a group whose profile
// holds its mark is not applied again. A group the engine rejects as invalid when applied (possible only
// if validation got stricter between the Import and the apply), or whose
// identify event fails identity verification (ErrIdentityUnverified, for
// requests marked Untrusted), is logged and skipped; a transient failure
// (overload, store error) is retried with backoff and holds up the
// batches behind it. Batches queued by concurrent
// Import calls apply in the order of their sequence numbers, which is the
// order the calls reserved them.
//
// A full queue (Options.ImportQueueSize batches waiting) gives ErrQueueFull;
// nothing is dropped. Import is safe for concurrent use; it does not retain
// req's slices.
func (e *Engine) Import(ctx context.Context, req Request) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	if req.Preflight {
		return invalid("type", "preflight is not supported for imports")
	}
	now := e.now()
	if err := validateBatch(&req, now); err != nil {
		return err
	}
	rec := importRecord{V: importRecordVersion, Features: req.Options.Features, Locale: req.Locale,
		Untrusted: req.Untrusted, Events: make([]Event, len(req.Events)), At: now.UnixMilli()}
	if req.IP.IsValid() {
		rec.IP = req.IP.String()
	}
	stamp := now.UTC().Format(time.RFC3339Nano)
	for i, ev := range req.Events {
		if ev.Timestamp == "" && ev.OriginalTimestamp == "" && ev.SentAt == "" {
			ev.Timestamp = stamp
		}
		rec.Events[i] = ev
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("tailor: import: encode batch: %w", err)
	}
	if len(val) > MaxRecordBytes {
		return invalid("events", "the batch would be %d bytes queued, at most %d allowed", len(val), MaxRecordBytes)
	}

	if _, err := e.queue.q.Enqueue(ctx, val, e.queue.max); err != nil {
		if errors.Is(err, storage.ErrQueueFull) {
			return ErrQueueFull
		}
		return fmt.Errorf("tailor: import: %w", err)
	}
	return nil
}

// ImportQueueLen returns how many imported batches are waiting to be fully
// applied (by this or, with a shared store, any process), or -1 when the
// store cannot tell. It is safe for concurrent use.
func (e *Engine) ImportQueueLen() int {
	if e.queue == nil {
		return 0
	}
	n, err := e.queue.q.Len(context.Background())
	if err != nil {
		return -1
	}
	return n + int(e.queue.legacy.Load())
}

// IdentifyBatch applies a batch of events of possibly many profiles
// synchronously: events are grouped by anonymousId in order of first
// appearance and each group is one Identify on that id (created when
// unknown), with req's options, IP, locale and preflight. It returns one
// Response per group, in that order.
//
// The whole batch is validated before anything is written: every event
// needs an anonymousId, at most MaxBatchProfiles distinct ones, and
// Identify's limits apply to the batch as a whole. Overload (Options.
// MaxWaiting, ProfileRate) is decided for all groups before the first is
// applied, and so is identity verification for an untrusted batch (every
// identify event with a userId must carry its valid userHash when
// Options.IdentitySecret is set): either refuses the whole batch. A
// failure after that (store error, cancellation) stops the batch: groups
// applied before it stay applied. IdentifyBatch is safe for concurrent use.
func (e *Engine) IdentifyBatch(ctx context.Context, req Request) ([]*Response, error) {
	if err := validateBatch(&req, e.now()); err != nil {
		return nil, err
	}
	// Identity and overload are decided for the whole batch up front, so
	// neither can stop it after some groups were written.
	if err := e.checkBatchProofs(&req); err != nil {
		return nil, err
	}
	groups := groupByAnonymousID(req.Events)
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.id
	}
	if err := e.admission.admitAll(ids, e.now()); err != nil {
		return nil, err
	}
	defer func() {
		for _, id := range ids {
			e.admission.release(id)
		}
	}()
	out := make([]*Response, 0, len(groups))
	for _, g := range groups {
		r := req
		r.Events = g.events
		r.admitted = true
		resp, err := e.Identify(ctx, g.id, r)
		if err != nil {
			return nil, fmt.Errorf("tailor: batch: profile %q: %w", g.id, err)
		}
		out = append(out, resp)
	}
	return out, nil
}

// validateBatch checks the batch-only rules, then the request as Identify
// would (validate), so a batch is refused whole before anything is written.
func validateBatch(req *Request, now time.Time) error {
	seen := make(map[string]struct{})
	for i := range req.Events {
		id := req.Events[i].AnonymousID
		if id == "" {
			return invalid(fmt.Sprintf("events[%d].anonymousId", i), "required in a batch")
		}
		if _, ok := seen[id]; !ok {
			if len(seen) == MaxBatchProfiles {
				return invalid(fmt.Sprintf("events[%d].anonymousId", i), "more than %d distinct profiles in one batch", MaxBatchProfiles)
			}
			seen[id] = struct{}{}
		}
	}
	_, err := validate(req, now)
	return err
}

type eventGroup struct {
	id     string
	events []Event
}

// groupByAnonymousID splits events by anonymousId, groups in order of first
// appearance, events in their original order.
func groupByAnonymousID(events []Event) []eventGroup {
	idx := make(map[string]int)
	var groups []eventGroup
	for _, ev := range events {
		i, ok := idx[ev.AnonymousID]
		if !ok {
			i = len(groups)
			idx[ev.AnonymousID] = i
			groups = append(groups, eventGroup{id: ev.AnonymousID})
		}
		groups[i].events = append(groups[i].events, ev)
	}
	return groups
}

func legacyKey(prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefix...), seq)
}

// errCrash stops the worker in tests, as a crash would.
var errCrash = errors.New("tailor: import queue: simulated crash")

// run applies the legacy batches, then takes batches from the queue until
// ctx is done. A batch that fails is given back and retried with backoff.
func (q *importQueue) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	wait := func(err error) bool {
		q.e.log.Error("tailor: import queue: apply failed; retrying", "err", err, "retryIn", backoff)
		t := time.NewTimer(backoff)
		defer t.Stop()
		backoff = min(backoff*2, 10*time.Second)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	stopped := func(err error) bool {
		return ctx.Err() != nil || errors.Is(err, errCrash) || errors.Is(err, ErrClosed) || errors.Is(err, storage.ErrClosed)
	}
	for q.legacy.Load() > 0 {
		err := q.drainLegacy(ctx)
		if err == nil {
			break
		}
		if stopped(err) || !wait(err) {
			return
		}
	}
	for {
		m, err := q.q.Next(ctx)
		if err != nil {
			if stopped(err) || !wait(err) {
				return
			}
			continue
		}
		err = q.applyMessage(ctx, m)
		if err == nil {
			backoff = 100 * time.Millisecond
			continue
		}
		if stopped(err) {
			return
		}
		if rerr := q.guarded(func() error { return q.q.Release(ctx, m.ID) }); rerr != nil && !stopped(rerr) {
			q.e.log.Error("tailor: import queue: release failed", "batch", m.ID, "err", rerr)
		}
		if !wait(err) {
			return
		}
	}
}

// applyMessage applies one queued batch and acknowledges it.
func (q *importQueue) applyMessage(ctx context.Context, m storage.Message) error {
	rec, err := decodeImport(m.Value)
	if err != nil {
		// Only a damaged store gets here; drop the batch rather than
		// meeting it again forever.
		q.e.log.Error("tailor: import queue: dropping an undecodable batch", "batch", m.ID, "err", err)
		return q.guarded(func() error { return q.q.Ack(ctx, m.ID) })
	}
	var oldest uint64
	if err := q.guarded(func() (err error) { oldest, err = q.q.Oldest(ctx); return err }); err != nil {
		return fmt.Errorf("tailor: import queue: %w", err)
	}
	q.taken.Store(rec.At)
	if err := q.apply(ctx, m.ID, oldest, rec, 0); err != nil {
		return err
	}
	if err := q.guarded(func() error { return q.q.Ack(ctx, m.ID) }); err != nil {
		return err
	}
	q.taken.Store(0)
	q.e.tel.imported(ctx, q.e.now(), rec.At)
	return nil
}

// lag is how long the batch the worker is applying (or failed to apply
// and will retry) has been queued at now; 0 while the worker waits for a
// batch, or applies one queued before Import recorded the time.
func (q *importQueue) lag(now time.Time) time.Duration {
	if q == nil {
		return 0
	}
	at := q.taken.Load()
	if at == 0 {
		return 0
	}
	return max(0, now.Sub(time.UnixMilli(at)))
}

// drainLegacy applies the legacy batches, oldest first, skipping the
// groups their progress record counts as done, and removes each: the
// batch, then its progress record (so that a crash in between replays
// nothing the progress record covered).
func (q *importQueue) drainLegacy(ctx context.Context) error {
	for {
		var seq uint64
		var val []byte
		found := false
		stop := errors.New("stop")
		err := q.guarded(func() error {
			return q.e.store.Scan(ctx, legacyBatchPrefix, func(key, value []byte, _ storage.Version) error {
				if len(key) != len(legacyBatchPrefix)+8 {
					return fmt.Errorf("tailor: import queue: bad key %q", key)
				}
				seq, val, found = binary.BigEndian.Uint64(key[len(legacyBatchPrefix):]), bytes.Clone(value), true
				return stop
			})
		})
		if err != nil && !errors.Is(err, stop) {
			return err
		}
		if !found {
			q.legacy.Store(0)
			return nil
		}
		done := 0
		var pv []byte
		err = q.guarded(func() (err error) {
			pv, _, err = q.e.store.Get(ctx, legacyKey(legacyProgressPrefix, seq), nil)
			return err
		})
		switch {
		case err == nil:
			n, k := binary.Uvarint(pv)
			if k <= 0 {
				return fmt.Errorf("tailor: import queue: batch %d: bad progress record", seq)
			}
			done = int(n)
		case !errors.Is(err, storage.ErrNotFound):
			return fmt.Errorf("tailor: import queue: batch %d: %w", seq, err)
		}
		if rec, err := decodeImport(val); err != nil {
			q.e.log.Error("tailor: import queue: dropping an undecodable batch", "batch", seq, "err", err)
		} else if err := q.apply(ctx, legacyBatch|seq, legacyBatch|seq, rec, done); err != nil {
			return err
		}
		for _, prefix := range [][]byte{legacyBatchPrefix, legacyProgressPrefix} {
			err := q.guarded(func() error {
				_, err := q.e.store.Write(ctx, storage.Op{Key: legacyKey(prefix, seq), Delete: true})
				return err
			})
			if err != nil {
				return fmt.Errorf("tailor: import queue: batch %d: %w", seq, err)
			}
		}
		q.legacy.Add(-1)
	}
}

func decodeImport(b []byte) (importRecord, error) {
	var rec importRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, err
	}
	if rec.V != importRecordVersion {
		return rec, fmt.Errorf("unknown version %d", rec.V)
	}
	return rec, nil
}

// apply applies the groups of batch id from group skip on, each marked so
// that a profile that already holds a group's mark is not written again.
// oldest is the oldest batch that can still be delivered.
func (q *importQueue) apply(ctx context.Context, id, oldest uint64, rec importRecord, skip int) error {
	req := Request{Options: RequestOptions{Features: rec.Features}, Locale: rec.Locale, Untrusted: rec.Untrusted}
	if rec.IP != "" {
		req.IP, _ = netip.ParseAddr(rec.IP)
	}
	req.importOldest = oldest
	for i, g := range groupByAnonymousID(rec.Events) {
		if i < skip {
			continue
		}
		r := req
		r.Events = g.events
		r.importMark = &importMark{Batch: id, Group: uint32(i)}
		if err := q.applyGroup(ctx, g.id, r); err != nil {
			var in *InputError
			if !errors.As(err, &in) && !errors.Is(err, ErrIdentityUnverified) {
				return fmt.Errorf("tailor: import queue: batch %d group %d: %w", id, i, err)
			}
			q.e.log.Error("tailor: import queue: dropping invalid group", "batch", id, "group", i,
				"anonymousId", g.id, "err", err)
		}
		if f := q.crashAfter.Load(); f != nil && (*f)(id, i) {
			return errCrash
		}
	}
	return nil
}

// guarded runs fn, which uses the store directly, as an engine call: never
// after Close nor during Restore (ErrClosed after Close).
func (q *importQueue) guarded(fn func() error) error {
	if err := q.e.enter(); err != nil {
		return err
	}
	defer q.e.leave()
	return fn()
}

// applyGroup is one Identify, retrying while the profile is overloaded.
func (q *importQueue) applyGroup(ctx context.Context, id string, req Request) error {
	wait := 10 * time.Millisecond
	for {
		_, err := q.e.Identify(ctx, id, req)
		if !errors.Is(err, ErrOverload) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, time.Second)
	}
}
