package engine

// MaxAttempts is maxAttempts, for tests counting retries.
const MaxAttempts = maxAttempts

// TelemetryOff reports whether e holds no telemetry and its store is not
// wrapped by the metered store.
func TelemetryOff(e *Engine) bool {
	_, metered := e.store.(*meteredStore)
	return e.tel == nil && !metered
}
