package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tailorhq/tailor/engine"
	"github.com/tailorhq/tailor/rules"
)

// rulesObserved match every visitor and expose each new profile to one
// 50/50 experience.
const rulesObserved = `audiences:
  - id: everyone
    when: "true"
experiences:
  - id: exp-a
    audience: everyone
    distribution: [0.5, 0.5]
`

const (
	apiBase       = "/v2/organizations/o/environments/main"
	routeCreate   = "/v2/organizations/{org}/environments/{env}/profiles"
	routeUpsert   = "/v2/organizations/{org}/environments/{env}/profiles/{id}"
	pageEvent     = `{"events":[{"type":"page","timestamp":"2026-06-13T10:00:00Z"}]}`
	identifyUser1 = `{"events":[{"type":"identify","userId":"user-1","timestamp":"2026-06-13T10:01:00Z"}]}`
)

// metricsAddr returns the address the server logged for its metrics
// listener.
func (ts *testServer) metricsAddr(t *testing.T) string {
	t.Helper()
	for _, line := range strings.Split(ts.logs.String(), "\n") {
		var v struct{ Msg, Addr string }
		if json.Unmarshal([]byte(line), &v) == nil && v.Msg == "serving metrics" {
			return v.Addr
		}
	}
	t.Fatalf("no metrics listener logged:\n%s", ts.logs)
	return ""
}

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", r.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// series returns the value of every series of a family (a counter's or
// gauge's value, a histogram's count) keyed by the labels named, as
// "name=value,..." in the order given; series whose labels differ only
// elsewhere are added up.
func series(mfs map[string]*dto.MetricFamily, family string, labels ...string) map[string]float64 {
	out := map[string]float64{}
	mf, ok := mfs[family]
	if !ok {
		return nil
	}
	for _, m := range mf.GetMetric() {
		var k []string
		for _, name := range labels {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == name {
					k = append(k, name+"="+lp.GetValue())
				}
			}
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		}
		out[strings.Join(k, ",")] += v
	}
	return out
}

func histSum(mfs map[string]*dto.MetricFamily, family string) float64 {
	var s float64
	for _, m := range mfs[family].GetMetric() {
		s += m.GetHistogram().GetSampleSum()
	}
	return s
}

func wantSeries(t *testing.T, family string, got, want map[string]float64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s = %v, want %v", family, got, want)
	}
}

// mustProfileID is profileID, failing t when v names no profile.
func mustProfileID(t *testing.T, v map[string]any) string {
	t.Helper()
	id := profileID(v)
	if id == "" {
		t.Fatalf("no profile id in %v", v)
	}
	return id
}

