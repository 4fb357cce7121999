#!/usr/bin/env bash
# Benchmark (not a test): logical export and import of one collection of
# ROWS rows (default 500,000) x 256-dim float vectors (normalised Gaussian,
# like embeddings) + int64 key, on its own Milvus 2.3.5. Prints, from one
# run: our `export` rows/s and MB/s against pymilvus's query_iterator ->
# pandas -> Parquet (seed 004's recipe: batches of 10,000, one Parquet file
# per batch), the query limit (`export --discard`: the same queries and
# decoding, no files) and the share of it export reaches, `create --format
# parquet` into a backup, `import --create`
# (insert mode) rows/s, `restore` of the logical backup rows/s in insert
# mode and in bulk mode (`--import-mode bulk`: files staged into A's own
# S3 bucket as row-based JSON and read by Milvus's import; its config then
# names A's storage), the BYTE_STREAM_SPLIT effect on file size, the time
# spent reading each data file back after it is written (export, create
# --format parquet and json), pymilvus `insert` (batches of 10,000, the
# rows that load the collection) against the restore in insert mode, and
# every peak RSS.
#
#   bench/logical.sh [ROWS]
#
# Uses its own servers (run dir /tmp/milvus-backup-bench-logical, ports 217xx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-500000}
export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench-logical}
export MBT_PORT_BASE=${MBT_PORT_BASE:-21700}
export MBT_SERVICES="A"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binary
# The servers and their data (GBs of objects) go when the run ends;
# MILVUS_BACKUP_BENCH_KEEP=1 keeps them for a look afterwards.
if [ "${MILVUS_BACKUP_BENCH_KEEP:-0}" != 1 ]; then
    trap 'scripts/testenv.sh stop >/dev/null 2>&1; [[ $MILVUS_BACKUP_TESTENV == *bench* ]] && rm -rf "$MILVUS_BACKUP_TESTENV"' EXIT
fi
scripts/testenv.sh start >/dev/null
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/bench
rm -rf "$work" && mkdir -p "$work/backups"
cat >"$work/config.yaml" <<YAML
milvus: { address: 127.0.0.1, port: $MBT_A_PORT }
storage: { storageType: local, local: { path: $work/backups } }
YAML
# The same backups, plus A's own storage (its bucket on the S3 service):
# what --import-mode bulk stages into.
{ cat "$work/config.yaml"; bench_milvus_storage A; } >"$work/bulk.yaml"

echo "== $rows rows x 256-dim float vectors into Milvus A ($MBT_A_VERSION)" >&2
"$MBT_PY_23" - "$MBT_A_PORT" "$rows" "$work/pymilvus_insert_s" <<'PY' >&2
import sys, time, numpy as np
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
n = int(sys.argv[2])
for name in ("bench_logical", "bench_logical_imp", "bench_logical_r", "bench_logical_b"):
    if utility.has_collection(name):
        utility.drop_collection(name)
c = Collection("bench_logical", CollectionSchema([
    FieldSchema("id", DataType.INT64, is_primary=True),
    FieldSchema("vec", DataType.FLOAT_VECTOR, dim=256)]), shards_num=1)
