package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkHandler measures a request through the handler and the real
// (in-memory) engine: the codec's cost is the difference to the engine's
// own Identify benchmarks.
func BenchmarkHandler(b *testing.B) {
	eng := openTestEngine(b, "testdata/rules.yaml")
	h := New(eng, Options{})
	body := strings.Replace(pageBody, `"context":{`, `"context":{"locale":"de-DE",`, 1)
	for _, bc := range []struct {
		name, method, path, body string
	}{
		{"upsert", "POST", base + "/profiles/bench-1?locale=en", body},
		{"preflight", "POST", base + "/profiles/bench-1?type=preflight", body},
		{"get", "GET", base + "/profiles/bench-1", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var rd io.Reader = http.NoBody
				if bc.body != "" {
					rd = strings.NewReader(bc.body)
				}
				r := httptest.NewRequest(bc.method, bc.path, rd)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
