package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// rawRequest sends method path exactly as given (no client-side cleaning)
// to the server at addr and returns the answer.
func rawRequest(t *testing.T, addr, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestServerUncleanPaths is the regression test of the server's ServeMux
// answering "..", "." and "//" paths with 307 redirects (which a client
// follows, re-sending a DELETE or POST elsewhere) before the API saw them:
// through the handler chain run builds, every unclean path gets the API's
// 404 envelope.
func TestServerUncleanPaths(t *testing.T) {
	ts := startServer(t, nil)
	addr := strings.TrimPrefix(ts.url, "http://")
	const api = "/v2/organizations/o/environments/main"
	if r, _ := rawRequest(t, addr, "POST", api+"/profiles/victim", identifyPro); r.StatusCode != 200 {
		t.Fatalf("seed: %s", r.Status)
	}
	for _, tc := range []struct{ method, path string }{
		{"GET", api + "/profiles/x/../victim"},
		{"DELETE", api + "/profiles/x/../victim"},
		{"POST", api + "/profiles/../profiles/victim"},
		{"GET", api + "/./profiles/victim"},
		{"POST", api + "/profiles/./victim"},
		{"GET", "/v2//organizations/o/environments/main/profiles/victim"},
		{"POST", "//v2/organizations/o/environments/main/profiles"},
		{"DELETE", api + "//profiles/victim"},
		{"POST", api + "/events/."},
		{"GET", "/./healthz"},
		{"GET", "//healthz"},
		{"GET", "/x/../healthz"},
		{"GET", "/.."},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r, b := rawRequest(t, addr, tc.method, tc.path, identifyPro)
			var env struct {
				Data  map[string]any `json:"data"`
				Error *struct {
					Code string `json:"code"`
				} `json:"error"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(b, &env); err != nil || r.StatusCode != http.StatusNotFound ||
				env.Error == nil || env.Error.Code != "ERR_NOT_FOUND" || env.Data == nil || env.Message == "" {
				t.Errorf("%s %s: %s %q, want 404 with the ERR_NOT_FOUND envelope", tc.method, tc.path, r.Status, b)
			}
			if loc := r.Header.Get("Location"); loc != "" {
				t.Errorf("redirects to %s", loc)
			}
		})
	}
	// The profile the unclean DELETE named is still there.
	if r, b := rawRequest(t, addr, "GET", api+"/profiles/victim", ""); r.StatusCode != 200 || !strings.Contains(string(b), `"plan":"pro"`) {
		t.Errorf("victim after the unclean requests: %s %s", r.Status, b)
	}
	if r, b := rawRequest(t, addr, "GET", "/healthz", ""); r.StatusCode != 200 || !strings.Contains(string(b), `"ok"`) {
		t.Errorf("healthz: %s %s", r.Status, b)
	}
}
