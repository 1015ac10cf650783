// Command bench measures tailor: pure audience evaluation, and full
// Identify calls on Badger on disk or in memory, over a generated workload
// or the user's own rules and profiles. See README.md in this directory
// for every flag and the figures measured on the project's machine.
//
//	go run ./bench -mode eval -workload peer
//	go run ./bench -mode identify-disk -n 1000000 -dir /tmp/store -zipf 1.1 -duration 30s
//	go run ./bench -rules my-rules.yaml -profiles sample.ndjson -mode eval
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tailorhq/tailor/bench/runner"
	"github.com/tailorhq/tailor/bench/workload"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// options are the command's flags.
type options struct {
	cfg        runner.Config
	dumpRules  bool
	dumpProfs  bool
	jsonOut    bool
	svg        string
	top        int
	cpuProfile string
	memProfile string
	redisAddrs string
	store      string
	progress   string
	spaceSVG   string
	soak       bool
}

// The soak (-soak) checks issue 13's target 1: under sustained full-speed
// updates the store's size on disk stays within soakMaxLoad times its live
// data at every sample, and falls to soakIdleRatio or less within
// soakIdleWithin of idling.
const (
	soakMaxLoad    = 2.0
	soakIdleRatio  = 1.5
	soakIdleWithin = 2 * time.Minute
)

// soakDefaults are the flags -soak sets unless given explicitly.
var soakDefaults = map[string]string{
	"mode":           "identify-disk",
	"duration":       "10m",
	"idle":           "150s",
	"space-interval": "5s",
	"concurrency":    "2",
}

