package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/rules"
	"github.com/tailorhq/tailor/storage"
	"github.com/tailorhq/tailor/storage/badger"
)

// encodeRecordJSON encodes r in format 1, as tailor first wrote records.
func encodeRecordJSON(t testing.TB, r *record) []byte {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte{recordFormatJSON}, b...)
}

// codecRecords are records covering every field and the edge cases of
// the binary format.
func codecRecords() map[string]*record {
	full := &record{
		ID: "p1", StableID: "s1", Random: 0.123456789, UserID: "u-ü", Merged: []string{"m1", "m2"},
		Created: 1_700_000_000_000, Updated: -5,
		Traits: map[string]any{
			"plan": "pro", "age": 41.5, "vip": true, "off": false, "none": nil,
			"tags":   []any{"a", 1.0, []any{}, map[string]any{}},
			"nested": map[string]any{"deep": map[string]any{"x": "y"}, "list": []any{true}},
			"long":   strings.Repeat("é", 300),
		},
		Location: Location{Coordinates: &Coordinates{Latitude: 59.9, Longitude: -10.7}, City: "Oslo",
			PostalCode: "0150", Region: "Oslo", RegionCode: "03", Country: "Norway", CountryCode: "NO",
			Continent: "EU", Timezone: "Europe/Oslo"},
		Device:    Device{Type: "mobile", OS: "iOS", Browser: "Safari"},
		UserAgent: "Mozilla/5.0", Locale: "nb-NO",
		Page: Page{URL: "https://x.test/a?b=c", Path: "/a", Query: map[string]string{"b": "c", "": "empty key"},
			Referrer: "https://ref.test", Search: "?b=c", Title: "A"},
		Campaign: Campaign{Name: "n", Source: "s", Medium: "m", Term: "t", Content: "c"},
		Session: sessionState{ID: "sess", Count: 3, Start: 1_700_000_000_000, LastSeen: 1_700_000_060_000,
			LandingPage: Page{URL: "https://x.test/", Path: "/", Query: map[string]string{}}, Landed: true, PastLength: 1234},
		Events: map[string]*rules.History{
			"purchase": {Count: 5, First: 1, Last: 1_700_000_000_000, Days: []rules.DayCount{{Day: 19000, N: 2}, {Day: 19001, N: 3}}},
			"signup":   {Count: 1, First: 7, Last: 7},
		},
		Views:   map[string]*rules.History{"/pricing": {Count: 2, First: 3, Last: 4, Days: []rules.DayCount{{Day: -1, N: 2}}}},
		Sticky:  map[string]Assignment{"exp-a": {Variant: 1, Bucket: 3}, "exp-b": {Variant: 0, Bucket: 0}},
		Exposed: map[string][]int{"exp-a": {1, 0}, "exp-c": {2}},
	}
	return map[string]*record{
		"empty":  {},
		"new":    newRecord("fresh", 1_700_000_000_000),
		"full":   full,
		"traits": {ID: "t", Traits: map[string]any{"k": map[string]any{"a": []any{map[string]any{"b": nil}}}}},
	}
}

// TestRecordRoundTrip checks that a record read back from the binary
// format equals the same record read back from the JSON format (which
// defines what survives: e.g. an empty traits map comes back nil).
func TestRecordRoundTrip(t *testing.T) {
	for name, r := range codecRecords() {
		t.Run(name, func(t *testing.T) {
			b, err := encodeRecord(nil, r)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != recordFormatBinary {
				t.Fatalf("format byte %d, want %d", b[0], recordFormatBinary)
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeRecord(encodeRecordJSON(t, r))
			if err != nil {
				t.Fatal(err)
			}
			got.scratch = recordScratch{} // arrays decoding reuses, not content
			if !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("binary round trip differs from JSON round trip:\n got %s\nwant %s", gj, wj)
			}
			again, err := encodeRecord(nil, got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded record gives other bytes")
			}
			if len(b) >= len(encodeRecordJSON(t, r)) && name != "empty" {
				t.Errorf("binary %d bytes, JSON %d: not compact", len(b), len(encodeRecordJSON(t, r)))
			}
		})
	}
}

