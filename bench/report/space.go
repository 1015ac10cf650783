package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Space is the store's size on disk against its live data over the run,
// sampled during the measured phase and the idle time after it.
type Space struct {
	// IntervalSeconds is the time between samples, LiveIntervalSeconds
	// between counts of the live data; IdleSeconds the time the bench
	// kept sampling after the measured phase, without load.
	IntervalSeconds     float64 `json:"intervalSeconds"`
	LiveIntervalSeconds float64 `json:"liveIntervalSeconds"`
	IdleSeconds         float64 `json:"idleSeconds"`
	// LoadSeconds is when the measured phase ended, on the samples'
	// clock.
	LoadSeconds float64 `json:"loadSeconds"`
	// SamplerCPUSeconds is the CPU time the sampling itself took (its
	// thread's, getrusage), which the measured phase's CPU per op
	// includes for the samples taken under load.
	SamplerCPUSeconds float64 `json:"samplerCpuSeconds"`
	// SamplerLoadCPUSeconds is the part of it spent under load.
	SamplerLoadCPUSeconds float64 `json:"samplerLoadCpuSeconds"`

	// MaxLoadRatio is the largest DirBytes/LiveBytes of the samples under
	// load (the one at the end of the load included), at MaxLoadAt.
	MaxLoadRatio float64 `json:"maxLoadRatio"`
	MaxLoadAt    float64 `json:"maxLoadAtSeconds"`
	// EndRatio is the ratio of the last sample (the end of the idle time,
	// if any).
	EndRatio float64 `json:"endRatio"`
	// IdleTo15Seconds is how long after the load ended a sample first
	// showed a ratio ≤ 1.5; -1 when none did.
	IdleTo15Seconds float64 `json:"idleTo1_5Seconds"`

	Samples []SpaceSample `json:"samples"`
}

// SpaceSample is one measurement of the store.
type SpaceSample struct {
	// Seconds is the time since the measured phase started; Idle is set
	// for samples taken after it ended.
	Seconds float64 `json:"t"`
	Idle    bool    `json:"idle,omitempty"`
	// Ops is the number of operations done when the sample was taken.
	Ops uint64 `json:"ops"`
	// LSMBytes and VlogBytes are the store's Size; DirBytes the disk
	// usage of its whole directory (du), the size on disk.
	LSMBytes  int64 `json:"lsmBytes"`
	VlogBytes int64 `json:"vlogBytes"`
	DirBytes  int64 `json:"dirBytes"`
	// LiveKeys and LiveBytes are the keys the store holds and the sum of
	// their key and value lengths (badger.Store.Live), as counted at
	// LiveAt (seconds, same clock): the live data is counted less often
	// than the rest is sampled.
	LiveKeys  int64   `json:"liveKeys"`
	LiveBytes int64   `json:"liveBytes"`
	LiveAt    float64 `json:"liveAt"`
	// ScanSeconds is how long counting the live data took, when this
	// sample counted it.
	ScanSeconds float64 `json:"scanSeconds,omitempty"`
}

// Ratio is DirBytes over LiveBytes (0 without live data).
func (s SpaceSample) Ratio() float64 {
	if s.LiveBytes <= 0 {
		return 0
	}
	return float64(s.DirBytes) / float64(s.LiveBytes)
}

// Summarize fills the summary fields from Samples and LoadSeconds.
func (s *Space) Summarize() {
	s.MaxLoadRatio, s.MaxLoadAt, s.EndRatio, s.IdleTo15Seconds = 0, 0, 0, -1
	for _, x := range s.Samples {
		r := x.Ratio()
		if !x.Idle && r > s.MaxLoadRatio {
			s.MaxLoadRatio, s.MaxLoadAt = r, x.Seconds
		}
		if x.Idle && r > 0 && r <= 1.5 && s.IdleTo15Seconds < 0 {
			s.IdleTo15Seconds = x.Seconds - s.LoadSeconds
		}
	}
	if n := len(s.Samples); n > 0 {
		s.EndRatio = s.Samples[n-1].Ratio()
	}
}

// Meets reports whether the run kept the size on disk within maxLoad
// times the live data at every sample under load and brought it to
// idleRatio or less within idleSeconds of idle time.
func (s *Space) Meets(maxLoad, idleRatio, idleSeconds float64) bool {
	if len(s.Samples) == 0 || s.MaxLoadRatio > maxLoad {
		return false
	}
	for _, x := range s.Samples {
		if x.Idle && x.Seconds-s.LoadSeconds <= idleSeconds && x.Ratio() > 0 && x.Ratio() <= idleRatio {
			return true
		}
	}
	return false
}

func (s *Space) writeText(b *strings.Builder, ops uint64) {
	n := len(s.Samples)
	if n == 0 {
		return
	}
	fmt.Fprintf(b, "space:      %d samples every %s, live data counted every %s; sampling took %s of CPU", n, Duration(1e9*s.IntervalSeconds), Duration(1e9*s.LiveIntervalSeconds), Duration(1e9*s.SamplerCPUSeconds))
	if ops > 0 {
		fmt.Fprintf(b, " (%s per op under load, included in cpu above)", Duration(1e9*s.SamplerLoadCPUSeconds/float64(ops)))
	}
	b.WriteString("\n")
	var maxS SpaceSample
	for _, x := range s.Samples {
		if !x.Idle && x.Seconds == s.MaxLoadAt {
			maxS = x
		}
	}
	fmt.Fprintf(b, "            under load: max %.2f× live (on disk %s, live %s, at %.0fs)\n",
		s.MaxLoadRatio, Bytes(maxS.DirBytes), Bytes(maxS.LiveBytes), s.MaxLoadAt)
	last := s.Samples[n-1]
	if s.IdleSeconds > 0 {
		fmt.Fprintf(b, "            after %.0fs idle: %.2f× live (on disk %s, live %s)", s.IdleSeconds, s.EndRatio, Bytes(last.DirBytes), Bytes(last.LiveBytes))
		if s.IdleTo15Seconds >= 0 {
			fmt.Fprintf(b, "; ≤ 1.5× after %.0fs idle", s.IdleTo15Seconds)
		}
		b.WriteString("\n")
	}
}

