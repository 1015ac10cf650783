package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServerAdminToken: TAILOR_ADMIN_TOKEN turns on the explain endpoint,
// served only with the token; a short token is refused at start.
func TestServerAdminToken(t *testing.T) {
	const token = "0123456789abcdef-admin"
	ts := startServer(t, map[string]string{"TAILOR_ADMIN_TOKEN": token})
	const p = "/v2/organizations/o/environments/main/profiles/admin-1"
	if status, v := ts.post(t, p, identifyPro); status != 200 {
		t.Fatalf("%d %v", status, v)
	}
	get := func(hdr map[string]string) (int, string) {
		req, _ := http.NewRequest("GET", ts.url+p+"/explain", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if status, body := get(nil); status != 401 || !strings.Contains(body, "ERR_UNAUTHORIZED") {
		t.Errorf("no token: %d %s", status, body)
	}
	if status, body := get(map[string]string{"Authorization": "Bearer " + token}); status != 200 ||
		!strings.Contains(body, `"id":"audience-pro","matched":true`) {
		t.Errorf("with token: %d %s", status, body)
	}

	if _, err := parseConfig([]string{"-admin-token", "short"}, func(string) string { return "" }, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "-admin-token") {
		t.Errorf("short token: %v", err)
	}
	// Without a token the endpoint does not exist.
	off := startServer(t, nil)
	r, err := http.Get(off.url + p + "/explain")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 404 {
		t.Errorf("admin off: %d", r.StatusCode)
	}
}
