package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
)

// Store key layout. Every key starts with a one-letter namespace and '/'.
const (
	prefixProfile = "p/" // p/<profile id> → encoded record (a profile, or a protocol state)
	prefixUser    = "u/" // u/<userId> → id of the profile known as userId
	prefixJournal = "j/" // j/<kind>/<id> → an identity operation under way (identity.go)
	// prefixMerged is the alias of a merged-away id in stores written
	// before merged ids became forwarding records: m/<id> → survivor. It
	// is still read, and removed with its survivor, never written.
	prefixMerged = "m/"
)

// record is a profile as stored. Field names are short because every
// profile carries them; the JSON form is versioned by a leading byte.
type record struct {
	ID       string   `json:"id"`
	StableID string   `json:"sid"`
	Random   float64  `json:"r"`
	UserID   string   `json:"uid,omitempty"`
	Merged   []string `json:"mg,omitempty"` // ids merged into this profile
	Created  int64    `json:"c"`            // Unix ms
	Updated  int64    `json:"u"`            // Unix ms of the last write

	Traits    map[string]any `json:"t,omitempty"`
	Location  Location       `json:"loc"`
	Device    Device         `json:"dev"`
	UserAgent string         `json:"ua,omitempty"`
	Locale    string         `json:"lc,omitempty"`
	Page      Page           `json:"pg"`
	Campaign  Campaign       `json:"cp"`
	Session   sessionState   `json:"s"`

	Events map[string]*rules.History `json:"ev,omitempty"` // track events by name
	Views  map[string]*rules.History `json:"vw,omitempty"` // page paths and screen names

	Sticky  map[string]Assignment `json:"st,omitempty"` // experience id → assignment
	Exposed map[string][]int      `json:"ex,omitempty"` // experience id → variants exposed

	// The state of the identity protocol (identity.go). A record with
	// Forward set is not a profile: the id was merged into Forward
	// (Pending: the merge is under way and the record still holds the
	// data to move). Deleted marks a tombstone: the profile was deleted
	// and UserID and Merged are the aliases left to remove. BindPending
	// says that UserID may not be claimed yet (u/<UserID> → ID).
	Forward     string `json:"fw,omitempty"`
	Pending     bool   `json:"pd,omitempty"`
	Deleted     bool   `json:"del,omitempty"`
	BindPending bool   `json:"bp,omitempty"`
	// Absorbed holds receipts of the pending merges this profile
	// absorbed (absorbReceipt), the most recent MaxAbsorbed, so that a
	// merge completed twice is absorbed once.
	Absorbed []uint64 `json:"ab,omitempty"`
	// Imports are the import queue's batch groups applied to this
	// profile and not yet known to be finished (importqueue.go).
	Imports []importMark `json:"im,omitempty"`
	// AliasesUntil is when (Unix ms) the aliases written with a
	// ProfileTTL expire; they are rewritten before the profile outlives
	// them.
	AliasesUntil int64 `json:"au,omitempty"`

	// stored reports that the record was read from the store (not new),
	// at version ver.
	stored bool
	ver    storage.Version
	// scratch keeps the arrays a pooled record decodes into (decodeInto).
	scratch recordScratch
}

// recordScratch are arrays a record's decoded histories and exposures
// point into, kept for the next decode of a pooled record, and the keys
// of its traits and histories in the order last decoded (sorted), which
// the encoder takes instead of sorting the maps while they are still the
// maps' keys.
type recordScratch struct {
	events, views       []rules.History
	eventDays, viewDays []rules.DayCount
	exposed             []int

	traitKeys, eventKeys, viewKeys []string
}

// live reports whether r is a profile, not a protocol state.
func (r *record) live() bool { return r.Forward == "" && !r.Deleted }

// sessionState is what the profile remembers of its sessions.
type sessionState struct {
	ID          string `json:"id"`
	Count       int64  `json:"n"`
	Start       int64  `json:"st"` // Unix ms of the current session's first event
	LastSeen    int64  `json:"ls"` // Unix ms of the latest event
	LandingPage Page   `json:"lp"`
	Landed      bool   `json:"ld,omitempty"` // LandingPage is set for this session
	PastLength  int64  `json:"pl"`           // seconds of all sessions before the current
}

// recordFormatJSON is the first byte of a record encoded as JSON, the
// format tailor wrote first. It is still read; new writes use
// recordFormatBinary (codec.go).
const recordFormatJSON = 1

var errRecordFormat = errors.New("tailor: unknown profile record format")

// encodeRecord returns r in the current format (binary), in dst's memory
// when it has room.
func encodeRecord(dst []byte, r *record) ([]byte, error) {
	e := encoder{b: dst}
	return e.encode(r)
}

// encode returns r in the current format in e's buffer, which the next
// encode overwrites.
func (e *encoder) encode(r *record) ([]byte, error) {
	e.b = append(e.b[:0], recordFormatBinary)
	e.keys = e.keys[:0]
	if err := e.record(r); err != nil {
		return nil, fmt.Errorf("tailor: encode profile %q: traits: %w", r.ID, err)
	}
	return e.b, nil
}

// cloneRecord returns a deep copy of r (nil for nil), as the store would
// give it back, with r's version.
func cloneRecord(r *record) *record {
	if r == nil {
		return nil
	}
	c := *r // fallback: shares maps, for a record the encoder refuses
	if b, err := encodeRecord(nil, r); err == nil {
		if d, err := decodeRecord(b); err == nil {
			c = *d
		}
	}
	c.ver, c.stored = r.ver, r.stored
	return &c
}

