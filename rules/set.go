package rules

import (
	"errors"
	"time"
)

// Set is a loaded, validated and compiled rules file: audiences and
// experiences in file order (file order is priority). A Set is immutable
// once returned by Parse or Load and safe for concurrent use by any number
// of goroutines; callers must not modify its slices.
type Set struct {
	Audiences   []Audience
	Experiences []Experience

	// compiled state, private to the package, filled by Parse.
	prog *program
}

// Audience is a named rule over the environment.
type Audience struct {
	ID   string
	Name string
	When string // the expr source
	Pos  Pos    // where the audience is defined in its file
}

// Experience types.
const (
	TypeExperiment      = "experiment"
	TypePersonalization = "personalization"
)

// Experience statuses.
const (
	StatusRunning = "running"
	StatusPaused  = "paused"
)

// Experience is an experiment or personalization with its allocation
// settings and components.
type Experience struct {
	ID            string
	Type          string // TypeExperiment or TypePersonalization
	Audience      string // audience id; empty means everyone
	AudienceIndex int    // index into Set.Audiences, -1 when Audience is empty
	Traffic       float64
	Distribution  []float64 // one entry per variant, baseline first; sums to 1
	Sticky        bool
	BucketVersion int
	Namespace     *Namespace
	Status        string    // StatusRunning or StatusPaused
	Start, End    time.Time // zero means unbounded
	Components    []Component
	// QAUsers always get the variant listed for them (see QAVariant).
	QAUsers []QAUser
	Pos     Pos
}

// Variants returns the number of variants, the baseline included.
func (e *Experience) Variants() int { return len(e.Distribution) }

// QAUser is a visitor who always gets one variant of an experience, for
// quality assurance before and during a launch. Exactly one of UserID
// (the profile's userId) and ProfileID is set.
type QAUser struct {
	UserID    string
	ProfileID string
	Variant   int // 0 is the baseline
	Pos       Pos // where the entry is in its file
}

// QAVariant returns the variant listed for a visitor with the given user
// id or profile id among e.QAUsers, and whether one is. Empty ids match
// nothing.
func (e *Experience) QAVariant(userID, profileID string) (int, bool) {
	for i := range e.QAUsers {
		q := &e.QAUsers[i]
		if (q.UserID != "" && q.UserID == userID) || (q.ProfileID != "" && q.ProfileID == profileID) {
			return q.Variant, true
		}
	}
	return 0, false
}

// Namespace makes experiences mutually exclusive: a visitor enters an
// experience only when the namespace draw falls in [Range[0], Range[1]).
type Namespace struct {
	ID    string
	Range [2]float64
}

// Component types.
const (
	EntryReplacement = "EntryReplacement"
	InlineVariable   = "InlineVariable"
)

// Component is one thing an experience changes.
type Component struct {
	Type string // EntryReplacement or InlineVariable
	Key  string // defaults to the baseline id for EntryReplacement
	// Baseline and Variants hold, for EntryReplacement, entry ids (string)
	// and, for InlineVariable, the variable's value (string, float64, bool
	// or map[string]any; never nil or a slice).
	Baseline Variant
	Variants []Variant
}

// Variant is one value of a component. Hidden applies to EntryReplacement:
// the entry is hidden and the selected value is "".
type Variant struct {
	Value  any
	Hidden bool
}

// Pos is a place in a rules file.
type Pos struct {
	File   string
	Line   int
	Column int
}

// ErrInvalid is matched by every *Error (errors.Is(err, rules.ErrInvalid)).
var ErrInvalid = errors.New("rules: invalid rules")
