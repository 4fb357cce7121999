#!/usr/bin/env bash
# Benchmark (not a test): compression and incremental backups on real
# binlogs. Generates data with scripts/gen_data.py (every scalar type, JSON,
# arrays, small vectors; ROWS rows per collection) and bench/make_data.py
# (256-dim float vectors, VEC_GIB GiB), then backs each set up streamed to
# another bucket with --compress none, zstd 1/3/9 and gzip 6, and prints
# the stored/raw ratio and MB/s (raw bytes per second of the whole create).
# Last, it times a full backup of unchanged data against an incremental one
# (--base-backup).
#
#   bench/compression.sh [ROWS] [VEC_GIB]      # defaults 100000 0.25
#
# Uses its own servers (run dir /tmp/milvus-backup-bench, ports 216xx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rows=${1:-100000}
vec_gib=${2:-0.25}
export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench}
export MBT_PORT_BASE=${MBT_PORT_BASE:-21600}
export MBT_SERVICES="A"

cargo build --release --locked --quiet
bin=$PWD/target/release/milvus-backup
scripts/testenv.sh start
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/bench
mkdir -p "$work"
cat >"$work/compress.yaml" <<YAML
milvus: { address: 127.0.0.1, port: $MBT_A_PORT }
minio:
  address: 127.0.0.1
  port: ${MBT_S3_ENDPOINT##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: $MBT_A_BUCKET
  rootPath: files
  backupBucketName: $MBT_BACKUP_BUCKET
  backupRootPath: bench_compress
backup: { gcPause: { enable: false }, parallelism: { copydata: 16 } }
YAML
cb() { "$bin" --config "$work/compress.yaml" "$@"; }

echo "== generating data: gen_data.py ($rows rows per collection) and $vec_gib GiB of vectors"
"$MBT_PY_23" scripts/gen_data.py drop --host 127.0.0.1 --port "$MBT_A_PORT" --prefix bench_ >/dev/null 2>&1 || true
"$MBT_PY_23" scripts/gen_data.py generate --host 127.0.0.1 --port "$MBT_A_PORT" --prefix bench_ --rows "$rows" >/dev/null
"$MBT_PY_23" bench/make_data.py --port "$MBT_A_PORT" --gib "$vec_gib" --name bench_vectors >/dev/null
mixed=$("$MBT_PY_23" -c "
from pymilvus import connections, utility
connections.connect(host='127.0.0.1', port=$MBT_A_PORT)
print(','.join(c for c in utility.list_collections() if c.startswith('bench_') and c != 'bench_vectors'))")

cb -q delete --all --yes || true
results=()
for set in mixed vectors; do
    colls=$mixed; [ "$set" = vectors ] && colls=bench_vectors
    for codec in "none 0" "zstd 1" "zstd 3" "zstd 9" "gzip 6"; do
        read -r alg lvl <<<"$codec"
        name="b_${set}_${alg}_${lvl}"
        out=$(cb --json create -n "$name" -c "$colls" --compress "$alg" --compress-level "$lvl")
        results+=("$set $alg $lvl $out")
    done
done
full=$(cb --json create -n b_full -c "$mixed,bench_vectors")
inc=$(cb --json create -n b_inc -c "$mixed,bench_vectors" --base-backup b_full)

python3 - "$full" "$inc" "${results[@]}" <<'PY'
import json, sys
full, inc = json.loads(sys.argv[1]), json.loads(sys.argv[2])
raw = {}
print(f"\n{'data':8} {'codec':8} {'raw MB':>8} {'stored MB':>10} {'ratio':>6} {'MB/s':>7} {'s':>6}")
for line in sys.argv[3:]:
    data, alg, lvl, out = line.split(" ", 3)
    s = json.loads(out)
    if alg == "none":
        raw[data] = s["size_bytes"]
    r = raw[data]
    codec = "none" if alg == "none" else f"{alg}-{lvl}"
    print(f"{data:8} {codec:8} {r / 1e6:8.1f} {s['size_bytes'] / 1e6:10.1f} {r / s['size_bytes']:6.2f} "
          f"{r / 1e6 / s['duration_s']:7.1f} {s['duration_s']:6.1f}")
print(f"\nfull backup of unchanged data:        {full['duration_s']:6.2f} s, {full['copied_bytes'] / 1e6:8.1f} MB copied, {full['files']} files")
print(f"incremental backup (--base-backup):   {inc['duration_s']:6.2f} s, {inc['copied_bytes'] / 1e6:8.1f} MB copied, {inc['shared_files']} files shared")
PY
