package engine

import (
	"os"
	"reflect"
	"testing"
)

// TestRecordStickyTime checks that format 3 keeps when each sticky
// assignment was made, as the JSON format does.
func TestRecordStickyTime(t *testing.T) {
	r := codecRecords()["full"]
	r.Sticky = map[string]Assignment{
		"exp-a": {Variant: 1, Bucket: 3, At: 1_700_000_123_456},
		"exp-b": {Variant: 0, Bucket: 0}, // made before tailor kept the time
		"exp-c": {Variant: 2, Bucket: 1, At: -1},
	}
	b, err := encodeRecord(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Sticky, r.Sticky) {
		t.Errorf("sticky assignments %+v, want %+v", got.Sticky, r.Sticky)
	}
	j, err := decodeRecord(encodeRecordJSON(t, r))
	if err != nil || !reflect.DeepEqual(j.Sticky, r.Sticky) {
		t.Errorf("JSON: %+v %v", j.Sticky, err)
	}
}

// TestRecordFormatV2 reads a record written in format 2 (the layout
// before sticky assignments kept their time; testdata/record-v2-full.bin
// is codecRecords()["full"] encoded by that version): every field comes
// back, the assignment times as 0.
func TestRecordFormatV2(t *testing.T) {
	b, err := os.ReadFile("testdata/record-v2-full.bin")
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != recordFormatV2 {
		t.Fatalf("format byte %d", b[0])
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeRecord(encodeRecordJSON(t, codecRecords()["full"]))
	if err != nil {
		t.Fatal(err)
	}
	got.scratch = recordScratch{} // arrays decoding reuses, not content
	if !reflect.DeepEqual(got, want) {
		t.Errorf("format 2 record read as %+v\nwant %+v", got, want)
	}
	// Rewritten, it is format 3 and reads back the same.
	b3, err := encodeRecord(nil, got)
	if err != nil {
		t.Fatal(err)
	}
	again, err := decodeRecord(b3)
	if again != nil {
		again.scratch = recordScratch{}
	}
	if err != nil || b3[0] != recordFormatBinary || !reflect.DeepEqual(again, want) {
		t.Errorf("rewritten: format %d, %v", b3[0], err)
	}
	// A truncated format 2 record is still an error, never a panic.
	if _, err := decodeRecord(b[:len(b)-3]); err == nil {
		t.Error("truncated record decoded")
	}
}
