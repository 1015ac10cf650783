package redis_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestMain fails the package if any goroutine outlives its test run: Close
// must stop every goroutine the store (and its rueidis client) started,
// but for the one rueidis goroutine redistest.IgnoreLeaks describes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, redistest.IgnoreLeaks...)
}
