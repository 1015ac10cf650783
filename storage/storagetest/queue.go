package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tailorhq/tailor/storage"
)

func openQueue(t *testing.T, s storage.Store, name string) storage.Queue {
	t.Helper()
	q, err := s.Queue(name)
	if err != nil {
		t.Fatalf("Queue(%q): %v", name, err)
	}
	return q
}

func enqueue(t *testing.T, q storage.Queue, value string) uint64 {
	t.Helper()
	id, err := q.Enqueue(ctx, []byte(value), 0)
	if err != nil {
		t.Fatalf("Enqueue(%q): %v", value, err)
	}
	return id
}

// next returns the next message, failing t if none comes within 10 s.
func next(t *testing.T, q storage.Queue) storage.Message {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := q.Next(cctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return m
}

// wantNone fails t if Next returns a message within d.
func wantNone(t *testing.T, q storage.Queue, d time.Duration) {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if m, err := q.Next(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %d %q, %v; want no message", m.ID, m.Value, err)
	}
}

func wantLen(t *testing.T, q storage.Queue, want int) {
	t.Helper()
	if n, err := q.Len(ctx); err != nil || n != want {
		t.Fatalf("Len = %d, %v; want %d", n, err, want)
	}
}

func wantOldest(t *testing.T, q storage.Queue, want uint64) {
	t.Helper()
	if id, err := q.Oldest(ctx); err != nil || id != want {
		t.Fatalf("Oldest = %d, %v; want %d", id, err, want)
	}
}

// testQueueOrder enqueues, takes and acknowledges in order: ids increase,
// values come back whole, Len and Oldest follow.
func testQueueOrder(t *testing.T, c Config) {
	s := c.Open(t)
	q := openQueue(t, s, "order")
	wantLen(t, q, 0)
	wantOldest(t, q, 0)
	var ids []uint64
	for i := range 5 {
		id := enqueue(t, q, fmt.Sprintf("message %d \x00\xff", i))
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("id %d after %d: ids must increase", id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	wantLen(t, q, 5)
	wantOldest(t, q, ids[0])
	for i := range 5 {
		m := next(t, q)
		if m.ID != ids[i] || string(m.Value) != fmt.Sprintf("message %d \x00\xff", i) {
			t.Fatalf("Next = %d %q, want %d, message %d", m.ID, m.Value, ids[i], i)
		}
		if err := q.Ack(ctx, m.ID); err != nil {
			t.Fatalf("Ack: %v", err)
		}
		if err := q.Ack(ctx, m.ID); err != nil {
			t.Fatalf("second Ack: %v", err)
		}
		wantLen(t, q, 4-i)
	}
	wantOldest(t, q, 0)
	wantNone(t, q, 50*time.Millisecond)
	// A different queue of the same store is separate, and the queue's
	// messages are not keys a Scan reports.
	other := openQueue(t, s, "other")
	enqueue(t, other, "x")
	wantLen(t, q, 0)
	wantLen(t, other, 1)
	if err := s.Scan(ctx, nil, func(k, _ []byte, _ storage.Version) error {
		return fmt.Errorf("Scan reported key %q; only queue messages were written", k)
	}); err != nil {
		t.Fatal(err)
	}
}

func testQueueBound(t *testing.T, c Config) {
	s := c.Open(t)
	q := openQueue(t, s, "bound")
	for range 3 {
		if _, err := q.Enqueue(ctx, []byte("x"), 3); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Enqueue(ctx, []byte("one too many"), 3); !errors.Is(err, storage.ErrQueueFull) {
		t.Fatalf("Enqueue beyond max = %v, want ErrQueueFull", err)
	}
	wantLen(t, q, 3)
	m := next(t, q)
	// A held message still counts; an acknowledged one does not.
	if _, err := q.Enqueue(ctx, []byte("x"), 3); !errors.Is(err, storage.ErrQueueFull) {
		t.Fatalf("Enqueue with a held message = %v, want ErrQueueFull", err)
	}
	if err := q.Ack(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, []byte("fits again"), 3); err != nil {
		t.Fatalf("Enqueue after an Ack: %v", err)
	}
}

// testQueueNextWaits checks that Next waits for an Enqueue, and returns
// ctx's error when ctx ends first.
func testQueueNextWaits(t *testing.T, c Config) {
	s := c.Open(t)
	q := openQueue(t, s, "waits")
	got := make(chan storage.Message, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := q.Next(ctx)
		if err != nil {
			errc <- err
			return
		}
		got <- m
	}()
	id := enqueue(t, q, "wake up")
	select {
	case m := <-got:
		if m.ID != id || string(m.Value) != "wake up" {
			t.Fatalf("waiting Next = %d %q", m.ID, m.Value)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Next did not return within 10s of an Enqueue")
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := q.Next(cctx); done <- err }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context = %v", err)
	}
}

// testQueueHeld checks that a message handed out is held (Next skips it)
// until released, and that a released message comes back at once.
func testQueueHeld(t *testing.T, c Config) {
	s := c.Open(t)
	q := openQueue(t, s, "held")
	a := enqueue(t, q, "a")
	b := enqueue(t, q, "b")
	if m := next(t, q); m.ID != a {
		t.Fatalf("first Next = %d, want %d", m.ID, a)
	}
	if m := next(t, q); m.ID != b {
		t.Fatalf("second Next = %d, want %d (a is held)", m.ID, b)
	}
	wantNone(t, q, 50*time.Millisecond)
	if err := q.Release(ctx, a); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if m := next(t, q); m.ID != a || string(m.Value) != "a" {
		t.Fatalf("Next after Release = %d %q, want %d", m.ID, m.Value, a)
	}
	wantLen(t, q, 2)
	wantOldest(t, q, a)
}

// testQueueClaimAfter leaves a message unacknowledged past the claim
// timeout: it is handed out again, also to another instance.
func testQueueClaimAfter(t *testing.T, c Config) {
	if c.ClaimAfter <= 0 {
		t.Skip("Config.ClaimAfter not set")
	}
	stores := instances(t, c)
	q1 := openQueue(t, stores[0], "claim")
	q2 := openQueue(t, stores[len(stores)-1], "claim")
	id := enqueue(t, q1, "abandoned")
	if m := next(t, q1); m.ID != id {
		t.Fatalf("Next = %d, want %d", m.ID, id)
	}
	taken := time.Now()
	m := next(t, q2) // waits for the claim timeout
	if m.ID != id || string(m.Value) != "abandoned" {
		t.Fatalf("redelivered %d %q, want %d", m.ID, m.Value, id)
	}
	if waited := time.Since(taken); waited < c.ClaimAfter*9/10 {
		t.Fatalf("redelivered after %v, before the claim timeout %v", waited, c.ClaimAfter)
	}
	if err := q2.Ack(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantLen(t, q1, 0)
}

// testQueueConsumers has consumers on every instance take messages until
// all are acknowledged: each message is processed, none twice (no claim
// timeout passes).
func testQueueConsumers(t *testing.T, c Config) {
	stores := instances(t, c)
	const messages, consumers = 60, 6
	q := openQueue(t, stores[0], "consumers")
	for i := range messages {
		enqueue(t, q, fmt.Sprint(i))
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, consumers)
	for w := range consumers {
		cq := openQueue(t, stores[w%len(stores)], "consumers")
		wg.Go(func() {
			for {
				m, err := cq.Next(cctx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						errs <- err
					}
					return
				}
				mu.Lock()
				seen[string(m.Value)]++
				n := len(seen)
				mu.Unlock()
				if err := cq.Ack(ctx, m.ID); err != nil {
					errs <- err
					return
				}
				if n == messages {
					cancel()
				}
			}
		})
	}
	select {
	case <-cctx.Done():
	case <-time.After(20 * time.Second):
		cancel()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != messages {
		t.Fatalf("%d of %d messages processed", len(seen), messages)
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("message %s processed %d times", v, n)
		}
	}
	wantLen(t, q, 0)
}

// testQueueDurable reopens the store with messages queued, one of them
// held and one acknowledged: the unacknowledged ones are there, in order.
func testQueueDurable(t *testing.T, c Config) {
	if c.Reopen == nil {
		t.Skip("the store does not outlive Close")
	}
	s := c.Open(t)
	q := openQueue(t, s, "durable")
	a := enqueue(t, q, "a")
	b := enqueue(t, q, "b")
	cc := enqueue(t, q, "c")
	if m := next(t, q); m.ID != a {
		t.Fatalf("Next = %d", m.ID)
	}
	if err := q.Ack(ctx, a); err != nil {
		t.Fatal(err)
	}
	if m := next(t, q); m.ID != b {
		t.Fatalf("Next = %d", m.ID) // held when the store closes
	}
	s = c.Reopen(t, s)
	q = openQueue(t, s, "durable")
	wantLen(t, q, 2)
	wantOldest(t, q, b)
	d := enqueue(t, q, "d")
	if d <= cc {
		t.Fatalf("id %d after a restart, not above the last one %d", d, cc)
	}
	if c.ClaimAfter > 0 {
		// b is held by the consumer of the closed instance until the
		// claim timeout; c is next.
		if m := next(t, q); m.ID != b && m.ID != cc {
			t.Fatalf("Next after restart = %d, want %d or %d", m.ID, b, cc)
		}
	}
}

func testQueueNames(t *testing.T, c Config) {
	s := c.Open(t)
	for _, bad := range []string{"", "Upper", "with space", "slash/", "{tag}", string(make([]byte, 65))} {
		if _, err := s.Queue(bad); err == nil {
			t.Errorf("Queue(%q) accepted an invalid name", bad)
		}
	}
	for _, good := range []string{"import", "a-b-0"} {
		if _, err := s.Queue(good); err != nil {
			t.Errorf("Queue(%q): %v", good, err)
		}
	}
}
