package engine

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
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

// Keys of the import queue. A batch waits under qBatchPrefix + its sequence
// (8 bytes, big-endian, so key order is queue order). While a batch is
// partly applied, qProgressPrefix + its sequence holds how many of its
// profile groups are done.
var (
	qBatchPrefix    = []byte("q/b/")
	qProgressPrefix = []byte("q/p/")
)

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
}

const importRecordVersion = 1

// importQueue is the engine's durable queue of Import batches and the state
// of the one worker goroutine that applies them.
type importQueue struct {
	e    *Engine
	max  int
	wake chan struct{}

	mu     sync.Mutex
	next   uint64             // sequence of the next batch
	queued int                // batches stored and not yet fully applied
	cancel context.CancelFunc // stops the running worker
	done   chan struct{}      // closed when that worker has returned

	// crashAfter, when set (tests only), is called after each group is
	// applied; returning true makes the worker stop at once, as a crash
	// would, leaving the store as it is.
	crashAfter atomic.Pointer[func(seq uint64, group int) bool]
}

// startImportQueue creates the queue and starts its worker. Open calls it.
func (e *Engine) startImportQueue() error {
	q := &importQueue{e: e, max: e.opts.ImportQueueSize, wake: make(chan struct{}, 1)}
	if q.max <= 0 {
		q.max = DefaultImportQueueSize
	}
	e.queue = q
	return q.start()
}

// stopImportQueue stops the worker and waits for it. A batch being applied
// is left where it stopped and resumes when the worker starts again. Close
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

// start reads the queue's state from the store (counting the batches left
// by an earlier run or restored from a backup) and starts a worker, which
// resumes them. The caller makes sure no worker runs and nothing writes.
func (q *importQueue) start() error {
	queued, next := 0, uint64(0)
	err := q.e.store.Scan(context.Background(), qBatchPrefix, func(key, _ []byte) error {
		seq, ok := batchSeq(key)
		if !ok {
			return fmt.Errorf("tailor: import queue: bad key %q", key)
		}
		queued++
		next = max(next, seq+1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("tailor: import queue: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	q.mu.Lock()
	q.queued, q.next = queued, max(q.next, next)
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
// restarts: the group's profile write and the queue's progress record (or,
// after the last group, the removal of the batch) are one atomic store
// write. A group the engine rejects as invalid when applied (possible only
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
		Untrusted: req.Untrusted, Events: make([]Event, len(req.Events))}
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

	q := e.queue
	q.mu.Lock()
	if q.queued >= q.max {
		q.mu.Unlock()
		return ErrQueueFull
	}
	seq := q.next
	q.next++
	q.queued++
	q.mu.Unlock()

	if err := e.store.Apply(ctx, []storage.Op{{Key: batchKey(seq), Value: val}}); err != nil {
		q.mu.Lock()
		q.queued--
		q.mu.Unlock()
		return fmt.Errorf("tailor: import: %w", err)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// ImportQueueLen returns how many imported batches are waiting to be fully
// applied. It is safe for concurrent use.
func (e *Engine) ImportQueueLen() int {
	if e.queue == nil {
		return 0
	}
	e.queue.mu.Lock()
	defer e.queue.mu.Unlock()
	return e.queue.queued
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

func batchKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), qBatchPrefix...), seq)
}

func progressKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), qProgressPrefix...), seq)
}

func batchSeq(key []byte) (uint64, bool) {
	if len(key) != len(qBatchPrefix)+8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(qBatchPrefix):]), true
}

// errCrash stops the worker in tests, as a crash would.
var errCrash = errors.New("tailor: import queue: simulated crash")