// TestServerMetrics sends a known sequence of requests — two profiles
// created, one bound to a user, one merged into it, one overloaded, one
// invalid — then scrapes /metrics and checks the counts exactly: the
// engine's, the HTTP server's per route and status, and the reloads.
func TestServerMetrics(t *testing.T) {
	ts := startServer(t, nil, "-metrics-addr", "127.0.0.1:0", "-in-memory", "-sync=false", "-rules-poll", "0",
		"-profile-rate", "0.001", "-profile-burst", "1") // a second call on a named profile is refused
	if err := os.WriteFile(ts.rules, []byte(rulesObserved), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.hup <- os.Interrupt // reload the rules
	waitFor(t, "rules with an experience", func() bool { return strings.Contains(ts.logs.String(), `"experiences":1`) })

	status := func(want int, path, body string) map[string]any {
		t.Helper()
		got, v := ts.post(t, apiBase+path, body)
		if got != want {
			t.Fatalf("POST %s %s: %d %v, want %d", path, body, got, v, want)
		}
		return v
	}
	a := mustProfileID(t, status(200, "/profiles", pageEvent))                         // created
	status(200, "/profiles/"+a, identifyUser1)                                         // bound to user-1
	b := mustProfileID(t, status(200, "/profiles", pageEvent))                         // created
	if got := mustProfileID(t, status(200, "/profiles/"+b, identifyUser1)); got != a { // merged
		t.Fatalf("merge continued on %s, want %s", got, a)
	}
	status(429, "/profiles/"+b, pageEvent)                                       // overloaded
	status(400, "/profiles", `{"events":[{"type":"page"},{"type":"teleport"}]}`) // invalid

	mfs := scrape(t, ts.metricsAddr(t))
	outcomes := map[string]float64{"tailor_outcome=ok": 4, "tailor_outcome=overload": 1, "tailor_outcome=invalid": 1}
	wantSeries(t, "tailor_identify_calls_total", series(mfs, "tailor_identify_calls_total", "tailor_outcome"), outcomes)
	wantSeries(t, "tailor_identify_duration_seconds", series(mfs, "tailor_identify_duration_seconds", "tailor_outcome"), outcomes)
	wantSeries(t, "tailor_merges_total", series(mfs, "tailor_merges_total"), map[string]float64{"": 1})
	wantSeries(t, "tailor_identify_audiences", series(mfs, "tailor_identify_audiences"), map[string]float64{"": 4})
	if s := histSum(mfs, "tailor_identify_audiences"); s != 4 {
		t.Errorf("audiences matched: %v in all, want 4 (everyone, 4 times)", s)
	}
	// Each created profile is exposed once to exp-a; the merge keeps a's.
	wantSeries(t, "tailor_exposures_total", series(mfs, "tailor_exposures_total", "tailor_experience_id"),
		map[string]float64{"tailor_experience_id=exp-a": 2})
	wantSeries(t, "http_server_request_duration_seconds",
		series(mfs, "http_server_request_duration_seconds", "http_request_method", "http_route", "http_response_status_code"),
		map[string]float64{
			"http_request_method=POST,http_route=" + routeCreate + ",http_response_status_code=200": 2,
			"http_request_method=POST,http_route=" + routeCreate + ",http_response_status_code=400": 1,
			"http_request_method=POST,http_route=" + routeUpsert + ",http_response_status_code=200": 2,
			"http_request_method=POST,http_route=" + routeUpsert + ",http_response_status_code=429": 1,
		})
	wantSeries(t, "tailor_rules_reloads_total", series(mfs, "tailor_rules_reloads_total", "tailor_outcome"),
		map[string]float64{"tailor_outcome=ok": 1})
	set, err := rules.Load(ts.rules)
	if err != nil {
		t.Fatal(err)
	}
	wantSeries(t, "tailor_rules_version", series(mfs, "tailor_rules_version", "tailor_rules_digest"),
		map[string]float64{"tailor_rules_digest=" + engine.RulesDigest(set): 2})
	// The store and the runtime report too; their counts depend on the
	// store's work, not on the requests alone.
	for _, family := range []string{"tailor_store_operation_duration_seconds", "tailor_store_commit_batch_size",
		"tailor_cache_lookups_total", "go_goroutine_count", "go_memory_used_bytes"} {
		if len(series(mfs, family)) == 0 {
			t.Errorf("%s not reported", family)
		}
	}
	wantSeries(t, "tailor_import_queue_depth", series(mfs, "tailor_import_queue_depth"), map[string]float64{"": 0})
	for name := range mfs {
		for _, m := range mfs[name].GetMetric() {
			for _, lp := range m.GetLabel() {
				if v := lp.GetValue(); v == a || v == b || v == "user-1" {
					t.Errorf("%s has label %s=%q: a profile or user id", name, lp.GetName(), v)
				}
			}
		}
	}

	// A bad rules file is counted as a failed reload.
	if err := os.WriteFile(ts.rules, []byte("audiences: [{id: x, when: 'nope('}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.hup <- os.Interrupt
	waitFor(t, "reload failure logged", func() bool { return strings.Contains(ts.logs.String(), "rules reload failed") })
	wantSeries(t, "tailor_rules_reloads_total", series(scrape(t, ts.metricsAddr(t)), "tailor_rules_reloads_total", "tailor_outcome"),
		map[string]float64{"tailor_outcome=ok": 1, "tailor_outcome=failed": 1})
}

// TestServerMetricsOnDisk checks the store's size and the disk guard's
// free space, that the dashboard queries only metrics the server exports
// and the README describes all of them, and that there is no metrics
// listener by default, one with TAILOR_METRICS_ADDR.
func TestServerMetricsOnDisk(t *testing.T) {
	ts := startServer(t, nil, "-metrics-addr", "127.0.0.1:0", "-rules-poll", "0")
	if err := os.WriteFile(ts.rules, []byte(rulesObserved), 0o644); err != nil {
		t.Fatal(err)
	}
	ts.hup <- os.Interrupt
	waitFor(t, "rules with an experience", func() bool { return strings.Contains(ts.logs.String(), `"experiences":1`) })
	a := mustProfileID(t, must200(t, ts, "/profiles", pageEvent))
	must200(t, ts, "/profiles/"+a, identifyUser1)
	b := mustProfileID(t, must200(t, ts, "/profiles", pageEvent))
	must200(t, ts, "/profiles/"+b, identifyUser1) // merged
	ts.post(t, apiBase+"/profiles", `{"events":[{"type":"teleport"}]}`)
	mfs := scrape(t, ts.metricsAddr(t))
	checkDashboard(t, mfs)
	checkDocumented(t, mfs)
	if v := series(mfs, "tailor_store_size_bytes", "tailor_store_part")["tailor_store_part=vlog"]; v <= 0 {
		t.Errorf("vlog size %v", v)
	}
	if v := series(mfs, "tailor_disk_free_bytes")[""]; v <= 0 {
		t.Errorf("free space %v", v)
	}
	wantSeries(t, "tailor_disk_free_limit_bytes", series(mfs, "tailor_disk_free_limit_bytes"),
		map[string]float64{"": engine.DefaultMinFreeBytes})

	plain := startServer(t, nil)
	if strings.Contains(plain.logs.String(), "serving metrics") {
		t.Error("metrics served without -metrics-addr")
	}
	byEnv := startServer(t, map[string]string{"TAILOR_METRICS_ADDR": "127.0.0.1:0"})
	if len(scrape(t, byEnv.metricsAddr(t))) == 0 {
		t.Error("TAILOR_METRICS_ADDR: nothing served")
	}
}

func must200(t *testing.T, ts *testServer, path, body string) map[string]any {
	t.Helper()
	status, v := ts.post(t, apiBase+path, body)
	if status != 200 {
		t.Fatalf("POST %s: %d %v", path, status, v)
	}
	return v
}

// lateMetrics are the dashboard's metrics a short test run does not
// produce, each with the reason.
var lateMetrics = map[string]string{
	"tailor_store_gc_reclaimed_bytes_total": "after the first value-log GC round, a minute after start",
	"tailor_store_gc_rounds_total":          "after the first value-log GC round",
	"tailor_store_gc_rewrites_total":        "after the first value-log GC round",
	"tailor_store_live_data_bytes":          "measured by the GC loop when it starts, in the background",
	"tailor_import_delay_seconds":           "after an imported batch is applied",
	"tailor_conflict_retries_total":         "only with a store shared by several processes",
}

// checkDashboard checks that every panel of grafana-dashboard.json
// queries only metrics in mfs (or lateMetrics) and is described in the
// README beside it.
func checkDashboard(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	raw, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type, Title, Description string
			Targets                  []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	name := regexp.MustCompile(`\b(?:tailor|http|go)_[a-z0-9_]+`)
	labels := regexp.MustCompile(`\{[^}]*\}|\b(?:by|without)\s*\([^)]*\)`) // label names and matchers
	panels := 0
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		if p.Description == "" || !strings.Contains(string(readme), "**"+p.Title+"**") {
			t.Errorf("panel %q has no description, or none in README.md", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q queries nothing", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range name.FindAllString(labels.ReplaceAllString(q.Expr, ""), -1) {
				family := m
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					f, ok := strings.CutSuffix(m, suffix)
					if ok && (mfs[f].GetType() == dto.MetricType_HISTOGRAM || lateMetrics[f] != "") {
						family = f
					}
				}
				if mfs[family] == nil && lateMetrics[family] == "" {
					t.Errorf("panel %q queries %s, which the server does not export", p.Title, m)
				}
			}
		}
	}
	if panels < 10 {
		t.Errorf("%d panels", panels)
	}
}

// checkDocumented checks that every tailor.* metric the server exports is
// in the metric table of the top-level README.
func checkDocumented(t *testing.T, mfs map[string]*dto.MetricFamily) {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`(tailor\\.[a-z0-9._]+)`").FindAllStringSubmatch(string(readme), -1) {
		documented[strings.ReplaceAll(m[1], ".", "_")] = true
	}
	for family := range mfs {
		if !strings.HasPrefix(family, "tailor_") {
			continue
		}
		base := strings.TrimSuffix(family, "_total")
		for _, unit := range []string{"_seconds", "_bytes"} {
			base = strings.TrimSuffix(base, unit)
		}
		if !documented[base] {
			t.Errorf("%s is not in the README's metric table", family)
		}
	}
}

