package main

// Telemetry of the server: the engine's metrics (tailor.*), HTTP server
// metrics (http.server.request.duration per route and status) and Go
// runtime metrics (go.*) served to Prometheus at /metrics on a listener
// of its own (-metrics-addr), and traces exported over OTLP/HTTP
// (-otlp-endpoint), each only when its flag is set. Both go through the
// OpenTelemetry SDK: one MeterProvider read by the OpenTelemetry
// Prometheus exporter, one TracerProvider with a batching OTLP exporter.
// They are the server's own, handed to the engine and to the HTTP
// middleware (otelhttp) explicitly: package otel's globals stay unset.
//
// Incoming requests continue the trace of their W3C traceparent header
// (and carry its baggage); the engine's Identify span is a child of the
// request's span. The request spans hold no personal data: the profile id
// in a path (a bearer credential) and the client's IP address are
// replaced by REDACTED, as the semantic conventions scrub credentials
// from URLs.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/contrib/instrumentation/runtime"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tailorhq/tailor/engine"
)

// httpDurationBuckets replace the semantic conventions' default buckets
// of http.server.request.duration, which start at 5 ms: most tailor
// requests take less, and p50 would not be told apart from zero.
var httpDurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// telemetry is the server's OpenTelemetry setup.
type telemetry struct {
	mp *sdkmetric.MeterProvider // nil without -metrics-addr
	tp *sdktrace.TracerProvider // nil without -otlp-endpoint

	metricsLn  net.Listener
	metricsSrv *http.Server
	served     chan error
}

// newTelemetry sets up what cfg asks for and starts the metrics listener.
// The caller must call shutdown.
func newTelemetry(ctx context.Context, cfg *config, log *slog.Logger) (*telemetry, error) {
	t := &telemetry{}
	if cfg.metricsAddr == "" && cfg.otlpEndpoint == "" {
		return t, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "tailor")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("telemetry resource: %w", err)
	}
	if cfg.otlpEndpoint != "" {
		endpoint, err := otlpTracesURL(cfg.otlpEndpoint)
		if err != nil {
			return nil, fmt.Errorf("-otlp-endpoint: %w", err)
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
		if err != nil {
			return nil, fmt.Errorf("-otlp-endpoint: %w", err)
		}
		t.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res),
			sdktrace.WithSpanProcessor(redactor{sdktrace.NewBatchSpanProcessor(exp)}))
	}
	if cfg.metricsAddr != "" {
		if err := t.startMetrics(cfg.metricsAddr, res, log); err != nil {
			t.shutdown(context.Background())
			return nil, err
		}
	}
	return t, nil
}

// otlpTracesURL turns the base URL of an OTLP/HTTP receiver into the URL
// of its traces endpoint: /v1/traces is appended when the URL has no
// path, as OTEL_EXPORTER_OTLP_ENDPOINT is read.
func otlpTracesURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL (e.g. http://localhost:4318)", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/v1/traces"
	}
	return u.String(), nil
}

// startMetrics creates the MeterProvider, read by a Prometheus exporter
// into a registry of its own, with the Go runtime's metrics, and serves
// the registry at /metrics on addr.
func (t *telemetry) startMetrics(addr string, res *resource.Resource, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return fmt.Errorf("prometheus exporter: %w", err)
	}
	t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "http.server.request.duration"},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: httpDurationBuckets}})))
	if err := runtime.Start(runtime.WithMeterProvider(t.mp)); err != nil {
		return fmt.Errorf("runtime metrics: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("-metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	t.metricsLn = ln
	t.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	t.served = make(chan error, 1)
	go func() { t.served <- t.metricsSrv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", "/metrics")
	return nil
}

// meterProvider and tracerProvider are what the engine and the HTTP
// middleware get: the SDK's, or nil (the engine's no-op).
func (t *telemetry) meterProvider() metric.MeterProvider {
	if t.mp == nil {
		return nil
	}
	return t.mp
}

func (t *telemetry) tracerProvider() trace.TracerProvider {
	if t.tp == nil {
		return nil
	}
	return t.tp
}

// engineOptions hands the providers to the engine.
func (t *telemetry) engineOptions(o *engine.Options) {
	o.MeterProvider = t.meterProvider()
	o.TracerProvider = t.tracerProvider()
}

// handler wraps h in otelhttp's server middleware when there is anything
// to report: a span per request (continuing an incoming traceparent) and
// http.server.request.* metrics by method, route and status. The health
// check is left out of both. server is the listening address, reported as
// server.address and server.port (the Host header is the client's word).
func (t *telemetry) handler(h http.Handler, server string) http.Handler {
	if t.mp == nil && t.tp == nil {
		return h
	}
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	if t.mp != nil {
		mp = t.mp
	}
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	if t.tp != nil {
		tp = t.tp
	}
	return otelhttp.NewHandler(h, "tailor",
		otelhttp.WithMeterProvider(mp),
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithServerName(server),
		otelhttp.WithFilter(func(r *http.Request) bool { return r.URL.Path != "/healthz" }))
}

// redactor scrubs personal data from the attributes otelhttp gives a
// request's span, before the span goes on to the exporter's processor.
type redactor struct{ sdktrace.SpanProcessor }

// redacted is what replaces a scrubbed value, as in the semantic
// conventions' url.full.
const redacted = "REDACTED"

func (r redactor) OnStart(ctx context.Context, s sdktrace.ReadWriteSpan) {
	var fix []attribute.KeyValue
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "url.path":
			if p := redactPath(kv.Value.AsString()); p != kv.Value.AsString() {
				fix = append(fix, attribute.String(string(kv.Key), p))
			}
		case "client.address", "network.peer.address":
			fix = append(fix, attribute.String(string(kv.Key), redacted))
		}
	}
	s.SetAttributes(fix...) // a key set again replaces its value
	r.SpanProcessor.OnStart(ctx, s)
}

// redactPath replaces the segment after every "profiles" segment of p (a
// profile id) with REDACTED.
func redactPath(p string) string {
	segs := strings.Split(p, "/")
	for i := 0; i+1 < len(segs); i++ {
		if segs[i] == "profiles" && segs[i+1] != "" {
			segs[i+1] = redacted
		}
	}
	return strings.Join(segs, "/")
}

// shutdown stops the metrics listener, then flushes and stops the
// providers (the last spans are exported here).
func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	if t.metricsSrv != nil {
		errs = append(errs, t.metricsSrv.Shutdown(ctx))
		if err := <-t.served; !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if t.mp != nil {
		errs = append(errs, t.mp.Shutdown(ctx))
	}
	if t.tp != nil {
		errs = append(errs, t.tp.Shutdown(ctx))
	}
	return errors.Join(errs...)
}
