#!/usr/bin/env bash
# Benchmark (not a test): a logical backup and its restore made by N
# shard processes at once (`--shard K/N`, then `--seal`), as a Kubernetes
# Indexed Job runs them, against one process, in the same run: one
# collection of ROWS rows (default 500,000) x 256-dim float vectors +
# int64 key on its own Milvus 2.3.5, backups on the local disk. Prints
# each run's wall time (shards started together, then the seal), rows/s
# and speed-up over one process, for N = 1 (one plain process), 2 and 4.
#
#   bench/sharded.sh [ROWS]
#
# The shards share this machine's cores with Milvus (its query node
# serves every shard's reads), so the speed-up shows where one machine
# stops scaling, not what N machines would reach.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-500000}
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_binary
bench_servers sharded 22100 A
work=$MILVUS_BACKUP_TESTENV/bench-sharded
rm -rf "$work" && mkdir -p "$work/backups"
cat >"$work/config.yaml" <<YAML
milvus: { address: 127.0.0.1, port: $MBT_A_PORT }
storage: { storageType: local, local: { path: $work/backups } }
YAML
cli() { "$bin" --json --config "$work/config.yaml" "$@"; }

echo "== $rows rows x 256-dim float vectors into Milvus A ($MBT_A_VERSION), indexed and loaded" >&2
"$MBT_PY_23" bench/make_data.py --port "$MBT_A_PORT" --rows "$rows" --load --name bench_sharded >&2

# wall FILE CMD...: runs CMD, writes its start and end times.
wall() {
    local f=$1; shift
    local t0; t0=$(date +%s.%N)
    "$@" >/dev/null
    echo "$t0 $(date +%s.%N)" >"$f"
}
# shards OP N NAME TARGET: N shard processes at once, then the seal.
shards() {
    local op=$1 n=$2 name=$3 target=$4 k pids=()
    for ((k = 0; k < n; k++)); do
        if [ "$op" = create ]; then
            cli create -n "$name" -c bench_sharded --format parquet --shard "$k/$n" >"$work/$name.shard$k.json" &
        else
            cli restore -n "$name" -r "bench_sharded:$target" --shard "$k/$n" >"$work/$target.shard$k.json" &
        fi
        pids+=($!)
    done
    for k in "${pids[@]}"; do wait "$k"; done
    if [ "$op" = create ]; then
        cli create -n "$name" --seal
    else
        cli restore -n "$name" -r "bench_sharded:$target" --seal
    fi
}

echo "== create --format parquet: one process" >&2
wall "$work/create_1" cli create -n one -c bench_sharded --format parquet
for n in 2 4; do
    echo "== create --format parquet: $n shards + seal" >&2
    wall "$work/create_$n" shards create "$n" "sharded$n" -
done
echo "== restore: one process" >&2
wall "$work/restore_1" cli restore -n one -r bench_sharded:bench_sharded_r1
for n in 2 4; do
    echo "== restore: $n shards + seal" >&2
    wall "$work/restore_$n" shards restore "$n" "sharded$n" "bench_sharded_r$n"
done
echo "== verify --deep of the 4-shard backup" >&2
cli verify --deep -n sharded4 >/dev/null

python3 - "$rows" "$work" <<'PY'
import os, sys
rows, work = int(sys.argv[1]), sys.argv[2]
def t(n):
    start, end = map(float, open(os.path.join(work, n)).read().split())
    return end - start
print(f"collection: {rows} rows x 256-dim float32 + int64 key; Milvus 2.3.5 and the shards on {os.cpu_count()} cores")
for op in ("create", "restore"):
    one = t(f"{op}_1")
    for n in (1, 2, 4):
        s = t(f"{op}_{n}")
        how = "one process" if n == 1 else f"{n} shards + seal"
        print(f"{op} --format parquet ({how}): {s:.1f} s = {rows / s:,.0f} rows/s — {one / s:.2f}x one process"
              if op == "create" else
              f"{op} ({how}, indexed and loaded): {s:.1f} s = {rows / s:,.0f} rows/s — {one / s:.2f}x one process")
print("the 4-shard backup passes verify --deep")
PY