rng = np.random.default_rng(7)
batches = []
for s in range(0, n, 10000):
    k = min(10000, n - s)
    v = rng.standard_normal((k, 256), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    batches.append([list(range(s, s + k)), v])
# Timed: pymilvus insert in batches of 10,000 rows, then the flush (what a
# restore in insert mode does too); the rows are made before the clock.
t0 = time.time()
for b in batches:
    c.insert(b, timeout=120)
c.flush(timeout=600)
with open(sys.argv[3], "w") as f:
    f.write(str(time.time() - t0))
c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
c.load(timeout=600)
print(f"   {c.num_entities} rows, loaded")
PY

timed() { # timed RSS_FILE CMD... (stdout kept; peak RSS KiB in RSS_FILE)
    local f=$1; shift
    /usr/bin/time -f "%M" -o "$f" "$@"
}

echo "== pymilvus query_iterator -> pandas -> Parquet" >&2
t0=$(date +%s.%N)
timed "$work/rss_py" "$MBT_PY_23" - "$MBT_A_PORT" "$work/pymilvus" <<'PY' >&2
import os, sys, pandas as pd
from pymilvus import Collection, connections
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
os.makedirs(sys.argv[2], exist_ok=True)
it = Collection("bench_logical").query_iterator(batch_size=10000, output_fields=["id", "vec"])
i = 0
while True:
    batch = it.next()
    if not batch:
        break
    pd.DataFrame(batch).to_parquet(os.path.join(sys.argv[2], f"backup_{i}.parquet"))
    i += 1
it.close()
PY
t1=$(date +%s.%N)

echo "== milvus-backup export --discard (the query limit: rows read and decoded, then dropped)" >&2
discard_json=$("$bin" --json --config "$work/config.yaml" export -c bench_logical --discard)
echo "== milvus-backup export (Parquet, BYTE_STREAM_SPLIT on)" >&2
# (each run's log file has its read-back time: `read back N data file(s) … (X s)`)
export_json=$(timed "$work/rss_export" "$bin" --json --config "$work/config.yaml" --set "log.file.rootPath=$work/export.log" export -c bench_logical -o "$work/export")
echo "== milvus-backup export --no-byte-stream-split" >&2
plain_json=$("$bin" --json --config "$work/config.yaml" export -c bench_logical -o "$work/export_plain" --no-byte-stream-split)
echo "== milvus-backup export --streams 8" >&2
s8_json=$(timed "$work/rss_s8" "$bin" --json --config "$work/config.yaml" export -c bench_logical -o "$work/export_s8" --streams 8)
echo "== milvus-backup create --format parquet" >&2
create_json=$(timed "$work/rss_create" "$bin" --json --config "$work/config.yaml" --set "log.file.rootPath=$work/create.log" create -n bench_logical -c bench_logical --format parquet)
echo "== milvus-backup create --format json" >&2
create_jl_json=$(timed "$work/rss_create_jl" "$bin" --json --config "$work/config.yaml" --set "log.file.rootPath=$work/create_jl.log" create -n bench_logical_jl -c bench_logical --format json)
echo "== milvus-backup import --create (insert mode)" >&2
import_json=$(timed "$work/rss_import" "$bin" --json --config "$work/config.yaml" import -i "$work/export" -c bench_logical_imp --create)
echo "== milvus-backup restore (logical backup, insert mode)" >&2
restore_json=$(timed "$work/rss_restore" "$bin" --json --config "$work/config.yaml" restore -n bench_logical -r bench_logical:bench_logical_r --no-load)
echo "== milvus-backup restore --import-mode bulk (logical backup, Milvus's import)" >&2
bulk_json=$(timed "$work/rss_bulk" "$bin" --json --config "$work/bulk.yaml" restore -n bench_logical -r bench_logical:bench_logical_b --no-load --import-mode bulk)

python3 - "$rows" "$t0" "$t1" "$work" "$export_json" "$plain_json" "$s8_json" "$create_json" "$import_json" "$restore_json" "$bulk_json" "$create_jl_json" "$discard_json" <<'PY'
import json, os, re, sys
rows, t0, t1, work = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ex, plain, s8, cr, im, rs, bk, jl, dc = (json.loads(a) for a in sys.argv[5:14])
def read_back_s(name):
    """Seconds the export spent reading its files back (summed over streams)."""
    m = re.findall(r"read back \d+ data file\(s\).*?\(([0-9.]+) s\)", open(os.path.join(work, name)).read())
    return sum(float(x) for x in m)
rss = lambda n: int(open(os.path.join(work, n)).read().split()[-1]) / 1024
du = lambda d: sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
raw = ex["raw_bytes"] / 1e6
py_s = t1 - t0
print(f"collection: {rows} rows x 256-dim float32 + int64 key, {raw:.1f} MB raw")
print(f"pymilvus query_iterator -> pandas -> Parquet: {py_s:.1f} s = {rows / py_s:,.0f} rows/s ({raw / py_s:.1f} MB/s), "
      f"{du(os.path.join(work, 'pymilvus')) / 1e6:.1f} MB Parquet, peak RSS {rss('rss_py'):.0f} MiB")
for label, s, r in (("export", ex, "rss_export"), ("export --streams 8", s8, "rss_s8")):
    print(f"milvus-backup {label}: {s['duration_s']:.1f} s = {s['rows_per_s']:,.0f} rows/s ({raw / s['duration_s']:.1f} MB/s raw), "
          f"{s['stored_bytes'] / 1e6:.1f} MB Parquet, peak RSS {rss(r):.0f} MiB — {s['rows_per_s'] / (rows / py_s):.1f}x pymilvus")
print(f"query limit (export --discard): {dc['duration_s']:.1f} s = {dc['rows_per_s']:,.0f} rows/s; "
      f"export reaches {ex['rows_per_s'] / dc['rows_per_s'] * 100:.0f}% of it")
print(f"BYTE_STREAM_SPLIT: {ex['stored_bytes'] / 1e6:.1f} MB with, {plain['stored_bytes'] / 1e6:.1f} MB without "
      f"({(1 - ex['stored_bytes'] / plain['stored_bytes']) * 100:.0f}% smaller); export {ex['duration_s']:.1f} s vs {plain['duration_s']:.1f} s")
print(f"milvus-backup create --format parquet: {cr['duration_s']:.1f} s = {cr['entities'] / cr['duration_s']:,.0f} rows/s, "
      f"{cr['size_bytes'] / 1e6:.1f} MB, peak RSS {rss('rss_create'):.0f} MiB")
for label, s, err in (("export", ex, "export.log"), ("create --format parquet", cr, "create.log"),
                      ("create --format json", jl, "create_jl.log")):
    t = read_back_s(err)
    print(f"read back after write ({label}): {t:.1f} s of stream time in a {s['duration_s']:.1f} s run "
          f"({t / s['duration_s'] * 100:.0f}% of the wall time if the streams did nothing else)")
print(f"milvus-backup create --format json: {jl['duration_s']:.1f} s = {jl['entities'] / jl['duration_s']:,.0f} rows/s, "
      f"{jl['size_bytes'] / 1e6:.1f} MB, peak RSS {rss('rss_create_jl'):.0f} MiB")
print(f"milvus-backup import --create (insert): {im['duration_s']:.1f} s = {im['rows_per_s']:,.0f} rows/s, peak RSS {rss('rss_import'):.0f} MiB")
py_ins = float(open(os.path.join(work, "pymilvus_insert_s")).read())
print(f"pymilvus insert (batches of 10,000) + flush: {py_ins:.1f} s = {rows / py_ins:,.0f} rows/s")
print(f"milvus-backup restore (logical, insert): {rs['duration_s']:.1f} s = {rs['entities'] / rs['duration_s']:,.0f} rows/s, peak RSS {rss('rss_restore'):.0f} MiB"
      f" — {(rs['entities'] / rs['duration_s']) / (rows / py_ins):.1f}x pymilvus insert")
print(f"milvus-backup restore --import-mode bulk (logical, Milvus's import): {bk['duration_s']:.1f} s = {bk['entities'] / bk['duration_s']:,.0f} rows/s, "
      f"peak RSS {rss('rss_bulk'):.0f} MiB — {(bk['entities'] / bk['duration_s']) / (rs['entities'] / rs['duration_s']):.1f}x insert mode")
PY
