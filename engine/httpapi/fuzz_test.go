package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

// FuzzHandler feeds arbitrary methods, paths, content types and bodies
// through the handler over a real (in-memory) engine: it must never panic
// or answer 5xx, every answer but a CORS preflight must be the JSON
// envelope, and a body that is not a JSON object must get a 4xx. The
// committed corpus is testdata/fuzz/FuzzHandler.
func FuzzHandler(f *testing.F) {
	eng, err := engine.Open("", &engine.Options{InMemory: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close() })
	h := New(eng, Options{MaxBodyBytes: 4096})

	f.Add(uint8(1), base+"/profiles", "text/plain", []byte(pageBody))
	f.Add(uint8(1), base+"/events", "application/json", []byte(`{"events":[{"type":"track","event":"x","anonymousId":"a"}]}`))
	f.Add(uint8(0), base+"/profiles/p?locale=de&type=preflight", "", []byte(nil))
	f.Add(uint8(2), base+"/profiles/p", "", []byte(nil))
	f.Add(uint8(1), base+"/import/events", "text/plain", []byte(`{"events":[{"type":1}]}`))
	f.Add(uint8(1), base+"/profiles", "text/plain", []byte(`{"events":[`))
	f.Add(uint8(3), base+"/profiles", "", []byte(nil))
	f.Fuzz(func(t *testing.T, m uint8, target, contentType string, body []byte) {
		methods := []string{"GET", "POST", "DELETE", "OPTIONS", "PUT", "PATCH", "HEAD"}
		method := methods[int(m)%len(methods)]
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // not something an HTTP server would route
		}
		r := &http.Request{
			Method:     method,
			URL:        u,
			RequestURI: target,
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header:     http.Header{"Content-Type": {contentType}},
			Body:       http.NoBody,
			Host:       "example.com",
			RemoteAddr: "192.0.2.1:1234",
		}
		if body != nil {
			r.Body = httpBody(body)
			r.ContentLength = int64(len(body))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		if method == "OPTIONS" {
			if w.Code != http.StatusNoContent {
				t.Fatalf("OPTIONS answered %d", w.Code)
			}
			return
		}
		if w.Code >= 500 && !strings.Contains(w.Body.String(), "ERR_QUEUE_FULL") {
			t.Fatalf("%s %q: status %d: %s", method, target, w.Code, w.Body)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %q: answer is not JSON: %v: %q", method, target, err, w.Body)
		}
		if _, ok := env["data"]; !ok || env["message"] == nil || env["error"] == nil {
			t.Fatalf("%s %q: answer is not the envelope: %s", method, target, w.Body)
		}
		if w.Code != http.StatusOK && !strings.HasPrefix(string(env["error"]), `{"code":"ERR_`) {
			t.Fatalf("%s %q: error without code: %s", method, target, w.Body)
		}
		var obj map[string]json.RawMessage
		if method == "POST" && w.Code == http.StatusOK && json.Unmarshal(body, &obj) != nil {
			t.Fatalf("POST %q: body %q is not a JSON object but was accepted", target, body)
		}
	})
}

func httpBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