// TestRecordEncodingDeterministic: maps encode in key order, so equal
// records give equal bytes whatever the map iteration order.
func TestRecordEncodingDeterministic(t *testing.T) {
	r := codecRecords()["full"]
	first, err := encodeRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		b, err := encodeRecord(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, first) {
			t.Fatal("two encodings of one record differ")
		}
	}
}

// TestRecordEncodeOtherGoValues: trait values of other Go types are
// stored as JSON would store them.
func TestRecordEncodeOtherGoValues(t *testing.T) {
	r := &record{ID: "x", Traits: map[string]any{"n": 3, "num": json.Number("2.5"), "s": struct {
		A int `json:"a"`
	}{7}}}
	b, err := encodeRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": 3.0, "num": 2.5, "s": map[string]any{"a": 7.0}}
	if !reflect.DeepEqual(got.Traits, want) {
		t.Errorf("traits %#v, want %#v", got.Traits, want)
	}
	if _, err := encodeRecord(nil, &record{Traits: map[string]any{"c": make(chan int)}}); err == nil {
		t.Error("a channel trait encoded without error")
	}
}

// TestDecodeRejectsGarbage: every truncation of a valid record, trailing
// bytes and an unknown format byte are errors, not panics.
func TestDecodeRejectsGarbage(t *testing.T) {
	b, err := encodeRecord(nil, codecRecords()["full"])
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := decodeRecord(b[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	if _, err := decodeRecord(append(bytes.Clone(b), 0)); !errors.Is(err, errCorrupt) {
		t.Errorf("trailing byte: %v, want errCorrupt", err)
	}
	if _, err := decodeRecord([]byte{99, 1, 2}); !errors.Is(err, errRecordFormat) {
		t.Errorf("unknown format: %v, want errRecordFormat", err)
	}
}

// FuzzDecodeRecord: the decoder never panics on garbage, and whatever it
// accepts encodes and decodes again to the same record.
// Run it with: go test ./engine -run '^$' -fuzz FuzzDecodeRecord -fuzztime 1m
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range codecRecords() {
		b, err := encodeRecord(nil, r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(encodeRecordJSON(f, r))
	}
	f.Add([]byte{recordFormatBinary, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil || b[0] != recordFormatBinary {
			return
		}
		enc, err := encodeRecord(nil, r)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		r2, err := decodeRecord(enc)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		// Compared as bytes: garbage can hold NaNs, which DeepEqual
		// never finds equal.
		enc2, err := encodeRecord(nil, r2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("decode(encode(decode(b))) differs from decode(b) (%v)", err)
		}
	})
}

// TestOpensJSONRecords: a store written in format 1 still opens; the
// profile is read, and the next write uses the binary format.
func TestOpensJSONRecords(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	old := codecRecords()["full"]
	key := []byte(prefixProfile + old.ID)
	if _, err := st.Write(ctx, storage.Op{Key: key, Value: encodeRecordJSON(t, old)}); err != nil {
		t.Fatal(err)
	}
	e, err := Open("", &Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	got, err := e.Get(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Profile.Traits["plan"] != "pro" || got.Profile.Location.City != "Oslo" {
		t.Fatalf("format-1 profile read as %+v", got.Profile)
	}
	if _, err := e.Identify(ctx, old.ID, Request{Events: []Event{{Type: EventTrack, Event: "purchase"}}}); err != nil {
		t.Fatal(err)
	}
	b, _, err := st.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != recordFormatBinary {
		t.Fatalf("rewritten in format %d, want %d", b[0], recordFormatBinary)
	}
	r, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.Events["purchase"].Count != 6 || r.Traits["plan"] != "pro" || r.Sticky["exp-a"].Bucket != 3 {
		t.Errorf("rewritten record lost data: events %+v traits %v sticky %v", r.Events["purchase"], r.Traits, r.Sticky)
	}
}

// BenchmarkRecordCodec compares the formats on a record with every field
// set: encode and decode, JSON (format 1) and binary (format 2).
func BenchmarkRecordCodec(b *testing.B) {
	r := codecRecords()["full"]
	bin, err := encodeRecord(nil, r)
	if err != nil {
		b.Fatal(err)
	}
	js := encodeRecordJSON(b, r)
	b.Run("encode/json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(js)))
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	// "binary-decoded" is a record as Identify writes it: decoded, so the
	// encoder takes its keys' decoded order instead of sorting.
	decoded, err := decodeRecord(bin)
	if err != nil {
		b.Fatal(err)
	}
	for name, r := range map[string]*record{"binary": r, "binary-decoded": decoded} {
		b.Run("encode/"+name, func(b *testing.B) {
			e := &encoder{}
			b.ReportAllocs()
			b.SetBytes(int64(len(bin)))
			for b.Loop() {
				if _, err := e.encode(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for name, data := range map[string][]byte{"json": js, "binary": bin} {
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := decodeRecord(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEncodeKeyOrder checks that a decoded record, whose traits' and
// histories' keys the encoder takes in their decoded order, encodes to
// the bytes a record of the same content without that order does, after
// every kind of change to its keys and with a wrong order.
func TestEncodeKeyOrder(t *testing.T) {
	h := func(n int64) *rules.History { return &rules.History{Count: n, First: n, Last: n} }
	changes := map[string]func(r *record){
		"none":          func(r *record) {},
		"trait value":   func(r *record) { r.Traits["plan"] = "free" },
		"trait added":   func(r *record) { r.Traits["zz"] = 1.0 },
		"trait gone":    func(r *record) { delete(r.Traits, "age") },
		"trait renamed": func(r *record) { delete(r.Traits, "age"); r.Traits["aaa"] = 2.0 },
		"traits none":   func(r *record) { r.Traits = nil },
		"view added":    func(r *record) { r.Views["/a"] = h(1) },
		"event gone":    func(r *record) { delete(r.Events, "signup") },
		"event renamed": func(r *record) { delete(r.Events, "signup"); r.Events["a"] = h(2) },
		"event nil":     func(r *record) { r.Events["signup"] = nil },
		"order unsorted": func(r *record) {
			k := r.scratch.eventKeys
			k[0], k[1] = k[1], k[0]
		},
		"order repeated": func(r *record) {
			r.scratch.eventKeys[1] = r.scratch.eventKeys[0]
			delete(r.Events, r.scratch.eventKeys[0])
			r.Events["other"] = h(3)
		},
	}
	full := codecRecords()["full"]
	stored, err := encodeRecord(nil, full)
	if err != nil {
		t.Fatal(err)
	}
	for name, change := range changes {
		r, err := decodeRecord(stored)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.scratch.traitKeys) != len(full.Traits) || len(r.scratch.eventKeys) != len(full.Events) {
			t.Fatalf("decoded key order %v %v, want every key", r.scratch.traitKeys, r.scratch.eventKeys)
		}
		change(r)
		got, err := encodeRecord(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		plain := *r
		plain.scratch = recordScratch{}
		want, err := encodeRecord(nil, &plain)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: a decoded record encodes to other bytes than the same content", name)
		}
	}
}

// TestDecodeIntoReuses decodes every test record into one pooled record
// after every other: each decode gives exactly what a fresh decode gives,
// with nothing left over from the record decoded before, and the earlier
// record's histories are not touched by a later decode of the same
// arrays' owner until it is reused.
func TestDecodeIntoReuses(t *testing.T) {
	recs := codecRecords()
	encs := map[string][]byte{}
	for name, r := range recs {
		b, err := encodeRecord(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		encs[name] = b
	}
	for first, b1 := range encs {
		for second, b2 := range encs {
			pooled := new(record)
			if err := decodeRecordInto(pooled, b1); err != nil {
				t.Fatal(err)
			}
			if err := decodeRecordInto(pooled, b2); err != nil {
				t.Fatal(err)
			}
			fresh, err := decodeRecord(b2)
			if err != nil {
				t.Fatal(err)
			}
			again, err := encodeRecord(nil, pooled)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b2) {
				gj, _ := json.Marshal(pooled)
				wj, _ := json.Marshal(fresh)
				t.Errorf("%s decoded after %s:\n got %s\nwant %s", second, first, gj, wj)
			}
		}
	}
}
