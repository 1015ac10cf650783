package httpapi

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the run: the handler
// starts none of its own, and every engine a test opens (with its import
// queue worker) must be stopped by Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
