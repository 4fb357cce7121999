#!/usr/bin/env bash
# Benchmark (not a test): the idle cost of the backup_strategy scheduler.
# Starts `milvus-backup server` twice on the shared test servers' S3 (a
# fresh backup root each): without a strategy, and with one whose
# schedules do not fire during the run (it holds the lease, renews it and
# recomputes health every 10 s). Prints CPU seconds used over WINDOW
# seconds and the resident memory at the end, for each.
#
#   bench/scheduler_idle.sh [WINDOW]     # default 60
#
# Needs `scripts/testenv.sh start` (S3 and Milvus A); uses target/release
# when built, else target/debug.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
window=${1:-60}
# shellcheck disable=SC1091
source "${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}/env.sh"
bin=target/release/milvus-backup
[ -x "$bin" ] || bin=target/debug/milvus-backup
work=$(mktemp -d)
s3=${MBT_S3_ENDPOINT#http://}
base() {
  cat <<YAML
milvus: { address: $MBT_A_HOST, port: $MBT_A_PORT }
minio:
  storageType: minio
  address: ${s3%:*}
  port: ${s3##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: $MBT_A_BUCKET
  rootPath: $MBT_A_ROOT
  backupBucketName: $MBT_BACKUP_BUCKET
  backupRootPath: bench_idle_$1
YAML
}
base plain > "$work/plain.yaml"
{ base strategy; cat <<YAML
backup_strategy:
  full_backup: { schedule: "0 0 1 1 *", retention: 1 }
  incremental_backup: { schedule: "0 0 1 1 *", retention: 1 }
  verification: { schedule: "0 0 1 1 *" }
  rpo: 24h
YAML
} > "$work/strategy.yaml"
ticks=$(getconf CLK_TCK)
measure() {
  local name=$1 port=$2
  "$bin" --config "$work/$name.yaml" --set http.address=127.0.0.1 server -p "$port" >"$work/$name.log" 2>&1 &
  local pid=$!
  sleep 5   # startup: lease, first health
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  sleep "$window"
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  local rss
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  awk -v n="$name" -v c="$(( (u1 + s1) - (u0 + s0) ))" -v t="$ticks" -v w="$window" -v r="$rss" \
    'BEGIN { printf "%-9s cpu %.2f s in %d s (%.3f %% of one core), RSS %.1f MiB\n", n, c / t, w, 100 * c / t / w, r / 1024 }'
}
echo "binary: $bin, window ${window}s, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
measure plain 18461
measure strategy 18462
rm -rf "$work"
