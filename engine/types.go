package engine

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"

	"github.com/tailorhq/tailor/rules"
)

// Types shared with the rule environment. They are defined in package rules
// (what audience rules read) and carry the wire format's JSON tags.
type (
	// Location is where a visitor is; see rules.Location.
	Location = rules.Location
	// Coordinates is a latitude/longitude pair.
	Coordinates = rules.Coordinates
	// Page is a web page; see rules.Page.
	Page = rules.Page
	// Campaign holds UTM parameters.
	Campaign = rules.Campaign
	// Session describes the visitor's current session.
	Session = rules.Session
	// Device is derived from the user agent.
	Device = rules.Device
)

// Event types.
const (
	EventPage      = "page"
	EventTrack     = "track"
	EventIdentify  = "identify"
	EventScreen    = "screen"
	EventComponent = "component"
	EventAlias     = "alias"
	EventGroup     = "group"
)

// Event is one visitor event in the Ninetailed (Segment-style) wire format.
// Unknown JSON fields are ignored.
type Event struct {
	Type              string         `json:"type"`
	MessageID         string         `json:"messageId,omitempty"`
	Channel           string         `json:"channel,omitempty"`
	AnonymousID       string         `json:"anonymousId,omitempty"`
	UserID            string         `json:"userId,omitempty"`
	Timestamp         string         `json:"timestamp,omitempty"`
	OriginalTimestamp string         `json:"originalTimestamp,omitempty"`
	SentAt            string         `json:"sentAt,omitempty"`
	Context           EventContext   `json:"context"`
	Name              string         `json:"name,omitempty"`  // page, screen
	Event             string         `json:"event,omitempty"` // track
	Properties        map[string]any `json:"properties,omitempty"`
	Traits            map[string]any `json:"traits,omitempty"` // identify

	// component events
	ComponentID    string  `json:"componentId,omitempty"`
	ComponentType  string  `json:"componentType,omitempty"`
	ExperienceID   string  `json:"experienceId,omitempty"`
	VariantIndex   *int    `json:"variantIndex,omitempty"`
	ViewDurationMs float64 `json:"viewDurationMs,omitempty"`
	ViewID         string  `json:"viewId,omitempty"`
}

// EventContext is the context object of an event.
type EventContext struct {
	Page      *Page           `json:"page,omitempty"`
	Campaign  *Campaign       `json:"campaign,omitempty"`
	Library   *Library        `json:"library,omitempty"`
	Locale    string          `json:"locale,omitempty"`
	UserAgent string          `json:"userAgent,omitempty"`
	Location  *Location       `json:"location,omitempty"`
	GDPR      *GDPR           `json:"gdpr,omitempty"`
	App       json.RawMessage `json:"app,omitempty"`
	Screen    json.RawMessage `json:"screen,omitempty"`
}

// Library names the client library that sent an event.
type Library struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// GDPR carries the visitor's consent.
type GDPR struct {
	IsConsentGiven bool `json:"isConsentGiven"`
}

// Features a request can enable in RequestOptions.Features.
const (
	FeatureLocation     = "location"
	FeatureIPEnrichment = "ip-enrichment"
)

// RequestOptions is the "options" object of a request body.
type RequestOptions struct {
	Features []string `json:"features,omitempty"`
}

