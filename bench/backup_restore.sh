#!/usr/bin/env bash
# Benchmark (not a test): backs up a collection with >= 1 GiB of binlogs on
# the local S3 server and restores it into a second Milvus. Prints, from one
# run: our backup MB/s (same bucket: server-side copy; another bucket:
# streamed), `rclone copy` MB/s for the same prefix, our peak RSS, and
# restore rows/s, MB/s and the staging/import split.
#
#   bench/backup_restore.sh [GiB]        # default 1.0
#
# Uses its own servers (run dir /tmp/milvus-backup-bench, ports 216xx).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
gib=${1:-1.0}
export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench}
export MBT_PORT_BASE=${MBT_PORT_BASE:-21600}
export MBT_SERVICES="A B"

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need rclone rclone
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cargo build --release --locked --quiet
bin=$PWD/target/release/milvus-backup
scripts/testenv.sh start
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/bench
mkdir -p "$work"
s3_port=${MBT_S3_ENDPOINT##*:}

yaml() { # yaml INSTANCE BACKUP_BUCKET
    local port_var="MBT_$1_PORT" bucket_var="MBT_$1_BUCKET"
    cat <<YAML
milvus: { address: 127.0.0.1, port: ${!port_var} }
minio:
  address: 127.0.0.1
  port: $s3_port
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: ${!bucket_var}
  rootPath: files
  backupBucketName: $2
  backupRootPath: bench
backup: { gcPause: { enable: false }, parallelism: { copydata: 64, importJob: 4 } }
YAML
}
yaml A "$MBT_A_BUCKET" >"$work/same.yaml"
yaml A "$MBT_BACKUP_BUCKET" >"$work/other.yaml"
yaml B "$MBT_BACKUP_BUCKET" >"$work/restore.yaml"

echo "== creating ${gib} GiB of vectors in Milvus A"
data=$("$MBT_PY_23" bench/make_data.py --port "$MBT_A_PORT" --gib "$gib" 2>/dev/null)
rows=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rows"])' "$data")
echo "   $rows rows"

run_backup() { # run_backup CONFIG NAME -> prints JSON stats; peak RSS in $work/rss
    /usr/bin/time -f "%M" -o "$work/rss" "$bin" --json --config "$1" create -n "$2" -c bench_vectors -f
}

"$bin" -q --config "$work/same.yaml" delete --all --yes || true
"$bin" -q --config "$work/other.yaml" delete --all --yes || true
same=$(run_backup "$work/same.yaml" bench_same); rss_same=$(cat "$work/rss")
other=$(run_backup "$work/other.yaml" bench_other); rss_other=$(cat "$work/rss")

# rclone: the same insert logs, from Milvus's bucket to the backup bucket.
coll_id=$("$bin" --json --config "$work/same.yaml" get -n bench_same | python3 -c 'import json,sys; print(json.load(sys.stdin)["collection_backups"][0]["collection_id"])')
export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT=$MBT_S3_ENDPOINT \
    RCLONE_CONFIG_S3_ACCESS_KEY_ID=$MBT_S3_ACCESS_KEY RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$MBT_S3_SECRET_KEY
bytes=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["size_bytes"])' "$same")
t0=$(date +%s.%N)
env -u AWS_CA_BUNDLE rclone copy --transfers 64 --checkers 64 "s3:$MBT_A_BUCKET/files/insert_log/$coll_id" "s3:$MBT_BACKUP_BUCKET/rclone-bench/insert_log/$coll_id" 2>/dev/null
t1=$(date +%s.%N)
env -u AWS_CA_BUNDLE rclone copy --transfers 64 --checkers 64 --s3-no-check-bucket --disable copy "s3:$MBT_A_BUCKET/files/insert_log/$coll_id" "s3:$MBT_BACKUP_BUCKET/rclone-bench-stream/insert_log/$coll_id" 2>/dev/null
t2=$(date +%s.%N)

echo "== restoring into Milvus B"
restore=$(/usr/bin/time -f "%M" -o "$work/rss_restore" "$bin" --json --config "$work/restore.yaml" restore -n bench_other -s "_r$(date +%s)")

python3 - "$same" "$other" "$restore" "$bytes" "$t0" "$t1" "$t2" "$rss_same" "$rss_other" "$(cat "$work/rss_restore")" <<'PY'
import json, sys
same, other, restore = (json.loads(x) for x in sys.argv[1:4])
size, t0, t1, t2 = int(sys.argv[4]), *map(float, sys.argv[5:8])
rss = [int(x) / 1024 for x in sys.argv[8:11]]
mb = size / 1e6
print(f"\nbinlogs: {mb:.0f} MB in {same['files']} files, {same['entities']} entities")
print(f"backup, same bucket (server-side copy + read-back checksum): {mb / same['duration_s']:7.1f} MB/s  {same['duration_s']:6.1f} s  peak RSS {rss[0]:.0f} MiB")
print(f"backup, other bucket (streamed, checksummed in flight):      {mb / other['duration_s']:7.1f} MB/s  {other['duration_s']:6.1f} s  peak RSS {rss[1]:.0f} MiB")
print(f"rclone copy, other bucket (server-side copy):                {mb / (t1 - t0):7.1f} MB/s  {t1 - t0:6.1f} s")
print(f"rclone copy --disable copy, other bucket (streamed):         {mb / (t2 - t1):7.1f} MB/s  {t2 - t1:6.1f} s")
d = restore["duration_s"]
print(f"restore into another Milvus: {restore['entities'] / d:,.0f} rows/s  {mb / d:.1f} MB/s  {d:.1f} s "
      f"(staging {restore['staging_s']:.1f} s, import {restore['import_s']:.1f} s summed over jobs; "
      f"{restore['staged_bytes'] / 1e6:.0f} MB staged)  peak RSS {rss[2]:.0f} MiB")
PY