func (q *importQueue) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	backoff := 100 * time.Millisecond
	for {
		err := q.drain(ctx)
		if ctx.Err() != nil || errors.Is(err, errCrash) || errors.Is(err, ErrClosed) {
			return
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			select {
			case <-ctx.Done():
				return
			case <-q.wake:
			}
			continue
		}
		q.e.log.Error("tailor: import queue: apply failed; retrying", "err", err, "retryIn", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// drain applies queued batches, oldest first, until none is left.
func (q *importQueue) drain(ctx context.Context) error {
	for {
		seq, rec, ok, err := q.first(ctx)
		if err != nil || !ok {
			return err
		}
		if err := q.apply(ctx, seq, rec); err != nil {
			return err
		}
		q.mu.Lock()
		q.queued--
		q.mu.Unlock()
	}
}

// first returns the oldest queued batch. A batch stored by a concurrent
// Import with a smaller sequence than one already applied is still found:
// the scan always starts at the front.
func (q *importQueue) first(ctx context.Context) (seq uint64, rec importRecord, ok bool, err error) {
	stop := errors.New("stop")
	err = q.guarded(func() error {
		return q.e.store.Scan(ctx, qBatchPrefix, func(key, value []byte) error {
			var good bool
			if seq, good = batchSeq(key); !good {
				return fmt.Errorf("tailor: import queue: bad key %q", key)
			}
			if err := json.Unmarshal(value, &rec); err != nil {
				return fmt.Errorf("tailor: import queue: batch %d: %w", seq, err)
			}
			if rec.V != importRecordVersion {
				return fmt.Errorf("tailor: import queue: batch %d: unknown version %d", seq, rec.V)
			}
			ok = true
			return stop
		})
	})
	if errors.Is(err, stop) {
		err = nil
	}
	return seq, rec, ok, err
}

// apply applies the groups of batch seq not applied yet. Each group's
// profile write carries the queue bookkeeping in the same atomic write.
func (q *importQueue) apply(ctx context.Context, seq uint64, rec importRecord) error {
	done := 0
	var v []byte
	err := q.guarded(func() (err error) {
		v, err = q.e.store.Get(ctx, progressKey(seq), make([]byte, 0, binary.MaxVarintLen64))
		return err
	})
	switch {
	case err == nil:
		n, k := binary.Uvarint(v)
		if k <= 0 {
			return fmt.Errorf("tailor: import queue: batch %d: bad progress record", seq)
		}
		done = int(n)
	case !errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("tailor: import queue: batch %d: %w", seq, err)
	}
	req := Request{Options: RequestOptions{Features: rec.Features}, Locale: rec.Locale, Untrusted: rec.Untrusted}
	if rec.IP != "" {
		req.IP, _ = netip.ParseAddr(rec.IP)
	}
	groups := groupByAnonymousID(rec.Events)
	if done >= len(groups) {
		// Only a damaged store gets here; finish the batch rather than
		// finding it again forever.
		return q.guarded(func() error {
			return q.e.store.Apply(ctx, []storage.Op{{Key: batchKey(seq), Delete: true}, {Key: progressKey(seq), Delete: true}})
		})
	}
	for i := done; i < len(groups); i++ {
		var ops []storage.Op
		if i == len(groups)-1 {
			ops = []storage.Op{{Key: batchKey(seq), Delete: true}, {Key: progressKey(seq), Delete: true}}
		} else {
			ops = []storage.Op{{Key: progressKey(seq), Value: binary.AppendUvarint(nil, uint64(i+1))}}
		}
		r := req
		r.Events = groups[i].events
		if err := q.applyGroup(ctx, groups[i].id, r, ops); err != nil {
			var in *InputError
			if !errors.As(err, &in) && !errors.Is(err, ErrIdentityUnverified) {
				return fmt.Errorf("tailor: import queue: batch %d group %d: %w", seq, i, err)
			}
			q.e.log.Error("tailor: import queue: dropping invalid group", "batch", seq, "group", i,
				"anonymousId", groups[i].id, "err", err)
			if err := q.guarded(func() error { return q.e.store.Apply(ctx, ops) }); err != nil {
				return fmt.Errorf("tailor: import queue: batch %d group %d: %w", seq, i, err)
			}
		}
		if f := q.crashAfter.Load(); f != nil && (*f)(seq, i) {
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

// applyGroup is one Identify whose write also applies ops, retrying while
// the profile is overloaded.
func (q *importQueue) applyGroup(ctx context.Context, id string, req Request, ops []storage.Op) error {
	wait := 10 * time.Millisecond
	for {
		req.queueOps = ops
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
