package storage

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestApplyCancelWhileWaiting checks that an Apply waiting for a busy
// committer gives up when its context is cancelled, and that its batch is
// not handed over afterwards.
func TestApplyCancelWhileWaiting(t *testing.T) {
	// No committer goroutine reads commits: every Apply waits.
	s := &Badger{commits: make(chan *commitReq)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		errc <- s.Apply(ctx, []Op{{Key: []byte("k"), Value: []byte("v")}})
	}()
	select {
	case err := <-errc:
		t.Fatalf("Apply returned %v before the committer took its batch", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Apply = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Apply still waiting 5s after its context was cancelled")
	}
	select {
	case r := <-s.commits:
		t.Fatalf("cancelled batch handed to the committer: %v", r.ops)
	default:
	}
}
