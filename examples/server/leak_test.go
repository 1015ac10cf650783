package main

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestMain fails the package if a goroutine outlives the run: a graceful
// shutdown must stop the HTTP server, the rules watcher, the GeoIP
// reloader and the engine with its import queue worker (and its Redis
// client, but for the rueidis goroutine redistest.IgnoreLeaks names).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, redistest.IgnoreLeaks...)
}
