#!/usr/bin/env bash
# Benchmark (not a test): range digests on ROWS rows (default 500,000) x
# 256-dim float vectors + int64 key and an int64 `tag`, Milvus 2.3.5 A and
# B on one machine. Prints, from one run:
#   - a full `export` of A (Parquet), the yardstick;
#   - `migrate` A -> B, first run (create, stream every row, reconcile);
#   - `compare` of A and B (identical), in rows/s, and its time against the
#     export's (goal: at most 1.5x);
#   - 1 % of A's rows changed (upserts of random keys), then a `migrate`
#     catch-up: its time and the rows it copied (goal: at most 5 %);
#   - `compare` again (identical) and peak RSS of each run.
#
#   bench/compare_migrate.sh [ROWS]
#
# Uses its own servers (run dir /tmp/milvus-backup-bench-compare, ports 218xx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-500000}
export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench-compare}
export MBT_PORT_BASE=${MBT_PORT_BASE:-21800}
export MBT_SERVICES="A B"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binary
if [ "${MILVUS_BACKUP_BENCH_KEEP:-0}" != 1 ]; then
    trap 'scripts/testenv.sh stop >/dev/null 2>&1; [[ $MILVUS_BACKUP_TESTENV == *bench* ]] && rm -rf "$MILVUS_BACKUP_TESTENV"' EXIT
fi
scripts/testenv.sh start >/dev/null
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/bench
rm -rf "$work" && mkdir -p "$work/backups"
for side in A B; do
    port_var=MBT_${side}_PORT
    cat >"$work/$side.yaml" <<YAML
milvus: { address: 127.0.0.1, port: ${!port_var} }
storage: { storageType: local, local: { path: $work/backups } }
YAML
done

echo "== $rows rows x 256-dim float vectors into Milvus A ($MBT_A_VERSION)" >&2
"$MBT_PY_23" - "$MBT_A_PORT" "$rows" <<'PY' >&2
import sys, numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
n = int(sys.argv[2])
if utility.has_collection("bench_cmp"):
    utility.drop_collection("bench_cmp")
c = Collection("bench_cmp", CollectionSchema([
    FieldSchema("id", DataType.INT64, is_primary=True),
    FieldSchema("tag", DataType.INT64),
    FieldSchema("vec", DataType.FLOAT_VECTOR, dim=256)]), shards_num=1)
rng = np.random.default_rng(7)
for s in range(0, n, 20000):
    k = min(20000, n - s)
    v = rng.standard_normal((k, 256), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c.insert([list(range(s, s + k)), [0] * k, v], timeout=120)
c.flush(timeout=600)
c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
c.load(timeout=600)
print(f"   {c.num_entities} rows, loaded")
PY

timed() { # timed NAME CMD... : stdout to $work/NAME.json, seconds and peak RSS KiB to $work/NAME.t
    local name=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$work/$name.rss" "$@" >"$work/$name.json"
    t1=$(date +%s.%N)
    echo "$t0 $t1" >"$work/$name.t"
}

echo "== export of A (Parquet)" >&2
timed export "$bin" --json --config "$work/A.yaml" export -c bench_cmp -o "$work/export"
echo "== migrate A -> B, first run" >&2
timed migrate1 "$bin" --json --config "$work/A.yaml" migrate -c bench_cmp --to-config "$work/B.yaml"
echo "== compare A with B" >&2
timed compare1 "$bin" --json --config "$work/A.yaml" compare -c bench_cmp --to-config "$work/B.yaml"
echo "== 1 % of A's rows changed (upserts of random keys)" >&2
"$MBT_PY_23" - "$MBT_A_PORT" "$rows" <<'PY' >&2
import sys, numpy as np
from pymilvus import Collection, connections
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
n = int(sys.argv[2])
rng = np.random.default_rng(11)
keys = sorted(rng.choice(n, size=n // 100, replace=False).tolist())
c = Collection("bench_cmp")
for s in range(0, len(keys), 1000):
    k = keys[s:s + 1000]
    v = rng.standard_normal((len(k), 256), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    c.upsert([k, [1] * len(k), v], timeout=120)
print(f"   {len(keys)} rows upserted")
PY
echo "== migrate A -> B, catch-up" >&2
timed migrate2 "$bin" --json --config "$work/A.yaml" migrate -c bench_cmp --to-config "$work/B.yaml"
echo "== compare A with B again" >&2
set +e
timed compare2 "$bin" --json --config "$work/A.yaml" compare -c bench_cmp --to-config "$work/B.yaml"
set -e

python3 - "$rows" "$work" <<'PY'
import json, os, sys
rows, work = int(sys.argv[1]), sys.argv[2]
def load(name):
    t0, t1 = map(float, open(os.path.join(work, name + ".t")).read().split())
    rss = int(open(os.path.join(work, name + ".rss")).read().split()[-1]) / 1024
    text = open(os.path.join(work, name + ".json")).read().strip()
    try:
        answer = json.loads(text)  # one document (export, compare)
    except ValueError:
        answer = json.loads(text.splitlines()[-1])  # one object per round (migrate)
    return answer, t1 - t0, rss
ex, ex_s, ex_rss = load("export")
m1, m1_s, m1_rss = load("migrate1")
c1, c1_s, c1_rss = load("compare1")
m2, m2_s, m2_rss = load("migrate2")
c2, c2_s, c2_rss = load("compare2")
print(f"collection: {rows} rows x 256-dim float32 + int64 key + int64 tag; Milvus 2.3.5 A and B on one 2-core machine")
print(f"export of A (Parquet):          {ex_s:6.1f} s  {rows / ex_s:9,.0f} rows/s  peak RSS {ex_rss:.0f} MiB")
print(f"migrate A -> B, first run:      {m1_s:6.1f} s  {m1['rows_copied']:,} rows copied, identical {m1['identical']}  peak RSS {m1_rss:.0f} MiB")
print(f"compare A with B:               {c1_s:6.1f} s  {2 * rows / c1_s:9,.0f} rows/s (both sides)  identical {c1['identical']}  "
      f"{c1_s / ex_s:.2f}x the export (goal <= 1.5x)  peak RSS {c1_rss:.0f} MiB")
print(f"migrate catch-up after 1 %:     {m2_s:6.1f} s  {m2['rows_copied']:,} of {m2['rows_source']:,} rows copied "
      f"({100 * m2['rows_copied'] / m2['rows_source']:.2f} %, goal <= 5 %), {m2['ranges_differing']} of {m2['ranges']} ranges differed  peak RSS {m2_rss:.0f} MiB")
print(f"compare again:                  {c2_s:6.1f} s  identical {c2.get('identical')}")
PY
