package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WriteSVG draws the latency histogram of r: share of operations per
// latency bin on a logarithmic time axis, with the p50, p99 and p99.9
// marks. The SVG is self-contained and hand-written (no dependency).
func (r *Report) WriteSVG(w io.Writer) error {
	const (
		width, height         = 800, 360
		left, right, top, bot = 60, 20, 40, 50
		bins                  = 80
	)
	pw, ph := float64(width-left-right), float64(height-top-bot)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	title := fmt.Sprintf("tailor bench %s: %d ops, %.0f ops/s, p99 %s", r.Mode, r.Ops, r.OpsPerSec, Duration(float64(r.Latency.P99)))
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))

	lo := math.Max(1, float64(r.Latency.Min))
	hi := math.Max(lo*10, float64(r.Latency.Max)+1)
	llo, lhi := math.Log10(lo), math.Log10(hi)
	x := func(ns float64) float64 {
		return float64(left) + pw*(math.Log10(math.Max(ns, lo))-llo)/(lhi-llo)
	}
	counts := make([]float64, bins)
	var total float64
	for _, bk := range r.Histogram {
		mid := math.Max(1, (float64(bk.Lo)+float64(bk.Hi))/2)
		i := int(float64(bins) * (math.Log10(math.Max(mid, lo)) - llo) / (lhi - llo))
		i = max(0, min(bins-1, i))
		counts[i] += float64(bk.Count)
		total += float64(bk.Count)
	}
	peak := 0.0
	for _, c := range counts {
		peak = math.Max(peak, c)
	}
	if peak > 0 {
		for i, c := range counts {
			if c == 0 {
				continue
			}
			x0 := float64(left) + pw*float64(i)/bins
			h := ph * c / peak
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4878cf"><title>%.2f%%</title></rect>`+"\n",
				x0, float64(top)+ph-h, pw/bins-1, h, 100*c/total)
		}
	}
	// Axes and decade ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%.0f" x2="%d" y2="%.0f" stroke="black"/>`+"\n", left, float64(top)+ph, width-right, float64(top)+ph)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%.0f" stroke="black"/>`+"\n", left, top, left, float64(top)+ph)
	for d := math.Ceil(llo); d <= lhi; d++ {
		tx := x(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="black"/>`+"\n", tx, float64(top)+ph, tx, float64(top)+ph+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", tx, float64(top)+ph+18, Duration(math.Pow(10, d)))
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">latency (log scale)</text>`+"\n", float64(left)+pw/2, height-10)
	if total > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%.1f%%</text>`+"\n", left-4, top+4, 100*peak/total)
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end">0</text>`+"\n", left-4, float64(top)+ph)
	for _, m := range []struct {
		name string
		v    int64
		col  string
	}{{"p50", r.Latency.P50, "#2a9d2a"}, {"p99", r.Latency.P99, "#e08000"}, {"p99.9", r.Latency.P999, "#c02020"}} {
		if m.v <= 0 {
			continue
		}
		mx := x(float64(m.v))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", mx, top, mx, float64(top)+ph, m.col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="%s">%s %s</text>`+"\n", mx+3, top+12, m.col, m.name, Duration(float64(m.v)))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