// WriteSpaceSVG draws the space samples of r: the size on disk, the value
// log and the live data over time (top), and their ratio with the 1.5×
// and 2× marks (bottom); the idle time is shaded. The SVG is
// self-contained and hand-written (no dependency).
func (r *Report) WriteSpaceSVG(w io.Writer) error {
	const (
		width, height         = 800, 520
		left, right, top, bot = 70, 20, 40, 40
		gap                   = 50
	)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	s := r.Space
	if s == nil || len(s.Samples) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">no space samples</text>`+"\n", left)
		b.WriteString("</svg>\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	title := fmt.Sprintf("tailor bench %s, %d profiles: size on disk vs live data (max %.2f× under load, %.2f× at the end)",
		r.Mode, r.Workload.Profiles, s.MaxLoadRatio, s.EndRatio)
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="13">%s</text>`+"\n", left, html.EscapeString(title))

	pw := float64(width - left - right)
	ph := float64(height-top-bot-gap) / 2
	tEnd := math.Max(s.Samples[len(s.Samples)-1].Seconds, 1)
	x := func(t float64) float64 { return float64(left) + pw*t/tEnd }
	var maxBytes float64
	maxRatio := 2.5
	for _, p := range s.Samples {
		maxBytes = math.Max(maxBytes, float64(max(p.DirBytes, p.LiveBytes)))
		maxRatio = math.Max(maxRatio, p.Ratio())
	}
	maxBytes = niceCeil(math.Max(maxBytes, 1))
	maxRatio = math.Ceil(maxRatio*2) / 2
	if maxRatio > 6 {
		maxRatio = math.Ceil(maxRatio)
	}

	panel := func(y0 float64, yMax float64, label func(float64) string, tick float64, name string) func(float64) float64 {
		y := func(v float64) float64 { return y0 + ph - ph*v/yMax }
		if s.IdleSeconds > 0 {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#eeeeee"/>`+"\n", x(s.LoadSeconds), y0, x(tEnd)-x(s.LoadSeconds), ph)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" fill="#777">idle</text>`+"\n", x(s.LoadSeconds)+4, y0+12)
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", left, y0+ph, width-right, y0+ph)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>`+"\n", left, y0, left, y0+ph)
		for v := 0.0; v <= yMax*1.0001; v += tick {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y(v)+4, label(v))
			if v > 0 {
				fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dddddd"/>`+"\n", left, y(v), width-right, y(v))
			}
		}
		fmt.Fprintf(&b, `<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">%s</text>`+"\n", y0+ph/2, y0+ph/2, name)
		return y
	}
	line := func(y func(float64) float64, v func(SpaceSample) float64, color, name string, lx float64) {
		var pts strings.Builder
		for _, p := range s.Samples {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.Seconds), y(v(p)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.TrimSpace(pts.String()))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="%s">%s</text>`+"\n", lx, top-6, color, name)
	}
	gib := func(v float64) string { return Bytes(int64(v)) }
	yb := panel(float64(top), maxBytes, gib, maxBytes/4, "bytes")
	line(yb, func(p SpaceSample) float64 { return float64(p.DirBytes) }, "#c02020", "on disk (directory)", float64(left)+300)
	line(yb, func(p SpaceSample) float64 { return float64(p.VlogBytes) }, "#e08000", "value log", float64(left)+430)
	line(yb, func(p SpaceSample) float64 { return float64(p.LiveBytes) }, "#2a9d2a", "live data", float64(left)+520)

	y0 := float64(top) + ph + gap
	yr := panel(y0, maxRatio, func(v float64) string { return fmt.Sprintf("%.1f×", v) }, max(0.5, niceStep(maxRatio/6)), "on disk / live")
	for _, m := range []struct {
		v   float64
		col string
	}{{1.5, "#2a9d2a"}, {2, "#c02020"}} {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s" stroke-dasharray="4 3"/>`+"\n", left, yr(m.v), width-right, yr(m.v), m.col)
	}
	var pts strings.Builder
	for _, p := range s.Samples {
		fmt.Fprintf(&pts, "%.1f,%.1f ", x(p.Seconds), yr(p.Ratio()))
	}
	fmt.Fprintf(&b, `<polyline fill="none" stroke="#4878cf" stroke-width="1.5" points="%s"/>`+"\n", strings.TrimSpace(pts.String()))
	// Time axis, under the bottom panel.
	step := niceStep(tEnd / 8)
	for t := 0.0; t <= tEnd; t += step {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x(t), y0+ph, x(t), y0+ph+5)
		label := "0"
		if t > 0 {
			label = Duration(t * 1e9)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(t), y0+ph+17, label)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">time since the measured phase started</text>`+"\n", float64(left)+pw/2, height-6)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of two's worth of
// bytes in binary units (a whole number of MiB or GiB when large).
func niceCeil(v float64) float64 {
	unit := math.Pow(1024, math.Floor(math.Log(v)/math.Log(1024)))
	for _, m := range []float64{1, 2, 4, 5, 8, 10, 16, 20, 32, 50, 64, 100, 128, 200, 256, 500, 512, 1000, 1024} {
		if m*unit >= v {
			return m * unit
		}
	}
	return v
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
