package storage

import (
	"context"
	"errors"
	"fmt"
)

// ErrQueueFull is returned by Queue.Enqueue when the queue already holds
// its maximum of messages. Nothing was enqueued.
var ErrQueueFull = errors.New("storage: queue full")

// Message is one message of a Queue: its id and the value enqueued. Value
// belongs to the caller.
type Message struct {
	ID    uint64
	Value []byte
}

// Queue is a durable FIFO queue of messages with at-least-once delivery to
// any number of consumers, in this and other processes sharing the store.
//
// A message is enqueued durably (to the store's promise) before Enqueue
// returns. Next hands out the oldest message that is neither acknowledged
// nor held by a consumer: a message is held from the Next that returned it
// until Ack (which removes it) or Release (which gives it back), or until
// its consumer has not acknowledged it for the store's claim timeout —
// then it is taken to have crashed and the message is handed out again.
// So every message is delivered until one consumer acknowledges it, and
// may be delivered more than once: a consumer must make processing a
// message safe to repeat (the engine's import worker records the batches
// it applied in each profile, under the same conditional write).
//
// Ids increase in enqueue order. Implementations are safe for concurrent
// use.
type Queue interface {
	// Enqueue appends value and returns its id. When max > 0 and max
	// messages are already in the queue (acknowledged ones are not),
	// it returns ErrQueueFull instead.
	Enqueue(ctx context.Context, value []byte, max int) (uint64, error)
	// Next returns the oldest message available to this consumer,
	// waiting until there is one or ctx is done.
	Next(ctx context.Context) (Message, error)
	// Ack removes the message id: it is never handed out again.
	// Acknowledging a message twice, or one that does not exist, is not
	// an error.
	Ack(ctx context.Context, id uint64) error
	// Release gives back the held message id without acknowledging it,
	// so that Next hands it out again at once (to any consumer).
	Release(ctx context.Context, id uint64) error
	// Len returns how many messages are in the queue (enqueued and not
	// acknowledged, held or not).
	Len(ctx context.Context) (int, error)
	// Oldest returns the id of the oldest message in the queue, or 0
	// when it is empty. Every message with a smaller id has been
	// acknowledged and will never be delivered again.
	Oldest(ctx context.Context) (uint64, error)
}

// CheckQueueName reports whether name is a valid queue name (non-empty, at
// most 64 bytes of [a-z0-9-]). Stores call it from Queue.
func CheckQueueName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("storage: queue name %q: want 1 to 64 bytes", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("storage: queue name %q: byte %d is not one of [a-z0-9-]", name, i)
		}
	}
	return nil
}

// CheckOp reports the first reason op is invalid under the Store contract
// (an empty key, both conditions, a negative TTL), naming the field. Stores
// call it from Write; maxKey > 0 also bounds the key's length.
func CheckOp(op *Op, maxKey int) error {
	switch {
	case len(op.Key) == 0:
		return errors.New("storage: Op.Key is empty")
	case maxKey > 0 && len(op.Key) > maxKey:
		return fmt.Errorf("storage: Op.Key of %d bytes exceeds %d", len(op.Key), maxKey)
	case op.IfAbsent && op.IfVersion != 0:
		return errors.New("storage: Op.IfVersion and Op.IfAbsent are both set")
	case op.TTL < 0 && !op.Delete:
		return fmt.Errorf("storage: Op.TTL %v is negative", op.TTL)
	}
	return nil
}
