package main

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/storage/redis/redistest"
)

// TestServersShareRedis starts two servers on one Redis Cluster (as two
// replicas of a web app behind a load balancer): a profile written
// through one is read, updated and merged through the other, and both
// health checks report the store.
func TestServersShareRedis(t *testing.T) {
	srv := redistest.SharedCluster(t)
	flags := []string{"-redis", strings.Join(srv.Addrs, ","), "-redis-prefix", redistest.KeyPrefix(t)}
	a := startServer(t, nil, flags...)
	b := startServer(t, nil, flags...)
	for _, ts := range []*testServer{a, b} {
		if code, body := health(t, ts); code != 200 || body["store"] != "redis" || body["status"] != "ok" {
			t.Fatalf("healthz: %d %v", code, body)
		}
	}
	const base = "/v2/organizations/o/environments/main/profiles/"
	// Known on a, then the anonymous visitor on b identifies as the same
	// user: b merges it into a's profile.
	if status, v := a.post(t, base+"known-1", identifyPro); status != 200 || !slices.Contains(audiences(v), "audience-pro") {
		t.Fatalf("create on a: %d %v", status, v)
	}
	page := `{"events":[{"type":"page","context":{"page":{"url":"https://x.test/","path":"/","query":{},"referrer":"","search":""}}}]}`
	if status, _ := b.post(t, base+"anon-1", page); status != 200 {
		t.Fatalf("anonymous on b: %d", status)
	}
	status, v := b.post(t, base+"anon-1", identifyPro)
	if status != 200 || profileID(v) != "known-1" || !slices.Contains(audiences(v), "audience-pro") {
		t.Fatalf("identify on b: %d, profile %q %v; want the known profile from a", status, profileID(v), audiences(v))
	}
	// a sees the merge: the anonymous id resolves to the known profile.
	r, err := http.Get(a.url + base + "anon-1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var got map[string]any
	json.NewDecoder(r.Body).Decode(&got)
	if r.StatusCode != 200 || profileID(got) != "known-1" {
		t.Fatalf("GET anon-1 on a: %d %v", r.StatusCode, got)
	}
}

// TestHealthzReportsRedisDown: with the Redis server gone, /healthz
// answers 503 naming the store and the error.
func TestHealthzReportsRedisDown(t *testing.T) {
	srv := redistest.Standalone(t)
	ts := startServer(t, nil, "-redis", srv.Addrs[0], "-redis-prefix", redistest.KeyPrefix(t))
	if code, body := health(t, ts); code != 200 || body["store"] != "redis" {
		t.Fatalf("healthz: %d %v", code, body)
	}
	srv.Kill(t, srv.Addrs[0])
	if code, body := health(t, ts); code != 503 || body["status"] != "store unavailable" || body["error"] == "" {
		t.Fatalf("healthz with Redis down: %d %v", code, body)
	}
}

// TestRedisFlagsChecked: -redis-* without -redis, and -in-memory with
// -redis, are refused at start, naming the flag.
func TestRedisFlagsChecked(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-redis-tls"}, "-redis-*"},
		{[]string{"-redis", "127.0.0.1:1", "-in-memory"}, "-in-memory and -redis"},
		{[]string{"-redis", "127.0.0.1:1", "-redis-tls-ca", "x.pem"}, "-redis-tls-ca"},
	} {
		_, err := parseConfig(tt.args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want an error naming %s", tt.args, err, tt.want)
		}
	}
}

func health(t *testing.T, ts *testServer) (int, map[string]any) {
	t.Helper()
	r, err := http.Get(ts.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, v
}

func profileID(v map[string]any) string {
	data, _ := v["data"].(map[string]any)
	p, _ := data["profile"].(map[string]any)
	id, _ := p["id"].(string)
	return id
}
