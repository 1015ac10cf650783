package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const rulesV1 = `audiences:
  - id: audience-pro
    when: traits.plan == "pro"
experiences: []
`

const rulesV2 = `audiences:
  - id: audience-pro
    when: traits.plan == "pro"
  - id: audience-everyone
    when: "true"
experiences: []
`

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	url     string
	logs    *syncBuffer
	hup     chan os.Signal
	stop    context.CancelFunc
	done    chan error
	rules   string
	dataDir string

	once    sync.Once
	stopErr error
}

// shutdown stops the server as SIGTERM would and returns run's error; it
// is safe to call more than once.
func (ts *testServer) shutdown(t *testing.T) error {
	ts.once.Do(func() {
		ts.stop()
		select {
		case ts.stopErr = <-ts.done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	return ts.stopErr
}

// startServer runs the server on a loopback port with a rules file and the
// given extra arguments; it stops (and checks the shutdown) at cleanup.
func startServer(t *testing.T, env map[string]string, extra ...string) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{logs: &syncBuffer{}, hup: make(chan os.Signal, 1), done: make(chan error, 1),
		rules: filepath.Join(dir, "rules.yaml"), dataDir: filepath.Join(dir, "data")}
	if err := os.WriteFile(ts.rules, []byte(rulesV1), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-addr", "127.0.0.1:0", "-data", ts.dataDir, "-rules", ts.rules, "-rules-poll", "20ms"}, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	ready := make(chan string, 1)
	go func() { ts.done <- run(ctx, args, func(k string) string { return env[k] }, ts.logs, ts.hup, ready) }()
	select {
	case addr := <-ready:
		ts.url = "http://" + addr
	case err := <-ts.done:
		cancel()
		t.Fatalf("server did not start: %v\n%s", err, ts.logs)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("server did not start in time")
	}
	t.Cleanup(func() {
		if err := ts.shutdown(t); err != nil {
			t.Errorf("run: %v\n%s", err, ts.logs)
		}
	})
	return ts
}

func (ts *testServer) post(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	r, err := http.Post(ts.url+path, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("POST %s: %d %q", path, r.StatusCode, b)
	}
	return r.StatusCode, v
}

// newRequest sends a request with a text/plain body and returns the answer.
func newRequest(method, url, body string, hdr map[string]string) (string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "text/plain")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	return string(b), err
}

func audiences(v map[string]any) []string {
	var out []string
	data, _ := v["data"].(map[string]any)
	prof, _ := data["profile"].(map[string]any)
	list, _ := prof["audiences"].([]any)
	for _, a := range list {
		out = append(out, a.(string))
	}
	return out
}

const identifyPro = `{"events":[{"type":"identify","userId":"u1","traits":{"plan":"pro"},"timestamp":"2026-06-13T10:05:00Z"}]}`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServerServesAndReloadsRules(t *testing.T) {
	ts := startServer(t, nil)

	r, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("healthz %s", r.Status)
	}

	const p = "/v2/organizations/o/environments/main/profiles/visitor-1"
	status, v := ts.post(t, p, identifyPro)
	if status != 200 || !slices.Equal(audiences(v), []string{"audience-pro"}) {
		t.Fatalf("first request: %d %v", status, v)
	}

	// A changed file is picked up by the poller.
	if err := os.WriteFile(ts.rules, []byte(rulesV2), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Second)
	os.Chtimes(ts.rules, future, future)
	waitFor(t, "rules v2", func() bool {
		_, v := ts.post(t, p, identifyPro)
		return slices.Equal(audiences(v), []string{"audience-pro", "audience-everyone"})
	})

	// An invalid file is logged and ignored: the old rules keep serving.
	if err := os.WriteFile(ts.rules, []byte("audiences:\n  - id: broken\n    when: traits.plan ==\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future = future.Add(time.Second)
	os.Chtimes(ts.rules, future, future)
	waitFor(t, "reload failure logged", func() bool { return strings.Contains(ts.logs.String(), "rules reload failed") })
	if _, v := ts.post(t, p, identifyPro); !slices.Equal(audiences(v), []string{"audience-pro", "audience-everyone"}) {
		t.Fatalf("invalid file replaced the rules: %v", v)
	}

	// SIGHUP reloads even when the file looks unchanged.
	if err := os.WriteFile(ts.rules, []byte(rulesV1), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(ts.rules, future, future) // same mtime as the broken file...
	ts.hup <- os.Interrupt               // ...so only the signal can trigger this reload
	waitFor(t, "SIGHUP reload", func() bool {
		_, v := ts.post(t, p, identifyPro)
		return slices.Equal(audiences(v), []string{"audience-pro"})
	})

	for _, line := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
}

func TestServerNamespaceAndEnvConfig(t *testing.T) {
	ts := startServer(t, map[string]string{"TAILOR_ORG": "acme", "TAILOR_ENV": "main", "TAILOR_ORIGINS": "https://shop.example"})
	status, v := ts.post(t, "/v2/organizations/other/environments/main/profiles", identifyPro)
	if status != 404 || v["error"].(map[string]any)["code"] != "ERR_NAMESPACE_MISMATCH" {
		t.Fatalf("other org: %d %v", status, v)
	}
	req, _ := http.NewRequest("OPTIONS", ts.url+"/v2/organizations/acme/environments/main/profiles", nil)
	req.Header.Set("Origin", "https://shop.example")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != "https://shop.example" {
		t.Fatalf("CORS origin from TAILOR_ORIGINS: %q", got)
	}
}

// TestServerKeepsAcknowledgedWrites restarts the server on the same data
// directory: what was answered 200 before the shutdown is there after it.
func TestServerKeepsAcknowledgedWrites(t *testing.T) {
	ts := startServer(t, nil)
	const p = "/v2/organizations/o/environments/main/profiles/durable-1"
	if status, v := ts.post(t, p, identifyPro); status != 200 {
		t.Fatalf("%d %v", status, v)
	}
	if err := ts.shutdown(t); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	ts2 := startServer(t, nil, "-data", ts.dataDir)
	r, err := http.Get(ts2.url + p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(b), `"plan":"pro"`) {
		t.Fatalf("after restart: %d %s", r.StatusCode, b)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(t *testing.T, c *config)
		wantErr string
	}{
		{name: "defaults", check: func(t *testing.T, c *config) {
			if c.addr != "127.0.0.1:8080" || !c.sync || c.inMemory || !slices.Equal(c.origins, []string{"*"}) || c.trustedProxies != nil {
				t.Errorf("%+v", c)
			}
		}},
		{name: "env sets, flag wins", args: []string{"-addr", ":9000"},
			env: map[string]string{"TAILOR_ADDR": ":7000", "TAILOR_DATA": "/d", "TAILOR_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,::1", "TAILOR_ORIGINS": "https://a.example, https://b.example"},
			check: func(t *testing.T, c *config) {
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("::1/128")}
				if c.addr != ":9000" || c.data != "/d" || !slices.Equal(c.trustedProxies, want) ||
					!slices.Equal(c.origins, []string{"https://a.example", "https://b.example"}) {
					t.Errorf("%+v", c)
				}
			}},
		{name: "bad proxy", args: []string{"-trusted-proxies", "10.0.0.0/33"}, wantErr: "-trusted-proxies"},
		{name: "bad env value", env: map[string]string{"TAILOR_SYNC": "maybe"}, wantErr: "TAILOR_SYNC"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestServerRefusesBadRulesAtStart(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "rules.yaml")
	os.WriteFile(bad, []byte("audiences: [{id: x, when: \"1 +\"}]\n"), 0o644)
	err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-in-memory", "-rules", bad},
		func(string) string { return "" }, io.Discard, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "rules") {
		t.Fatalf("run with an invalid rules file: %v", err)
	}
}

// TestServerFinishesInFlightRequests starts a shutdown while a request's
// body is still arriving: the request is answered in full, and the write it
// acknowledged is on disk for the next start.
func TestServerFinishesInFlightRequests(t *testing.T) {
	ts := startServer(t, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const p = "/v2/organizations/o/environments/main/profiles/inflight-1"
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n", p, len(identifyPro))
	half := len(identifyPro) / 2
	if _, err := io.WriteString(conn, identifyPro[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the server is now reading the body

	stopped := make(chan error, 1)
	go func() { stopped <- ts.shutdown(t) }()
	waitFor(t, "shutdown to begin", func() bool { return strings.Contains(ts.logs.String(), "shutting down") })
	select {
	case err := <-stopped:
		t.Fatalf("shutdown finished before the in-flight request: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := io.WriteString(conn, identifyPro[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"plan":"pro"`) {
		t.Fatalf("in-flight request: %d %s", resp.StatusCode, b)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	ts2 := startServer(t, nil, "-data", ts.dataDir)
	got, err := newRequest("GET", ts2.url+p, "", nil)
	if err != nil || !strings.Contains(got, `"plan":"pro"`) {
		t.Fatalf("after restart: %v %s", err, got)
	}
}