// Request is the input of Identify: the wire body plus what the transport
// knows (IP, locale, preflight), which has no JSON form.
type Request struct {
	Events  []Event        `json:"events"`
	Options RequestOptions `json:"options"`

	// IP is the client address used for location lookups when Options
	// enable them; the zero Addr means unknown.
	IP netip.Addr `json:"-"`
	// Locale is the preferred language for names (e.g. "de"); empty means
	// the events' context.locale, else English.
	Locale string `json:"-"`
	// Preflight evaluates without persisting anything or emitting exposures.
	Preflight bool `json:"-"`
	// Untrusted marks a request that comes from a visitor's device (the
	// HTTP API sets it) rather than from the embedding program: with
	// Options.IdentitySecret set, its identify events must prove the user
	// id with traits.userHash (see UserHash) before they can bind it or
	// reach that user's profile.
	Untrusted bool `json:"-"`
	// Overrides, when set, force variants and audience outcomes for this
	// request only (QA); see Overrides. Identify refuses ids the rules in
	// force do not have.
	Overrides *Overrides `json:"-"`

	identityVerified bool // set by Identify from the events' userHash
	admitted         bool // IdentifyBatch already admitted the profile (overload.go)

	// importMark, set by the import worker, is the batch group this
	// request applies: it is recorded in the profile under the same
	// conditional write, and a profile that holds it already is not
	// written again (importqueue.go). importOldest is the queue's oldest
	// batch; marks of older batches are pruned.
	importMark   *importMark
	importOldest uint64
}

// Profile is a visitor's profile as the wire format returns it.
type Profile struct {
	ID             string         `json:"id"`
	StableID       string         `json:"stableId"`
	Random         float64        `json:"random"`
	Audiences      []string       `json:"audiences"`
	Traits         map[string]any `json:"traits"`
	Location       Location       `json:"location"`
	Session        Session        `json:"session"`
	Jurisdiction   string         `json:"jurisdiction"`
	StickyVariants map[string]int `json:"stickyVariants"`
}

// SelectedExperience is an experience the visitor is in, with the values of
// its EntryReplacement components by key (hidden variants are "").
type SelectedExperience struct {
	ExperienceID string   `json:"experienceId"`
	VariantIndex int      `json:"variantIndex"`
	Variants     Variants `json:"variants"`
	Sticky       bool     `json:"sticky"`
}

// Variants are the values of a selected experience's EntryReplacement
// components, in the order of its components: the entry id of the chosen
// variant by component key, "" for a hidden variant. It encodes as the
// JSON object {key: value} of the wire format (empty: {}). It is a slice
// rather than a map so that a response does not allocate a map per
// experience; look a key up with Get.
type Variants []Variant

// Variant is one component key and its value.
type Variant struct {
	Key   string
	Value string
}

// Get returns the value of component key and whether the experience has
// that component.
func (v Variants) Get(key string) (string, bool) {
	for _, x := range v {
		if x.Key == key {
			return x.Value, true
		}
	}
	return "", false
}

// MarshalJSON encodes v as a JSON object.
func (v Variants) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(v)*48)
	b = append(b, '{')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, x.Key)
		b = append(b, ':')
		b = appendJSONString(b, x.Value)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON decodes a JSON object of strings, in key order.
func (v *Variants) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*v = (*v)[:0]
	for _, k := range slices.Sorted(maps.Keys(m)) {
		*v = append(*v, Variant{Key: k, Value: m[k]})
	}
	return nil
}

// appendJSONString appends s as a JSON string (encoding/json's escaping).
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// ChangeVariable is the only Change type.
const ChangeVariable = "Variable"

// Change is the value of an InlineVariable component in a selected variant.
// Value is a string, float64, bool or map[string]any, never nil.
type Change struct {
	Key   string     `json:"key"`
	Type  string     `json:"type"`
	Value any        `json:"value"`
	Meta  ChangeMeta `json:"meta"`
}

// ChangeMeta says which experience and variant produced a Change.
type ChangeMeta struct {
	ExperienceID string `json:"experienceId"`
	VariantIndex int    `json:"variantIndex"`
}

// Response is the result of Identify and Get. Slices and maps are owned by
// the caller. Slices are never nil, so they encode as [] not null.
type Response struct {
	Profile     *Profile             `json:"profile"`
	Experiences []SelectedExperience `json:"experiences"`
	Changes     []Change             `json:"changes"`
}

// Exposure reports that a profile was shown a variant of an experience for
// the first time. Exposures are emitted once per profile, experience and
// variant; the record of what was emitted is stored with the profile.
type Exposure struct {
	ProfileID    string
	ExperienceID string
	VariantIndex int
	Time         int64 // Unix milliseconds
}
