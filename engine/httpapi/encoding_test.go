package httpapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/engine"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestContentEncoding is the regression test of gzip bodies refused as
// "not valid UTF-8": a gzip body is decoded, with the body limit applied
// to the decoded size, and any other encoding is refused with 415 naming
// it.
func TestContentEncoding(t *testing.T) {
	eng := openTestEngine(t, "testdata/rules.yaml")
	h := New(eng, Options{MaxBodyBytes: 4096})
	identify := `{"events":[{"type":"identify","traits":{"plan":"pro"}}]}`

	a := do(t, h, "POST", base+"/profiles/z-1", gzipped(t, identify), map[string]string{"Content-Encoding": "gzip"})
	if a.status != 200 || profileOf(t, a).Traits["plan"] != "pro" {
		t.Fatalf("gzip body: %s", a.raw)
	}
	a = do(t, h, "POST", base+"/profiles/z-1", gzipped(t, identify), map[string]string{"Content-Encoding": "x-gzip"})
	if a.status != 200 {
		t.Fatalf("x-gzip body: %s", a.raw)
	}
	a = do(t, h, "POST", base+"/profiles/z-1", identify, map[string]string{"Content-Encoding": "identity"})
	if a.status != 200 {
		t.Fatalf("identity body: %s", a.raw)
	}

	// A small gzip body that decodes past the limit (a zip bomb) is 413.
	bomb := `{"events":[{"type":"page","properties":{"x":"` + strings.Repeat("a", 1<<20) + `"}}]}`
	if z := gzipped(t, bomb); len(z) > 4096 {
		t.Fatalf("bomb is %d bytes compressed", len(z))
	}
	a = do(t, h, "POST", base+"/profiles/z-2", gzipped(t, bomb), map[string]string{"Content-Encoding": "gzip"})
	if a.status != 413 || a.Error.Code != "ERR_PAYLOAD_TOO_LARGE" || !strings.Contains(a.Message, "decoded") {
		t.Errorf("gzip bomb: %d %s", a.status, a.raw)
	}
	for _, tc := range []struct {
		enc, body string
		status    int
		code, msg string
	}{
		{"gzip", identify, 400, "ERR_INVALID_DATA", "gzip"},
		{"br", identify, 415, "ERR_UNSUPPORTED_MEDIA_TYPE", `"br"`},
		{"deflate", identify, 415, "ERR_UNSUPPORTED_MEDIA_TYPE", `"deflate"`},
		{"gzip, br", identify, 415, "ERR_UNSUPPORTED_MEDIA_TYPE", `"gzip, br"`},
	} {
		a := do(t, h, "POST", base+"/profiles/z-3", tc.body, map[string]string{"Content-Encoding": tc.enc})
		if a.status != tc.status || a.Error == nil || a.Error.Code != tc.code || !strings.Contains(a.Message, tc.msg) {
			t.Errorf("Content-Encoding %s: %d %s, want %d %s naming %s", tc.enc, a.status, a.raw, tc.status, tc.code, tc.msg)
		}
		if strings.Contains(a.Message, "UTF-8") {
			t.Errorf("Content-Encoding %s: misleading message %q", tc.enc, a.Message)
		}
	}
	if a := do(t, h, "GET", base+"/profiles/z-2", "", nil); a.status != 404 {
		t.Errorf("a refused body wrote a profile: %s", a.raw)
	}
	if a := do(t, h, "GET", base+"/profiles/z-3", "", nil); a.status != 404 {
		t.Errorf("a refused body wrote a profile: %s", a.raw)
	}
}

// TestDocListsEveryError checks that the error table of the package
// documentation lists every status and code the handler answers with: the
// codes in the package's source, and the status classify gives each
// engine error.
func TestDocListsEveryError(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{} // "403 ERR_IDENTITY_UNVERIFIED"
	for _, m := range regexp.MustCompile(`(?m)^//\s+(\d{3}) (ERR_[A-Z_]+)`).FindAllStringSubmatch(string(doc), -1) {
		table[m[1]+" "+m[2]] = true
	}
	documented := func(status int, code string) bool { return table[strconv.Itoa(status)+" "+code] }

	for _, err := range []error{
		&engine.InputError{Field: "f", Reason: "r"}, engine.ErrInvalidInput, engine.ErrNotFound,
		engine.ErrIdentityUnverified, engine.ErrDiskFull, engine.ErrOverload, engine.ErrQueueFull,
		engine.ErrClosed, context.DeadlineExceeded, context.Canceled, errors.New("anything else"),
	} {
		if ae := classify(err); !documented(ae.Status, ae.Code) {
			t.Errorf("doc.go's error table lacks %d %s (%v)", ae.Status, ae.Code, err)
		}
	}
	// Codes built in the handler itself.
	var codes []string
	for _, name := range []string{"httpapi.go", "codec.go", "clientip.go"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`"(ERR_[A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
			codes = append(codes, m[1])
		}
	}
	sort.Strings(codes)
	for _, code := range codes {
		found := false
		for k := range table {
			found = found || strings.HasSuffix(k, " "+code)
		}
		if !found {
			t.Errorf("doc.go's error table lacks %s", code)
		}
	}
}
