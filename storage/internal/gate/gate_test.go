package gate

import (
	"testing"
	"time"
)

// TestCloseWaitsForCalls: Close waits for an admitted call to leave, and
// no call is admitted after it.
func TestCloseWaitsForCalls(t *testing.T) {
	var g Gate
	if !g.Enter() {
		t.Fatal("an open gate refused a call")
	}
	closed := make(chan struct{})
	go func() { g.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while a call was in flight")
	case <-time.After(20 * time.Millisecond):
	}
	g.Leave()
	<-closed
	if g.Enter() {
		t.Fatal("a closed gate admitted a call")
	}
}
