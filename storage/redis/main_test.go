package redis_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives its test run: Close
// must stop every goroutine the store (and its rueidis client) started.
// One rueidis goroutine is let go: when a topology refresh drops
// connections (after a failover, or right after connecting, when it drops
// seed addresses it saw as replicas still loading), the cluster client
// closes them 5 s later from a goroutine of its own that Close does not
// wait for (rueidis cluster.go, _refresh).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/rueidis.(*clusterClient)._refresh.func2"))
}
