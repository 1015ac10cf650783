package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/tailorhq/tailor/storage"
)

const (
	// group is the consumer group every store instance reads a queue's
	// stream in; each instance is one consumer of it (Store.consumer).
	group = "tailor"
	// valueField is the field of a stream entry that holds the message.
	valueField = "v"
	// releasedIdle is the idle time Release gives a message (XCLAIM
	// IDLE), so that the next claim takes it whatever ClaimAfter is.
	// (Redis takes an IDLE longer than the time since 1970 as zero.)
	releasedIdle = 2 * 365 * 24 * time.Hour
	// maxClaimAfter bounds Options.ClaimAfter below releasedIdle.
	maxClaimAfter = 365 * 24 * time.Hour
	// minBlock and maxBlock bound the slices Next blocks in XREADGROUP
	// for: between slices it checks ctx, Close, and claimable messages.
	minBlock = 20 * time.Millisecond
	maxBlock = time.Second
)

// queue is a storage.Queue on a Redis stream read by a consumer group.
// Its stream is at KeyPrefix + "~q{" + name + "}": the name is the hash
// tag, and nothing else lives in the queue's keys, so every command
// touches one key.
type queue struct {
	s      *Store
	stream string
	block  time.Duration // XREADGROUP BLOCK slice
	// grouped is set once the consumer group is known to exist; a
	// NOGROUP error (the stream was deleted) clears it.
	grouped atomic.Bool
	// read is set once this instance has read the queue as a consumer,
	// so Close removes the consumer if it holds nothing.
	read atomic.Bool
}

var _ storage.Queue = (*queue)(nil)

// Queue returns the queue called name, shared by every store instance on
// the same Redis and KeyPrefix. Every call with the same name returns the
// same queue. It sends nothing to Redis.
func (s *Store) Queue(name string) (storage.Queue, error) {
	if err := storage.CheckQueueName(name); err != nil {
		return nil, err
	}
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	q, ok := s.queues[name]
	if !ok {
		q = &queue{
			s:      s,
			stream: s.opts.KeyPrefix + "~q{" + name + "}",
			block:  min(max(s.opts.ClaimAfter/4, minBlock), maxBlock),
		}
		s.queues[name] = q
	}
	return q, nil
}

// Enqueue appends value to the stream (enqueueScript) and returns its id.
// With Options.WaitReplicas it waits for the replicas as Write does.
func (q *queue) Enqueue(ctx context.Context, value []byte, max int) (uint64, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	r, err := q.s.eval(ctx, enqueueScript, q.stream, strconv.Itoa(max), string(value))
	if errors.Is(err, errNil) {
		return 0, storage.ErrQueueFull
	}
	if err != nil {
		return 0, fmt.Errorf("redis: queue: enqueue: %w", err)
	}
	s, err := r.ToString()
	if err != nil {
		return 0, fmt.Errorf("redis: queue: enqueue: %w", err)
	}
	return parseID(s)
}