// decodeRecordInto decodes a stored record of any format into r, reusing
// r's maps and arrays for the binary formats (decodeInto). It does not
// keep b.
func decodeRecordInto(r *record, b []byte) error {
	if len(b) > 0 && (b[0] == recordFormatV2 || b[0] == recordFormatBinary) {
		if err := decodeInto(r, b[1:], b[0]); err != nil {
			return fmt.Errorf("tailor: decode profile: %w", err)
		}
		return nil
	}
	d, err := decodeRecord(b)
	if err != nil {
		return err
	}
	*r = *d
	return nil
}

// decodeRecord decodes a stored record of any format. It does not keep b.
func decodeRecord(b []byte) (*record, error) {
	if len(b) == 0 {
		return nil, errRecordFormat
	}
	switch b[0] {
	case recordFormatV2, recordFormatBinary:
		r, err := decodeBinary(b[1:], b[0])
		if err != nil {
			return nil, fmt.Errorf("tailor: decode profile: %w", err)
		}
		return r, nil
	case recordFormatJSON:
		r := new(record)
		if err := json.Unmarshal(b[1:], r); err != nil {
			return nil, fmt.Errorf("tailor: decode profile: %w", err)
		}
		return r, nil
	}
	return nil, errRecordFormat
}

// wire returns the wire form of the session state, sharing no memory
// with s.
func (s *sessionState) wire() Session {
	active := (s.LastSeen - s.Start) / 1000
	if active < 0 {
		active = 0
	}
	var avg int64
	if s.Count > 0 {
		avg = (s.PastLength + active) / s.Count
	}
	// The query is copied: the Session goes to a caller, who owns it, and
	// the record may live on in the profile cache.
	lp := s.LandingPage
	lp.Query = make(map[string]string, len(s.LandingPage.Query))
	for k, v := range s.LandingPage.Query {
		lp.Query[k] = v
	}
	return Session{
		ID:                   s.ID,
		IsReturningVisitor:   s.Count > 1,
		LandingPage:          lp,
		Count:                s.Count,
		SessionLength:        active,
		ActiveSessionLength:  active,
		AverageSessionLength: avg,
	}
}

// mergeInto merges the anonymous record a into the known record k, as step
// 3 of "What Identify does" in the package documentation says: k's traits
// win, counters and histories add up, k's sticky assignments win and a's
// fill gaps, a becomes an alias.
func mergeInto(k, a *record) {
	if k.Traits == nil && len(a.Traits) > 0 {
		k.Traits = make(map[string]any, len(a.Traits))
	}
	for key, v := range a.Traits {
		if _, ok := k.Traits[key]; !ok {
			k.Traits[key] = v
		}
	}
	k.Events = mergeHistories(k.Events, a.Events)
	k.Views = mergeHistories(k.Views, a.Views)
	for id, as := range a.Sticky {
		if _, ok := k.Sticky[id]; !ok {
			if k.Sticky == nil {
				k.Sticky = make(map[string]Assignment)
			}
			k.Sticky[id] = as
		}
	}
	for id, vs := range a.Exposed {
		for _, v := range vs {
			k.markExposed(id, v)
		}
	}

	// Sessions: both counts add up; the session seen last is the current
	// one, and the other's current session becomes past length.
	ks, as := &k.Session, &a.Session
	cur, other := ks, as
	if as.LastSeen > ks.LastSeen {
		cur, other = as, ks
	}
	merged := *cur
	merged.Count = ks.Count + as.Count
	merged.PastLength = ks.PastLength + as.PastLength
	if other.Count > 0 {
		merged.PastLength += max(0, (other.LastSeen-other.Start)/1000)
	}
	k.Session = merged

	// The anonymous side is the visitor as seen now: its context wins when
	// it is more recent.
	if a.Updated >= k.Updated {
		if !a.Location.IsZero() {
			k.Location = a.Location
		}
		if a.UserAgent != "" {
			k.UserAgent, k.Device = a.UserAgent, a.Device
		}
		if a.Locale != "" {
			k.Locale = a.Locale
		}
		if a.Page.URL != "" || a.Page.Path != "" {
			k.Page = a.Page
		}
		if a.Campaign != (Campaign{}) {
			k.Campaign = a.Campaign
		}
	}
	if a.Created < k.Created {
		k.Created = a.Created
	}
	for _, id := range append([]string{a.ID}, a.Merged...) {
		if !slices.Contains(k.Merged, id) {
			k.Merged = append(k.Merged, id)
		}
	}
	for _, m := range a.Imports {
		if !slices.Contains(k.Imports, m) {
			k.Imports = append(k.Imports, m)
		}
	}
}

func mergeHistories(dst, src map[string]*rules.History) map[string]*rules.History {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]*rules.History, len(src))
	}
	for name, h := range src {
		if d, ok := dst[name]; ok {
			d.Merge(h)
		} else {
			c := *h
			c.Days = append([]rules.DayCount(nil), h.Days...)
			dst[name] = &c
		}
	}
	boundHistories(dst)
	return dst
}

// markExposed records that variant v of experience id was exposed and
// reports whether it was new.
func (r *record) markExposed(id string, v int) bool {
	for _, x := range r.Exposed[id] {
		if x == v {
			return false
		}
	}
	if r.Exposed == nil {
		r.Exposed = make(map[string][]int)
	}
	r.Exposed[id] = append(r.Exposed[id], v)
	return true
}
