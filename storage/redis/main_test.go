package redis_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test run: Close
// must stop every goroutine the store (and its rueidis client) started.
// One rueidis goroutine is let go: after a topology change the cluster
// client closes the connections it dropped 5 s later, from a goroutine of
// its own that Close does not wait for (rueidis cluster.go, _refresh).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}