// errTargetMissed is returned when a -soak run misses its target.
var errTargetMissed = errors.New("target missed")

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	c := &o.cfg
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: go run ./bench [flags]\n\nflags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&c.Mode, "mode", runner.ModeEval, "what to measure: eval (audiences over prepared profiles, no store), identify-disk (Identify on Badger on disk), identify-mem (Identify on Badger in memory), naive (the yardstick: one Badger transaction, JSON, the rules on expr's VM, hashes; see bench/README.md)")
	fs.StringVar(&c.Workload.Kind, "workload", workload.KindMixed, "generated workload: mixed (audiences of mixed shapes and experiences) or peer (the flag-SDK comparison: one audience, one 50/50 experience)")
	fs.Uint64Var(&c.Workload.Seed, "seed", 1, "seed of the generated profiles and rules")
	fs.IntVar(&c.Workload.Profiles, "n", 1_000_000, "number of generated profiles")
	fs.IntVar(&c.Workload.Audiences, "audiences", 100, "number of generated audiences (mixed workload)")
	fs.IntVar(&c.Workload.Experiences, "experiences", 20, "number of generated experiences (mixed workload; 0 for none)")
	fs.StringVar(&c.RulesFile, "rules", "", "use this rules file (YAML or JSON) instead of generated rules")
	fs.StringVar(&c.SamplesFile, "profiles", "", "use the profiles of this NDJSON file instead of generated ones (see README)")
	fs.BoolVar(&o.dumpRules, "dump-rules", false, "print the generated rules file (YAML) and exit")
	fs.BoolVar(&o.dumpProfs, "dump-profiles", false, "print the generated profiles (-n of them) as NDJSON in the -profiles format and exit")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "measuring goroutines (default GOMAXPROCS)")
	fs.IntVar(&c.PopulateConcurrency, "populate-concurrency", 0, "goroutines filling the store (default 8*GOMAXPROCS)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to measure (ignored with -ops)")
	fs.Uint64Var(&c.Ops, "ops", 0, "measure exactly this many operations instead of -duration")
	fs.Float64Var(&c.Zipf, "zipf", 0, "draw profile ids from a Zipf distribution of exponent s > 1 (real traffic: 1.1); 0 means uniform")
	fs.BoolVar(&c.Sync, "sync", false, "identify-disk: fsync every Identify before it returns (SyncWrites)")
	fs.StringVar(&c.Dir, "dir", "", "identify-disk: store directory (default a temporary one, removed after); a directory holding the same workload is reused without populating")
	fs.Int64Var(&c.CacheBytes, "cache-bytes", 0, "identify: memory for the encoded profiles the engine caches, in bytes (0: the engine's default, negative: no cache)")
	fs.Int64Var(&c.Badger.ValueThreshold, "value-threshold", 0, "Badger ValueThreshold in bytes (0: the store's default)")
	fs.Int64Var(&c.Badger.MemTableSize, "memtable-size", 0, "Badger MemTableSize in bytes (0: the store's default)")
	fs.IntVar(&c.Badger.NumMemtables, "num-memtables", 0, "Badger NumMemtables (0: the store's default)")
	fs.Int64Var(&c.Badger.BlockCacheSize, "block-cache", 0, "Badger BlockCacheSize in bytes (0: the store's default)")
	fs.Int64Var(&c.Badger.IndexCacheSize, "index-cache", 0, "Badger IndexCacheSize in bytes (0: keep all indexes in memory)")
	fs.BoolVar(&c.Badger.DisableGroupCommit, "no-group-commit", false, "commit every Identify in its own Badger transaction (for comparison)")
	fs.Int64Var(&c.Badger.ValueLogFileSize, "vlog-file-size", 0, "Badger ValueLogFileSize in bytes (0: the store's default)")
	fs.IntVar(&c.Badger.NumLevelZeroTables, "l0-tables", 0, "Badger NumLevelZeroTables (0: the store's default)")
	fs.DurationVar(&c.Badger.GCInterval, "gc-interval", 0, "store GCInterval (0: the store's default, negative: no background GC)")
	fs.Float64Var(&c.Badger.GCDiscardRatio, "gc-ratio", 0, "store GCDiscardRatio under load (0: the store's default)")
	fs.Int64Var(&c.Badger.GCWriteStep, "gc-step", 0, "store GCWriteStep in bytes (0: the store's default, negative: rounds on the interval only)")
	fs.DurationVar(&c.Badger.GCIdleAfter, "gc-idle-after", 0, "store GCIdleAfter (0: the store's default, negative: no idle pass)")
	fs.Float64Var(&c.Badger.GCIdleDiscardRatio, "gc-idle-ratio", 0, "store GCIdleDiscardRatio (0: the store's default)")
	fs.IntVar(&c.EvalPool, "eval-pool", runner.DefaultEvalPool, "eval: distinct profiles cycled through (1: one hot profile, as microbenchmarks do)")
	fs.IntVar(&c.AudienceSample, "audience-sample", 200, "profiles the slowest-audiences table is measured over (negative: skip the table)")
	fs.IntVar(&o.top, "top", 10, "rows of the slowest-audiences table")
	fs.BoolVar(&c.Metrics, "metrics", false, "identify: report the engine's and the store's OpenTelemetry metrics over the measured phase (adds the SDK's cost to every call)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&o.svg, "svg", "", "write the latency histogram as SVG to this file")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured phase to this file (go tool pprof)")
	fs.StringVar(&o.store, "store", "badger", "identify modes: the store, badger (the mode says on disk or in memory) or redis (needs -redis, which implies it)")
	fs.StringVar(&o.redisAddrs, "redis", "", "identify modes: comma-separated Redis addresses (one server, or Redis Cluster seed nodes) to run on instead of Badger; populated once per -redis-prefix and reused, also by several bench processes at once")
	fs.StringVar(&c.Redis.KeyPrefix, "redis-prefix", "tailor-bench:", "identify with -redis: prefix of the bench's Redis keys")
	fs.IntVar(&c.Stream, "stream", 0, "identify: number of this process's sequence of profile ids, so that bench processes sharing one -redis draw different ones")
	fs.IntVar(&c.Redis.WaitReplicas, "redis-wait", 0, "identify with -redis: replicas that must acknowledge every write (Redis WAIT)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile taken at the end of the measured phase to this file (go tool pprof)")
	fs.StringVar(&o.progress, "progress", "auto", "live progress line: auto (when stdout is a terminal), on, off")
	fs.DurationVar(&c.SpaceInterval, "space-interval", 0, "identify-disk: sample the store's size on disk and live data at this interval (0: off, or 5s with -idle)")
	fs.DurationVar(&c.LiveInterval, "live-interval", 0, "identify-disk: count the live data (an iteration over every key) at most this often while sampling (0: 30s)")
	fs.DurationVar(&c.Idle, "idle", 0, "identify-disk: keep the store open and sampling this long after the measured phase, without load")
	fs.StringVar(&o.spaceSVG, "space-svg", "", "write size on disk and live data over time as SVG to this file (needs sampling)")
	fs.BoolVar(&o.soak, "soak", false, "check the space target: sets -mode identify-disk -duration 10m -idle 150s -space-interval 5s -concurrency 2 unless given, and fails unless on disk ≤ 2× live at every sample and ≤ 1.5× within 2 minutes of idle")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if o.soak {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range soakDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return nil, err
				}
			}
		}
	}
	if o.spaceSVG != "" && c.SpaceInterval == 0 && c.Idle == 0 {
		c.SpaceInterval = runner.DefaultSpaceInterval
	}
	if c.Workload.Experiences == 0 {
		c.Workload.NoExperiences = true
	}
	for _, a := range strings.Split(o.redisAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Redis.Addrs = append(c.Redis.Addrs, a)
		}
	}
	switch {
	case o.store != "badger" && o.store != "redis":
		return nil, fmt.Errorf("%w: -store %q is not badger or redis", errUsage, o.store)
	case o.store == "redis" && len(c.Redis.Addrs) == 0:
		return nil, fmt.Errorf("%w: -store redis needs -redis addresses", errUsage)
	}
	switch o.progress {
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("%w: -progress %q is not auto, on or off", errUsage, o.progress)
	}
	if c.Workload.Profiles <= 0 {
		return nil, fmt.Errorf("%w: -n %d must be positive", errUsage, c.Workload.Profiles)
	}
	if c.Workload.Audiences <= 0 {
		return nil, fmt.Errorf("%w: -audiences %d must be positive", errUsage, c.Workload.Audiences)
	}
	return o, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if o.dumpRules {
		g, err := workload.New(o.cfg.Workload)
		if err != nil {
			return err
		}
		y, _, err := g.Rules()
		if err != nil {
			return err
		}
		_, err = stdout.Write(y)
		return err
	}
	if o.dumpProfs {
		g, err := workload.New(o.cfg.Workload)
		if err != nil {
			return err
		}
		return g.WriteNDJSON(stdout)
	}
	tty := false
	if f, ok := stdout.(*os.File); ok {
		tty = isTerminal(f)
	}
	if o.progress == "on" || (o.progress == "auto" && tty && !o.jsonOut) {
		o.cfg.Progress = stdout
		if o.jsonOut {
			o.cfg.Progress = stderr
		}
	}
	o.cfg.Log = stderr
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.cfg.CPUProfile = f
	}
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.cfg.MemProfile = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runner.Run(ctx, o.cfg)
	if err != nil {
		return err
	}
	if o.svg != "" {
		if err := writeFile(o.svg, rep.WriteSVG); err != nil {
			return err
		}
	}
	if o.spaceSVG != "" {
		if err := writeFile(o.spaceSVG, rep.WriteSpaceSVG); err != nil {
			return err
		}
	}
	if o.jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout, o.top)
	}
	if err != nil || !o.soak {
		return err
	}
	met := rep.Space != nil && rep.Space.Meets(soakMaxLoad, soakIdleRatio, soakIdleWithin.Seconds())
	verdict := "met"
	if !met {
		verdict = "MISSED"
	}
	fmt.Fprintf(stderr, "soak: %s: on disk ≤ %g× live at every sample under load, ≤ %g× within %v of idle\n", verdict, soakMaxLoad, soakIdleRatio, soakIdleWithin)
	if !met {
		return errTargetMissed
	}
	return nil
}

// writeFile creates path and writes it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
