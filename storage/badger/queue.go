package badger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tailorhq/tailor/storage"
)

// queuePrefix starts the keys of the store's queues: message id of queue
// name is at queuePrefix + name + "/" + id (8 bytes, big-endian, so that
// key order is queue order). Write refuses keys with this prefix and Scan
// skips them; Backup and Restore carry them like any other key.
const queuePrefix = "~q/"

// DefaultClaimAfter is how long a message handed out by Next may stay
// unacknowledged before Next hands it out again (Options.ClaimAfter).
const DefaultClaimAfter = 30 * time.Second

// queue is a storage.Queue kept in the store's own keys. Only one process
// opens a Badger directory, so the queue's index lives in memory: the ids
// of its messages, and which are held by a consumer until when. It is
// rebuilt from the keys when the queue is first used and after Restore.
type queue struct {
	s      *Store
	prefix string

	mu      sync.Mutex
	loaded  bool
	next    uint64               // id of the next message
	ids     []uint64             // stored messages, ascending
	pending []uint64             // ids reserved by Enqueue calls still writing
	held    map[uint64]time.Time // handed-out id → when it may be handed out again
	wake    chan struct{}        // closed and replaced when a message becomes available
}

var _ storage.Queue = (*queue)(nil)

// Queue returns the queue called name. Every call with the same name
// returns the same queue.
func (s *Store) Queue(name string) (storage.Queue, error) {
	if err := storage.CheckQueueName(name); err != nil {
		return nil, err
	}
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		q = &queue{s: s, prefix: queuePrefix + name + "/", held: map[uint64]time.Time{}, wake: make(chan struct{})}
		s.queues[name] = q
	}
	return q, nil
}

func (q *queue) key(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(q.prefix), id)
}

// load reads the queue's ids from the store unless they are loaded. The
// caller holds q.mu and has entered the store.
func (q *queue) load(ctx context.Context) error {
	if q.loaded {
		return nil
	}
	var ids []uint64
	err := q.s.scan(ctx, []byte(q.prefix), false, func(key, _ []byte, _ storage.Version) error {
		if len(key) != len(q.prefix)+8 {
			return fmt.Errorf("badger: queue %s: bad key %q", q.prefix, key)
		}
		ids = append(ids, binary.BigEndian.Uint64(key[len(q.prefix):]))
		return nil
	})
	if err != nil {
		return err
	}
	q.ids = ids
	if len(ids) > 0 {
		q.next = max(q.next, ids[len(ids)-1]+1)
	}
	q.next = max(q.next, 1) // ids start at 1: Oldest reports 0 for empty
	q.loaded = true
	return nil
}

// reset forgets the index, to be read again from the store (Restore).
func (q *queue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.loaded, q.ids, q.pending = false, nil, nil
	clear(q.held)
	q.signal()
}

// signal wakes every Next waiting. The caller holds q.mu.
func (q *queue) signal() {
	close(q.wake)
	q.wake = make(chan struct{})
}

// Enqueue stores value as the next message and returns its id.
func (q *queue) Enqueue(ctx context.Context, value []byte, max int) (uint64, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	q.mu.Lock()
	if err := q.load(ctx); err != nil {
		q.mu.Unlock()
		return 0, err
	}
	if max > 0 && len(q.ids)+len(q.pending) >= max {
		q.mu.Unlock()
		return 0, storage.ErrQueueFull
	}
	id := q.next
	q.next++
	q.pending = append(q.pending, id)
	q.mu.Unlock()

	_, err := q.s.write(ctx, &storage.Op{Key: q.key(id), Value: value})

	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = slices.DeleteFunc(q.pending, func(p uint64) bool { return p == id })
	if err != nil {
		return 0, fmt.Errorf("badger: queue: enqueue: %w", err)
	}
	i, _ := slices.BinarySearch(q.ids, id)
	q.ids = slices.Insert(q.ids, i, id)
	q.signal()
	return id, nil
}

// Next returns the oldest message not held, waiting for one.
func (q *queue) Next(ctx context.Context) (storage.Message, error) {
	for {
		id, wake, wait, err := q.take(ctx)
		if err != nil {
			return storage.Message{}, err
		}
		if id != 0 {
			m, err := q.read(ctx, id)
			if errors.Is(err, storage.ErrNotFound) {
				continue // acknowledged meanwhile
			}
			return m, err
		}
		if err := q.wait(ctx, wake, wait); err != nil {
			return storage.Message{}, err
		}
	}
}

// wait returns when wake is closed, after d when d > 0, or with an error
// when ctx is done or the store closes.
func (q *queue) wait(ctx context.Context, wake <-chan struct{}, d time.Duration) error {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-wake:
	case <-timer:
	case <-q.s.stop:
		return storage.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// take marks the oldest available message held and returns its id, or
// returns 0 with the channel that signals a change and, when a held
// message will become available, how long until then.
func (q *queue) take(ctx context.Context) (id uint64, wake <-chan struct{}, wait time.Duration, err error) {
	if !q.s.gate.Enter() {
		return 0, nil, 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(ctx); err != nil {
		return 0, nil, 0, err
	}
	now := time.Now()
	var soonest time.Time
	for _, id := range q.ids {
		until, held := q.held[id]
		if !held || !now.Before(until) {
			q.held[id] = now.Add(q.s.opts.ClaimAfter)
			return id, nil, 0, nil
		}
		if soonest.IsZero() || until.Before(soonest) {
			soonest = until
		}
	}
	if !soonest.IsZero() {
		wait = soonest.Sub(now)
	}
	return 0, q.wake, wait, nil
}

func (q *queue) read(ctx context.Context, id uint64) (storage.Message, error) {
	if !q.s.gate.Enter() {
		return storage.Message{}, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	v, _, err := q.s.Get(ctx, q.key(id), nil)
	if err != nil {
		return storage.Message{}, err
	}
	return storage.Message{ID: id, Value: v}, nil
}

// Ack deletes message id.
func (q *queue) Ack(ctx context.Context, id uint64) error {
	if !q.s.gate.Enter() {
		return storage.ErrClosed
	}
	defer q.s.gate.Leave()
	if _, err := q.s.write(ctx, &storage.Op{Key: q.key(id), Delete: true}); err != nil {
		return fmt.Errorf("badger: queue: ack %d: %w", id, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if i, ok := slices.BinarySearch(q.ids, id); ok {
		q.ids = slices.Delete(q.ids, i, i+1)
	}
	delete(q.held, id)
	return nil
}

// Release makes message id available to Next again.
func (q *queue) Release(ctx context.Context, id uint64) error {
	if !q.s.gate.Enter() {
		return storage.ErrClosed
	}
	defer q.s.gate.Leave()
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[id]; ok {
		delete(q.held, id)
		q.signal()
	}
	return nil
}

// Len returns the number of stored messages.
func (q *queue) Len(ctx context.Context) (int, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(ctx); err != nil {
		return 0, err
	}
	return len(q.ids), nil
}

// Oldest returns the smallest id stored or being stored, or 0.
func (q *queue) Oldest(ctx context.Context) (uint64, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	q.mu.Lock()
	defer q.mu.Unlock()
	if err := q.load(ctx); err != nil {
		return 0, err
	}
	oldest := uint64(0)
	if len(q.ids) > 0 {
		oldest = q.ids[0]
	}
	for _, p := range q.pending {
		if oldest == 0 || p < oldest {
			oldest = p
		}
	}
	return oldest, nil
}
