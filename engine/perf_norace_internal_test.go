//go:build !race

package engine

// raceEnabled is set when the race detector runs: it instruments memory
// accesses and allocates, so allocation budgets are not checked.
const raceEnabled = false
