package badger_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test run: Close
// must stop the committer, the value-log GC loop and Badger's goroutines.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