// otlpReceiver is an OTLP/HTTP trace receiver: it keeps the spans of every
// export request it is sent.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			o.spans = append(o.spans, ss.GetSpans()...)
		}
	}
	o.mu.Unlock()
	b, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(b)
}

// TestServerTraces sends a request carrying a traceparent header to a
// server exporting to an OTLP receiver: the request's span continues the
// caller's trace and the engine's spans hang below it.
func TestServerTraces(t *testing.T) {
	recv := &otlpReceiver{}
	collector := httptest.NewServer(recv)
	defer collector.Close()
	ts := startServer(t, nil, "-otlp-endpoint", collector.URL, "-in-memory")

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	body, err := newRequest("POST", ts.url+apiBase+"/profiles/visitor-9", pageEvent,
		map[string]string{"traceparent": "00-" + traceID + "-" + parentID + "-01"})
	if err != nil || !strings.Contains(body, `"visitor-9"`) {
		t.Fatalf("request: %v %s", err, body)
	}
	if err := ts.shutdown(t); err != nil { // flushes the spans
		t.Fatal(err)
	}

	recv.mu.Lock()
	defer recv.mu.Unlock()
	byName := map[string]*tracepb.Span{}
	var names []string
	for _, s := range recv.spans {
		byName[s.GetName()] = s
		names = append(names, s.GetName())
		if got := fmt.Sprintf("%x", s.GetTraceId()); got != traceID {
			t.Errorf("span %s in trace %s, want the caller's %s", s.GetName(), got, traceID)
		}
		for _, kv := range s.GetAttributes() {
			v := kv.GetValue().GetStringValue()
			if strings.Contains(v, "visitor-9") || strings.Contains(v, "127.0.0.1") && kv.GetKey() != "server.address" {
				t.Errorf("span %s attribute %s = %q holds the profile id or the client's address", s.GetName(), kv.GetKey(), v)
			}
		}
	}
	slices.Sort(names)
	want := []string{"POST " + routeUpsert, engine.SpanCommit, engine.SpanEvaluate, engine.SpanIdentify, engine.SpanLoad}
	if !slices.Equal(names, want) {
		t.Fatalf("spans %v, want %v", names, want)
	}
	server := byName["POST "+routeUpsert]
	attrs := map[string]string{}
	for _, kv := range server.GetAttributes() {
		attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	if attrs["url.path"] != apiBase+"/profiles/REDACTED" || attrs["client.address"] != "REDACTED" {
		t.Errorf("request span attributes %v: want url.path and client.address redacted", attrs)
	}
	if got := fmt.Sprintf("%x", server.GetParentSpanId()); got != parentID {
		t.Errorf("request span's parent %s, want the traceparent's %s", got, parentID)
	}
	if !slices.Equal(byName[engine.SpanIdentify].GetParentSpanId(), server.GetSpanId()) {
		t.Error("the Identify span is not a child of the request's span")
	}
	for _, step := range []string{engine.SpanLoad, engine.SpanEvaluate, engine.SpanCommit} {
		if !slices.Equal(byName[step].GetParentSpanId(), byName[engine.SpanIdentify].GetSpanId()) {
			t.Errorf("%s is not a child of %s", step, engine.SpanIdentify)
		}
	}
}

func TestOTLPTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://localhost:4318":           "http://localhost:4318/v1/traces",
		"https://collector:4318/":         "https://collector:4318/v1/traces",
		"http://gateway/otlp/v1/traces":   "http://gateway/otlp/v1/traces",
		"localhost:4318":                  "",
		"ftp://collector:4318":            "",
		"http://":                         "",
		"http://collector:4318/?x=1#frag": "http://collector:4318/v1/traces?x=1#frag",
	} {
		got, err := otlpTracesURL(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("otlpTracesURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		apiBase + "/profiles/abc":    apiBase + "/profiles/REDACTED",
		apiBase + "/profiles":        apiBase + "/profiles",
		apiBase + "/profiles/":       apiBase + "/profiles/",
		"/a/profiles/x/profiles/y/z": "/a/profiles/REDACTED/profiles/REDACTED/z",
		apiBase + "/events":          apiBase + "/events",
	} {
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}
