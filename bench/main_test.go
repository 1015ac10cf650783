package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailorhq/tailor/rules"
)

func TestDumpRulesLoads(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-dump-rules", "-audiences", "40", "-experiences", "5", "-seed", "9"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	set, err := rules.Parse("dump.yaml", out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Audiences) != 40 || len(set.Experiences) != 5 {
		t.Fatalf("dumped %d audiences and %d experiences, want 40 and 5", len(set.Audiences), len(set.Experiences))
	}
}

func TestRunJSONAndSVG(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "lat.svg")
	var out, errb bytes.Buffer
	err := run([]string{"-mode", "identify-mem", "-n", "200", "-ops", "500", "-audiences", "20", "-json", "-svg", svg, "-progress", "off"}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode string `json:"mode"`
		Ops  int    `json:"ops"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out.String())
	}
	if rep.Mode != "identify-mem" || rep.Ops != 500 {
		t.Fatalf("report %+v", rep)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) {
		t.Fatalf("svg file: %v %.40q", err, b)
	}
}

func TestRunText(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-workload", "peer", "-n", "200", "-ops", "500", "-top", "1"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mode eval: peer workload", "throughput:", "aud-us-ca-pro"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"}, {"-audiences", "-1"}, {"-nope"}, {"extra"}, {"-progress", "maybe"},
	} {
		var out, errb bytes.Buffer
		if err := run(args, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) error = %v, want usage error", args, err)
		}
	}
	var out, errb bytes.Buffer
	if err := run([]string{"-mode", "warp"}, &out, &errb); err == nil || !strings.Contains(err.Error(), "warp") {
		t.Errorf("unknown mode: error %v", err)
	}
}

func TestCPUProfileOfTheMeasuredPhase(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	var out, errb bytes.Buffer
	if err := run([]string{"-n", "100", "-ops", "200", "-audiences", "5", "-cpuprofile", prof, "-progress", "off"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(prof); err != nil || st.Size() == 0 {
		t.Fatalf("cpu profile: %v, %v", st, err)
	}
}

func TestRunSpaceSamples(t *testing.T) {
	dir := t.TempDir()
	svg := filepath.Join(dir, "space.svg")
	var out, errb bytes.Buffer
	err := run([]string{"-mode", "identify-disk", "-n", "300", "-ops", "3000", "-audiences", "5", "-json", "-progress", "off",
		"-dir", filepath.Join(dir, "store"), "-space-interval", "20ms", "-idle", "100ms", "-space-svg", svg}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Space struct {
			IdleSeconds float64 `json:"idleSeconds"`
			Samples     []struct {
				Idle      bool  `json:"idle"`
				Ops       int   `json:"ops"`
				DirBytes  int64 `json:"dirBytes"`
				LiveKeys  int64 `json:"liveKeys"`
				LiveBytes int64 `json:"liveBytes"`
			} `json:"samples"`
			MaxLoadRatio float64 `json:"maxLoadRatio"`
			EndRatio     float64 `json:"endRatio"`
		} `json:"space"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out.String())
	}
	sp := rep.Space
	// The first sample, the end of the load, and at least the last one
	// after idling.
	if len(sp.Samples) < 3 || sp.IdleSeconds < 0.1 || sp.MaxLoadRatio <= 0 || sp.EndRatio <= 0 {
		t.Fatalf("space report %+v", sp)
	}
	first, last := sp.Samples[0], sp.Samples[len(sp.Samples)-1]
	if first.Idle || !last.Idle || last.Ops != 3000 {
		t.Fatalf("first sample %+v, last %+v: want the first under load, the last idle after 3000 ops", first, last)
	}
	// 300 profiles populated, each with its aliases: at least 300 keys.
	if last.LiveKeys < 300 || last.LiveBytes < 300*100 || last.DirBytes < last.LiveBytes/2 {
		t.Fatalf("last sample %+v", last)
	}
	b, err := os.ReadFile(svg)
	if err != nil || !bytes.HasPrefix(b, []byte("<svg")) || !bytes.Contains(b, []byte("polyline")) {
		t.Fatalf("space svg: %v %.60q", err, b)
	}
}

func TestSoakFlags(t *testing.T) {
	var errb bytes.Buffer
	o, err := parseFlags([]string{"-soak", "-duration", "3m", "-n", "1000"}, &errb)
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg
	if c.Mode != "identify-disk" || c.Duration != 3*time.Minute || c.Idle != 150*time.Second || c.SpaceInterval != 5*time.Second || c.Concurrency != 2 {
		t.Fatalf("-soak -duration 3m: config %+v", c)
	}
}

func TestRunBadSpaceFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "identify-mem", "-idle", "1s"},
		{"-mode", "identify-disk", "-space-interval", "-1s"},
	} {
		var out, errb bytes.Buffer
		if err := run(append(args, "-n", "10", "-ops", "1"), &out, &errb); err == nil || !strings.Contains(err.Error(), "space") {
			t.Errorf("run(%q) error = %v, want one about space sampling", args, err)
		}
	}
}
