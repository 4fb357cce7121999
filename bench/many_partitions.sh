#!/usr/bin/env bash
# Benchmark (not a test): restores of a partition-key collection whose rows
# are spread thin over many partitions (one small segment each), physical
# against logical, on Milvus 2.3.5. For each PARTITIONS (default `1024 300`)
# a collection with `num_partitions` PARTITIONS and ROWS rows (default 6000;
# int64 key, varchar partition key, 8-dim vector) is made, flushed and
# backed up twice (binlogs; `--format parquet`); then the physical backup
# is restored twice (Milvus's import; `--import-mode insert`) and the
# logical one once, each under a new name and timed. Prints per size:
# segments, the plan's two estimates (`restore --dry-run`), and the wall
# time of each restore. A physical restore by Milvus's import longer than
# PHYSICAL_LIMIT_S (default 3600) is stopped and reported as such;
# PHYSICAL_LIMIT_S=0 skips it.
#
#   bench/many_partitions.sh [PARTITIONS ...]
#
# Uses its own servers (run dir /tmp/milvus-backup-bench-parts, ports
# 218xx); with MILVUS_BACKUP_BENCH_REUSE=1 the test environment already
# running at $MILVUS_BACKUP_TESTENV instead (left running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=("${@:-1024}")
[ $# -eq 0 ] && sizes=(1024 300)
rows=${ROWS:-6000}
limit=${PHYSICAL_LIMIT_S:-3600}
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_servers parts 21800 "A"

bench_binary
work=$(mktemp -d)
root=bench_parts_$$
bench_s3_config "$work/config.yaml" "$root"
mb() { "$bin" -q --config "$work/config.yaml" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

for parts in "${sizes[@]}"; do
    coll=bench_parts_$parts
    echo "== $parts partitions, $rows rows" >&2
    "$MBT_PY_23" - "$MBT_A_PORT" "$coll" "$parts" "$rows" <<'PY' >&2
import sys, random
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
name, parts, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for c in (name, name + "_phys", name + "_logi", name + "_ins"):
    if utility.has_collection(c):
        utility.drop_collection(c)
c = Collection(name, CollectionSchema([
    FieldSchema("id", DataType.INT64, is_primary=True),
    FieldSchema("tenant", DataType.VARCHAR, max_length=32, is_partition_key=True),
    FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8)]), shards_num=1, num_partitions=parts)
r = random.Random(7)
c.insert([list(range(n)), [f"t{i}" for i in range(n)],
          [[r.uniform(-1, 1) for _ in range(8)] for _ in range(n)]])
c.flush()
c.create_index("vec", {"index_type": "FLAT", "metric_type": "L2", "params": {}})
c.load()
print(f"   {c.num_entities} rows in {len(c.partitions)} partitions", flush=True)
PY
    mb create -n "${coll}_b" -c "$coll" >/dev/null
    mb create -n "${coll}_l" -c "$coll" --format parquet >/dev/null
    segments=$(mb --json get -n "${coll}_b" | "$MBT_PY_23" -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(p.get("segment_backups",[])) for c in d.get("collection_backups",[]) for p in c.get("partition_backups",[])))' 2>/dev/null || echo "?")
    plan=$(mb --json restore -n "${coll}_b" -s _phys --dry-run | "$MBT_PY_23" -c 'import json,sys; p=json.load(sys.stdin)["plan"]; s=p.get("slow_imports") or [{}]; print(len(p["tasks"][0]["imports"]), round(s[0].get("import_s",0)), round(s[0].get("insert_s",0)))')
    read -r jobs est_import est_insert <<<"$plan"

    t0=$(now)
    mb restore -n "${coll}_l" -s _logi >/dev/null
    logical=$(secs "$t0" "$(now)")
    t0=$(now)
    mb restore -n "${coll}_b" -s _ins --import-mode insert >/dev/null
    inserted=$(secs "$t0" "$(now)")
    t0=$(now)
    if [ "$limit" = 0 ]; then
        physical="skipped (PHYSICAL_LIMIT_S=0)"
    elif timeout "$limit" "$bin" -q --config "$work/config.yaml" restore -n "${coll}_b" -s _phys >/dev/null; then
        physical="$(secs "$t0" "$(now)") s"
    else
        physical="over $limit s (stopped)"
    fi
    printf '%s partitions x %s rows: %s segments, %s import jobs; plan estimates: import %s s, insert %s s\n' \
        "$parts" "$rows" "$segments" "$jobs" "$est_import" "$est_insert"
    printf '   restore of the physical backup (Milvus imports segments): %s\n' "$physical"
    printf '   restore of the physical backup, --import-mode insert: %s s\n' "$inserted"
    printf '   restore of the logical backup (rows inserted): %s s\n' "$logical"
    mb delete -n "${coll}_b" --yes >/dev/null
    mb delete -n "${coll}_l" --yes >/dev/null
    "$MBT_PY_23" - "$MBT_A_PORT" "$coll" <<'PY' >&2
import sys
from pymilvus import connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
for c in (sys.argv[2], sys.argv[2] + "_phys", sys.argv[2] + "_logi", sys.argv[2] + "_ins"):
    if utility.has_collection(c):
        utility.drop_collection(c)
PY
done
rm -rf "$work"
