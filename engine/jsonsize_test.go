package engine

import (
	"encoding/json"
	"math"
	"testing"
)

// TestJSONSize holds jsonSize to len(json.Marshal(v)).
func TestJSONSize(t *testing.T) {
	values := map[string]any{
		"nil":      nil,
		"bools":    []any{true, false},
		"escapes":  "quote\" backslash\\ \b\f\n\r\t \x00\x1f <html> & \u2028\u2029 \x7f",
		"invalid":  "bad \xff\xfe utf-8 \xe2\x82",
		"unicode":  "héllo wörld ✓ 😀",
		"numbers":  []any{0.0, -0.0, 1.0, -1.5, 1e-6, 9.99e-7, 1e-7, 1e20, 1e21, 1.5e300, -2.5e-300, 123456789.125, math.MaxFloat64, math.SmallestNonzeroFloat64},
		"empty":    map[string]any{"": "", "a": []any{}, "m": map[string]any{}},
		"nested":   map[string]any{"k<": map[string]any{"x": []any{1.0, "y", nil, map[string]any{"z": true}}}},
		"other Go": map[string]any{"int": 42, "struct": struct{ A string }{"a<b"}},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := jsonSize(v)
			if err != nil || got != len(b) {
				t.Errorf("jsonSize = %d, %v; json.Marshal gives %d bytes: %s", got, err, len(b), b)
			}
			if bound, ok := jsonSizeBound(v); ok && bound < len(b) {
				t.Errorf("jsonSizeBound = %d, below json.Marshal's %d bytes: %s", bound, len(b), b)
			} else if !ok && name != "other Go" {
				t.Errorf("jsonSizeBound gives no bound")
			}
		})
	}
	if _, err := jsonSize(map[string]any{"c": make(chan int)}); err == nil {
		t.Error("no error for a value JSON cannot encode")
	}
	if _, err := jsonSize(math.Inf(1)); err == nil {
		t.Error("no error for +Inf")
	}
}

// FuzzJSONSize compares jsonSize, and jsonSizeBound's bound, with
// encoding/json on strings and numbers, alone and inside a map and a
// slice.
func FuzzJSONSize(f *testing.F) {
	f.Add("a<b>&\"\\\n\u2028\xff", 1e-7)
	f.Add("", 0.0)
	f.Add("\u2028", -1.2345678901234567e-7)
	f.Add("x", -0.0000012345678901234567)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		for _, v := range []any{s, x, map[string]any{s: []any{s, x}}} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := jsonSize(v); err != nil || got != len(b) {
				t.Fatalf("jsonSize(%#v) = %d, %v; json.Marshal gives %d", v, got, err, len(b))
			}
			if bound, ok := jsonSizeBound(v); !ok || bound < len(b) {
				t.Fatalf("jsonSizeBound(%#v) = %d, %v; json.Marshal gives %d", v, bound, ok, len(b))
			}
		}
	})
}
