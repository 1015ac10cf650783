#!/bin/sh
# Runs every measurement of bench/README.md ("Results") and leaves the JSON
# reports, text reports and SVGs in $OUT. Big stores live in $STORE (reused
# between runs: populating a million profiles is the slow part).
#
#   OUT=/tmp/tailor-results STORE=/var/tmp/tailor-stores sh bench/targets.sh [step...]
#
# Steps: eval scaling-eval stores disk durable memory scaling gobench (default: all).
set -eu
OUT=${OUT:-/tmp/tailor-results}
STORE=${STORE:-/var/tmp/tailor-stores}
mkdir -p "$OUT" "$STORE"
go build -o "$OUT/tbench" ./bench
B="$OUT/tbench -progress off"
steps=${*:-"eval scaling-eval stores disk durable memory scaling gobench"}

run() { # name args...
	name=$1; shift
	echo "== $name: bench $*" > "$OUT/$name.txt"
	uptime >> "$OUT/$name.txt"
	$B "$@" -json -svg "$OUT/$name.svg" > "$OUT/$name.json" 2> "$OUT/$name.log"
	python3 - "$OUT/$name.json" >> "$OUT/$name.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
print(f'{r["opsPerSec"]:.0f} ops/s  p50 {l["p50Ns"]/1e3:.1f}us p90 {l["p90Ns"]/1e3:.1f}us p99 {l["p99Ns"]/1e3:.1f}us p99.9 {l["p999Ns"]/1e3:.1f}us max {l["maxNs"]/1e3:.0f}us  {r["allocsPerOp"]:.1f} allocs/op {r["bytesPerOp"]:.0f} B/op  cpu {r["cpuNsPerOp"]/1e3:.2f}us/op share {100*r["cpuShare"]:.0f}%  clock {r["clockNs"]:.0f}ns')
if r.get("selectedPerOp") or r.get("matchedPerOp"): print(f'matched {r.get("matchedPerOp",0):.1f} selected {r.get("selectedPerOp",0):.1f} ruleErrors {r.get("ruleErrors",0)}')
if r.get("openSeconds"): print(f'open {r["openSeconds"]:.3f}s')
if r.get("populate"): print("populate", r["populate"])
if r.get("store"): print("store", r["store"])
m = r["memory"]; print(f"rss {m['rssBytes']/2**20:.0f} MiB (anon {m.get('rssAnonBytes',0)/2**20:.0f}, file {m.get('rssFileBytes',0)/2**20:.0f}), peak {m['peakRssBytes']/2**20:.0f} MiB")
for a in r.get("slowestAudiences", [])[:5]: print(f'  {a["meanNs"]:.0f}ns {a["id"]}: {a["when"]}')
PY
	cat "$OUT/$name.txt"
}

for s in $steps; do case $s in
eval)
	run t1-peer -mode eval -workload peer -duration 10s
	run t1-peer-hot -mode eval -workload peer -eval-pool 1 -duration 10s
	run t2-100aud -mode eval -experiences 0 -duration 10s
	run t3-100aud-20exp -mode eval -duration 10s
	;;
stores)
	for n in 10000 100000 1000000; do
		$B -mode identify-disk -n $n -dir "$STORE/p$n" -ops 1 -audience-sample -1 > "$OUT/populate-$n.txt" 2> "$OUT/populate-$n.log"
		cat "$OUT/populate-$n.txt"
	done
	;;
disk)
	run t4-uniform -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 16 -duration 30s
	run t4-zipf -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 16 -zipf 1.1 -duration 30s
	run t4-zipf-nocache -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 16 -zipf 1.1 -cache-bytes -1 -duration 30s
	;;
durable)
	run t4-sync -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 128 -sync -duration 30s
	;;
memory)
	# Target 5: a fresh process opens the million-profile store, applies
	# 200,000 updates, reports Open time and RSS.
	run t5-rss -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 16 -ops 200000
	run t5-rss-nocache -mode identify-disk -n 1000000 -dir "$STORE/p1000000" -concurrency 16 -ops 200000 -cache-bytes -1
	;;
scaling-eval)
	for a in 1 10 100 1000; do
		run t6-eval-$a -mode eval -audiences $a -experiences 0 -duration 8s -audience-sample 50
	done
	;;
scaling)
	for n in 10000 100000 1000000; do
		run t6-identify-$n -mode identify-disk -n $n -dir "$STORE/p$n" -concurrency 16 -duration 20s -audience-sample -1
	done
	;;
gobench)
	go test ./bench -run '^$' -bench Audiences -count 10 | tee "$OUT/gobench-audiences.txt"
	;;
*) echo "unknown step $s" >&2; exit 2 ;;
esac; done