// parseID reads a message id from a stream entry id "0-n".
func parseID(s string) (uint64, error) {
	if rest, ok := strings.CutPrefix(s, "0-"); ok {
		if id, err := strconv.ParseUint(rest, 10, 64); err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("redis: queue: entry id %q is not 0-n (the stream was not written by this store)", s)
}

func streamID(id uint64) string { return "0-" + strconv.FormatUint(id, 10) }

// ensureGroup creates the consumer group (and the stream) unless known to
// exist. The group starts at id 0, so it sees every message enqueued
// before it was created.
func (q *queue) ensureGroup(ctx context.Context) error {
	if q.grouped.Load() {
		return nil
	}
	c := q.s.client
	q.s.stats.roundTrips.Add(1)
	err := c.Do(ctx, c.B().XgroupCreate().Key(q.stream).Group(group).Id("0").Mkstream().Build()).Error()
	if err != nil && !rueidis.IsRedisBusyGroup(err) {
		return fmt.Errorf("redis: queue: create the consumer group: %w", err)
	}
	q.grouped.Store(true)
	return nil
}

// noGroup reports whether err is Redis's NOGROUP (the stream or its group
// is gone, e.g. the key was deleted): the group must be created again.
func (q *queue) noGroup(err error) bool {
	if rerr, ok := rueidis.IsRedisErr(err); ok && strings.HasPrefix(rerr.Error(), "NOGROUP") {
		q.grouped.Store(false)
		return true
	}
	return false
}

// Next returns the oldest message available: first one held longer than
// ClaimAfter or released (claimScript), else a new one (XREADGROUP),
// blocking in slices of at most a second until one comes, ctx is done or
// the store is closed.
func (q *queue) Next(ctx context.Context) (storage.Message, error) {
	if !q.s.gate.Enter() {
		return storage.Message{}, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	// Close cancels waits: ctx ends with the store.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(q.s.stop, cancel)
	defer stop()
	q.read.Store(true)
	c := q.s.client
	for {
		if err := ctx.Err(); err != nil {
			if q.s.stop.Err() != nil {
				return storage.Message{}, storage.ErrClosed
			}
			return storage.Message{}, err
		}
		if err := q.ensureGroup(ctx); err != nil {
			return storage.Message{}, q.ctxErr(ctx, err)
		}
		q.s.stats.roundTrips.Add(1)
		r := claimScript.do(ctx, c, []string{q.stream}, group, q.s.consumer, strconv.FormatInt(q.s.opts.ClaimAfter.Milliseconds(), 10))
		if m, ok, err := q.entry(r); ok || err != nil {
			if q.noGroup(err) {
				continue
			}
			return m, q.ctxErr(ctx, err)
		}
		q.s.stats.roundTrips.Add(1)
		cmd := c.B().Xreadgroup().Group(group, q.s.consumer).Count(1).Block(q.block.Milliseconds()).Streams().Key(q.stream).Id(">").Build()
		res, err := c.Do(ctx, cmd.UnblockOnCancel()).AsXRead()
		if rueidis.IsRedisNil(err) {
			continue // the slice passed without a message
		}
		if err != nil {
			if q.noGroup(err) {
				continue
			}
			return storage.Message{}, q.ctxErr(ctx, fmt.Errorf("redis: queue: read: %w", err))
		}
		for _, entries := range res {
			for _, e := range entries {
				id, err := parseID(e.ID)
				if err != nil {
					return storage.Message{}, err
				}
				return storage.Message{ID: id, Value: []byte(e.FieldValues[valueField])}, nil
			}
		}
	}
}

// ctxErr returns ErrClosed or ctx's error in place of err when the store
// was closed or ctx ended, since err is then most likely their doing.
func (q *queue) ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if q.s.stop.Err() != nil {
		return storage.ErrClosed
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// entry decodes claimScript's answer: a message, none (false), or an
// error.
func (q *queue) entry(r rueidis.RedisResult) (storage.Message, bool, error) {
	e, err := r.AsXRangeEntry()
	if rueidis.IsRedisNil(err) {
		return storage.Message{}, false, nil
	}
	if err != nil {
		return storage.Message{}, false, fmt.Errorf("redis: queue: claim: %w", err)
	}
	id, err := parseID(e.ID)
	if err != nil {
		return storage.Message{}, false, err
	}
	return storage.Message{ID: id, Value: []byte(e.FieldValues[valueField])}, true, nil
}

// Ack acknowledges and deletes message id (ackScript). With
// Options.WaitReplicas it waits for the replicas as Write does.
func (q *queue) Ack(ctx context.Context, id uint64) error {
	if !q.s.gate.Enter() {
		return storage.ErrClosed
	}
	defer q.s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := q.s.eval(ctx, ackScript, q.stream, group, streamID(id)); err != nil {
		return fmt.Errorf("redis: queue: ack %d: %w", id, err)
	}
	return nil
}

// Release makes message id claimable at once: XCLAIM it with an idle time
// beyond any ClaimAfter, without counting a delivery (JUSTID).
func (q *queue) Release(ctx context.Context, id uint64) error {
	if !q.s.gate.Enter() {
		return storage.ErrClosed
	}
	defer q.s.gate.Leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	c := q.s.client
	for {
		if err := q.ensureGroup(ctx); err != nil {
			return err
		}
		q.s.stats.roundTrips.Add(1)
		cmd := c.B().Xclaim().Key(q.stream).Group(group).Consumer(q.s.consumer).MinIdleTime("0").Id(streamID(id)).
			Idle(releasedIdle.Milliseconds()).Justid().Build()
		err := c.Do(ctx, cmd).Error()
		if q.noGroup(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("redis: queue: release %d: %w", id, err)
		}
		return nil
	}
}

// Len returns the number of messages in the stream (XLEN): Ack deletes
// what it acknowledges, so every entry is unacknowledged.
func (q *queue) Len(ctx context.Context) (int, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	c := q.s.client
	q.s.stats.roundTrips.Add(1)
	n, err := c.Do(ctx, c.B().Xlen().Key(q.stream).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("redis: queue: len: %w", err)
	}
	return int(n), nil
}

// Oldest returns the id of the stream's first entry, or 0.
func (q *queue) Oldest(ctx context.Context) (uint64, error) {
	if !q.s.gate.Enter() {
		return 0, storage.ErrClosed
	}
	defer q.s.gate.Leave()
	c := q.s.client
	q.s.stats.roundTrips.Add(1)
	entries, err := c.Do(ctx, c.B().Xrange().Key(q.stream).Start("-").End("+").Count(1).Build()).AsXRange()
	if err != nil {
		return 0, fmt.Errorf("redis: queue: oldest: %w", err)
	}
	if len(entries) == 0 {
		return 0, nil
	}
	return parseID(entries[0].ID)
}

// leaveQueues removes this instance's consumer from every queue it read
// and holds no message of (leaveScript), best effort: a consumer left
// behind only takes a little memory in Redis. Close calls it.
func (s *Store) leaveQueues() {
	s.queuesMu.Lock()
	defer s.queuesMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, q := range s.queues {
		if q.read.Load() {
			_ = leaveScript.do(ctx, s.client, []string{q.stream}, group, s.consumer).Error()
		}
	}
}
