package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"

	"github.com/tailorhq/tailor/bench/hist"
)

func sample() *Report {
	var h hist.Histogram
	for v := int64(1000); v < 2_000_000; v = v*11/10 + 1 {
		h.Record(v)
	}
	return &Report{
		Mode:      "identify-disk",
		Workload:  Workload{Kind: "mixed", Profiles: 1000, Audiences: 3, Experiences: 2, Concurrency: 2, Zipf: 1.1},
		Machine:   Machine{GoVersion: "go1.26", CPUs: 2, GOMAXPROCS: 2, CPUModel: "Test CPU"},
		Populate:  &Populate{Profiles: 1000, Seconds: 1, OpsPerSec: 1000},
		Ops:       h.Count(),
		Seconds:   1,
		OpsPerSec: float64(h.Count()),
		Latency:   LatencyOf(&h),
		Store:     &Store{LSMBytes: 1 << 20, VlogBytes: 3 << 20, DirBytes: 5 << 20},
		SlowestAudiences: []AudienceCost{
			{ID: "slow", When: "a &&\n b", MeanNs: 900, MatchRate: 0.25},
			{ID: "fast", When: strings.Repeat("x", 100), MeanNs: 50, MatchRate: 1},
		},
		Histogram: h.Buckets(),
		Metrics: []Metric{
			{Name: "tailor.identify.calls", Kind: KindCounter, Attributes: "tailor.outcome=ok", Value: 1234},
			{Name: "tailor.identify.duration", Unit: "s", Kind: KindHistogram, Value: 4, Count: 4, Sum: 0.0002, P50: 0.00005, P99: 0.0001},
			{Name: "tailor.store.size", Unit: "By", Kind: KindGauge, Attributes: "tailor.store.part=vlog", Value: 3 << 20},
		},
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	if err := sample().WriteText(&buf, 1); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	for _, want := range []string{"mode identify-disk", "zipf s=1.1", "Test CPU", "populate:   1000 profiles", "p99.9", "lsm 1.0 MiB, vlog 3.0 MiB", "slow", "a && b", "25.0%",
		"tailor.identify.calls{tailor.outcome=ok}  1234\n", "tailor.identify.duration  count 4  mean 50µs  p50 ≤ 50µs  p99 ≤ 100µs",
		"tailor.store.size{tailor.store.part=vlog}  3.0 MiB"} {
		if !strings.Contains(s, want) {
			t.Errorf("text report lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "fast") {
		t.Errorf("top 1 printed the second audience:\n%s", s)
	}
}

func TestWriteSVGIsWellFormed(t *testing.T) {
	for _, r := range []*Report{sample(), {Mode: "eval"}} {
		var buf bytes.Buffer
		if err := r.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		rects := countElements(t, buf.Bytes(), "rect")
		if len(r.Histogram) > 0 && rects < 5 {
			t.Fatalf("SVG has %d rects for a histogram of %d buckets", rects, len(r.Histogram))
		}
	}
}

func TestFormatters(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{Duration(850), "850ns"}, {Duration(12_340), "12.3µs"}, {Duration(4_560_000), "4.56ms"}, {Duration(1.2e9), "1.2s"},
		{Bytes(512), "512 B"}, {Bytes(1536), "1.5 KiB"}, {Bytes(3 << 30), "3.0 GiB"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// countElements returns how many elements named name the XML document
// svg holds, failing the test unless it is well-formed.
func countElements(t *testing.T, svg []byte, name string) int {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			n++
		}
	}
}
