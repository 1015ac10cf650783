package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a goroutine outlives the run: a graceful
// shutdown must stop the HTTP server, the rules watcher, the GeoIP
// reloader and the engine with its import queue worker.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
