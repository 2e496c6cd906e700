#!/usr/bin/env bash
# YCSB through go-ycsb: workloads A, B, C and F with requestdistribution=zipfian
# (the shipped workload files say uniform), at 1, 16 and 64 client threads,
# against
#
#   strata-redis   strata's Redis store (auto-pipelining on, its default)
#   strata-tier    strata's tier (tier.New, default options) over that store
#   strata-pebble  strata's Pebble store (no_sync: the WAL is written, not
#                  fsynced, as the Redis server here does not persist)
#   redis          go-ycsb's own Redis binding (hash data type, pool of
#                  <threads> connections)
#
# on one redis-server started here (no persistence). Each workload is loaded
# once per target (RECORDS records of 10 fields of 100 bytes); then ROUNDS
# rounds run every target in turn for RUN seconds each (after WARMUP seconds
# not measured), so that the load of a shared machine weighs on all alike.
# The table gives, per workload, threads and target, the median over the
# rounds of the ops/s and of the p99 latency of all operations (go-ycsb's
# TOTAL line), and for each strata target the median of its rounds'
# ratios to redis (each round's ops/s over redis's in the same round),
# with their range.
#
# Usage: scripts/ycsb.sh [> table.md]     (progress goes to stderr)
# Environment: ROUNDS (3), RUN (4), WARMUP (1), RECORDS (10000),
#   THREADS ("1 16 64"), WORKLOADS ("a b c f"), LAYOUT (record: see
#   bench/ycsb), KEEP=1 to keep the working directory, RESULTS=file to keep
#   the raw results (one line per run), TABLE=file to print the table of
#   such a file and run nothing.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
RUN=${RUN:-4}
WARMUP=${WARMUP:-1}
RECORDS=${RECORDS:-10000}
THREADS=${THREADS:-"1 16 64"}
WORKLOADS=${WORKLOADS:-"a b c f"}
LAYOUT=${LAYOUT:-record}

targets="strata-redis strata-tier strata-pebble redis"

# table RESULTS prints the table of a results file (lines: workload
# threads target round ops/s p99 error-lines).
table() {
python3 - "$1" "$targets" <<'EOF2'
import sys, statistics
rows = [l.split() for l in open(sys.argv[1])]
targets = sys.argv[2].split()
cell = {}
for w, th, t, r, ops, p99, errs in rows:
    cell[(w, int(th), t, int(r))] = (float(ops), int(p99), int(errs))
print("| workload | threads | " + " | ".join(f"{t} ops/s (p99 µs)" for t in targets) +
      " | " + " | ".join(f"{t} / redis [range]" for t in targets if t != "redis") + " |")
print("|---|---|" + "---|" * (2 * len(targets) - 1))
for (w, th) in sorted({(k[0], k[1]) for k in cell}):
    rounds = sorted({k[3] for k in cell if k[:2] == (w, th)})
    out = [w.upper(), str(th)]
    for t in targets:
        runs = [cell[(w, th, t, r)] for r in rounds if (w, th, t, r) in cell]
        errs = sum(e for _, _, e in runs)
        out.append(f"{statistics.median(o for o, _, _ in runs)/1000:.1f} k ({statistics.median(p for _, p, _ in runs)})" +
                   (f" [{errs} errors]" if errs else ""))
    for t in targets:
        if t == "redis":
            continue
        ratios = [cell[(w, th, t, r)][0] / cell[(w, th, "redis", r)][0]
                  for r in rounds if (w, th, t, r) in cell and (w, th, "redis", r) in cell]
        out.append(f"**{statistics.median(ratios):.2f}** [{min(ratios):.2f}–{max(ratios):.2f}]")
    print("| " + " | ".join(out) + " |")
EOF2
}

if [ -n "${TABLE:-}" ]; then
	table "$TABLE"
	exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
redis_pid=
cleanup() {
	if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
	if [ "${KEEP:-}" != 1 ]; then rm -rf "$work"; else echo "kept $work" >&2; fi
}
trap cleanup EXIT

for bin in redis-server redis-cli go; do
	command -v "$bin" >/dev/null || { echo "ycsb.sh: $bin not found (scripts/install-deps.sh installs redis-server)" >&2; exit 1; }
done

echo "building strata-ycsb" >&2
(cd "$root/bench" && go build -o "$work/strata-ycsb" ./cmd/strata-ycsb)
workloads=$(cd "$root/bench" && go list -m -f '{{.Dir}}' github.com/pingcap/go-ycsb)/workloads

# A free loopback port: bind port 0 and read what the kernel chose.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null

ycsb() { "$work/strata-ycsb" "$@"; }

# args TARGET WORKLOAD: the database and properties of a target.
args() {
	case $1 in
	strata-redis) echo "strata -p strata.url=redis://127.0.0.1:$port/0 -p strata.layout=$LAYOUT" ;;
	strata-tier) echo "strata -p strata.url=redis://127.0.0.1:$port/0 -p strata.layout=$LAYOUT -p strata.tier=true" ;;
	strata-pebble) echo "strata -p strata.url=pebble://$work/pebble-$2?no_sync=true -p strata.layout=$LAYOUT" ;;
	redis) echo "redis -p redis.addr=127.0.0.1:$port -p redis.db=1" ;;
	esac
}
common="-p recordcount=$RECORDS -p requestdistribution=zipfian"

results=$work/results
: >"$results"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for w in $WORKLOADS; do
	redis-cli -p "$port" flushall >/dev/null
	rm -rf "$work/pebble-$w"
	# strata-tier reads what strata-redis loaded.
	for t in strata-redis strata-pebble redis; do
		echo "load workload$w $t" >&2
		# shellcheck disable=SC2046
		ycsb load $(args "$t" "$w") -P "$workloads/workload$w" $common -threads 16 >"$work/load-$w-$t.log" 2>&1 ||
			{ cat "$work/load-$w-$t.log" >&2; exit 1; }
	done
	for th in $THREADS; do
		for r in $(seq "$ROUNDS"); do
			for t in $targets; do
				log=$work/run-$w-$th-$t-$r.log
				# shellcheck disable=SC2046
				ycsb run $(args "$t" "$w") -P "$workloads/workload$w" $common -threads "$th" \
					-p operationcount=1000000000 -p maxexecutiontime=$((WARMUP + RUN)) -p warmuptime="$WARMUP" >"$log" 2>&1 ||
					{ cat "$log" >&2; exit 1; }
				# TOTAL - Takes(s): 4.0, Count: 1, OPS: 2.0, Avg(us): ..., 99th(us): N, ...
				line=$(grep '^TOTAL' "$log")
				ops=$(sed -E 's/.*OPS: ([0-9.]+).*/\1/' <<<"$line")
				p99=$(sed -E 's/.* 99th\(us\): ([0-9]+).*/\1/' <<<"$line")
				errs=$(grep -c '_ERROR' "$log" || true)
				echo "$w $th $t $r $ops $p99 $errs" >>"$results"
				echo "workload$w threads=$th $t round $r: $ops ops/s, p99 $p99 us, error lines $errs" >&2
			done
		done
	done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2


cp "$results" "${RESULTS:-/dev/null}"
table "$results"
