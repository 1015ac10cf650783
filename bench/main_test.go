package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
