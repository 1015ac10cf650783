package engine

import "fmt"

// Reason says why a visitor is in an experience or not: the step of the
// allocation (step 7 of "What Identify does" in the package
// documentation) that decided. The zero Reason is no reason (not
// decided). Reasons encode as the kebab-case words of
// String's text ("not-running", "sticky", ...) in JSON.
type Reason uint8

// Reasons a visitor is out of an experience, in the order they are
// checked.
const (
	ReasonNotRunning Reason = iota + 1 // the experience's status is not running
	ReasonNotStarted                   // before the experience's start
	ReasonEnded                        // at or after the experience's end
	ReasonAudience                     // the experience's audience did not match
	ReasonNamespace                    // the namespace draw fell outside the experience's range
	ReasonTraffic                      // held out: the traffic draw was not below the traffic share
)

// Reasons a visitor is in an experience. Forced ones (ReasonOverride,
// ReasonQAUser) come before every other check, so a tester sees a variant
// of a paused or not yet started experience; they are never stored as
// sticky assignments and never emit exposures.
const (
	ReasonOverride Reason = iota + 32 // forced by the request's Overrides
	ReasonQAUser                      // the visitor is one of the experience's qaUsers
	ReasonSticky                      // kept from a sticky assignment of the current bucket version
	ReasonDrawn                       // drawn from the distribution
)

var reasonNames = map[Reason][2]string{
	ReasonNotRunning: {"not running", "not-running"},
	ReasonNotStarted: {"before start", "not-started"},
	ReasonEnded:      {"after end", "ended"},
	ReasonAudience:   {"audience not matched", "audience"},
	ReasonNamespace:  {"outside the namespace range", "namespace"},
	ReasonTraffic:    {"held out by traffic", "traffic"},
	ReasonOverride:   {"forced by override", "override"},
	ReasonQAUser:     {"QA user", "qa-user"},
	ReasonSticky:     {"sticky assignment", "sticky"},
	ReasonDrawn:      {"drawn", "drawn"},
}

// String returns the reason in words ("held out by traffic").
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n[0]
	}
	return "no reason"
}

// In reports whether the reason puts the visitor in the experience.
func (r Reason) In() bool { return r >= ReasonOverride }

// Forced reports whether the reason is a QA override or a QA user.
func (r Reason) Forced() bool { return r == ReasonOverride || r == ReasonQAUser }

// MarshalText encodes r as its kebab-case name ("not-running").
func (r Reason) MarshalText() ([]byte, error) {
	if n, ok := reasonNames[r]; ok {
		return []byte(n[1]), nil
	}
	return []byte("none"), nil
}

// UnmarshalText decodes a name MarshalText gives.
func (r *Reason) UnmarshalText(b []byte) error {
	if string(b) == "none" {
		*r = 0
		return nil
	}
	for k, n := range reasonNames {
		if n[1] == string(b) {
			*r = k
			return nil
		}
	}
	return fmt.Errorf("tailor: unknown reason %q", b)
}
