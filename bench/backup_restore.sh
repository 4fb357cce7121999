#!/usr/bin/env bash
# Benchmark (not a test): backs up a collection of >= 1 GiB of binlogs and
# restores it into a second Milvus. Prints, from one run:
#   - backup into another bucket of the same S3 server (server-side copies)
#     against `rclone copy` (server-side) of the same insert logs;
#   - backup into a second S3 service (streamed) against
#     `rclone copy --disable copy` between the same two services
#     (each of the four $MILVUS_BACKUP_BENCH_ROUNDS times, default 3, ours and
#     rclone's alternating; the medians of the wall times are compared);
#   - peak RSS of each; an incremental backup of the unchanged collection
#     against the full one; a --rate-limit run against its cap;
#   - restore rows/s with the wall-time split (create, staging, import, load);
#   - `list` of 1,000 backups and `get` of a 10,000-segment backup
#     (catalogs made by copying and widening meta files).
#
#   bench/backup_restore.sh [GiB ...]     # default 1.0; e.g. `1 5`
#
# Uses its own servers (run dir /tmp/milvus-backup-bench-perf, ports 246xx-249xx) and
# installs what it needs (rclone and GNU time from Debian's packages).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sizes=("${@:-1.0}")
rounds=${MILVUS_BACKUP_BENCH_ROUNDS:-3}
export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench-perf}
export MBT_PORT_BASE=${MBT_PORT_BASE:-24600}
export MBT_SERVICES="A B"
export MBT_MINIMAL=1

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need rclone rclone
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

bin=$PWD/target/release/milvus-backup
# The servers and their data (GBs of objects) go when the run ends;
# MILVUS_BACKUP_BENCH_KEEP=1 keeps them for a look afterwards.
if [ "${MILVUS_BACKUP_BENCH_KEEP:-0}" != 1 ]; then
    trap 'scripts/testenv.sh stop >/dev/null 2>&1; [[ $MILVUS_BACKUP_TESTENV == *bench* ]] && rm -rf "$MILVUS_BACKUP_TESTENV"' EXIT
fi
scripts/testenv.sh start
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/bench
mkdir -p "$work"
py_s3=${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}/venv-moto/bin/python

yaml() { # yaml INSTANCE BACKUP_ENDPOINT BACKUP_BUCKET BACKUP_ROOT [extra backup: keys]
    local port_var="MBT_$1_PORT" bucket_var="MBT_$1_BUCKET"
    cat <<YAML
milvus: { address: 127.0.0.1, port: ${!port_var} }
minio:
  address: 127.0.0.1
  port: ${MBT_S3_ENDPOINT##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: ${!bucket_var}
  rootPath: files
  backupAddress: 127.0.0.1
  backupPort: ${2##*:}
  backupAccessKeyID: $MBT_S3_ACCESS_KEY
  backupSecretAccessKey: $MBT_S3_SECRET_KEY
  backupBucketName: $3
  backupRootPath: $4
backup: { gcPause: { enable: false }, parallelism: { copydata: 64, importJob: 4 }$5 }
YAML
}
yaml A "$MBT_S3_ENDPOINT" "$MBT_BACKUP_BUCKET" bench "" >"$work/other.yaml"
yaml A "$MBT_S3B_ENDPOINT" "$MBT_BACKUP_BUCKET" bench "" >"$work/stream.yaml"
yaml A "$MBT_S3_ENDPOINT" "$MBT_BACKUP_BUCKET" bench-rate "" >"$work/rate.yaml"
yaml B "$MBT_S3_ENDPOINT" "$MBT_BACKUP_BUCKET" bench "" >"$work/restore.yaml"
yaml A "$MBT_S3_ENDPOINT" "$MBT_BACKUP_BUCKET" bench-catalog "" >"$work/catalog.yaml"

export RCLONE_CONFIG_S3_TYPE=s3 RCLONE_CONFIG_S3_PROVIDER=Other RCLONE_CONFIG_S3_ENDPOINT=$MBT_S3_ENDPOINT \
    RCLONE_CONFIG_S3_ACCESS_KEY_ID=$MBT_S3_ACCESS_KEY RCLONE_CONFIG_S3_SECRET_ACCESS_KEY=$MBT_S3_SECRET_KEY
export RCLONE_CONFIG_S3B_TYPE=s3 RCLONE_CONFIG_S3B_PROVIDER=Other RCLONE_CONFIG_S3B_ENDPOINT=$MBT_S3B_ENDPOINT \
    RCLONE_CONFIG_S3B_ACCESS_KEY_ID=$MBT_S3_ACCESS_KEY RCLONE_CONFIG_S3B_SECRET_ACCESS_KEY=$MBT_S3_SECRET_KEY
rcl() { env -u AWS_CA_BUNDLE rclone --transfers 64 --checkers 64 --s3-no-check-bucket "$@" 2>/dev/null; }
now() { date +%s.%N; }
timed() { # timed OUT_JSON RSS_FILE CMD... : JSON stats on stdout, peak RSS (KiB) in RSS_FILE
    local out=$1 rss=$2
    shift 2
    /usr/bin/time -f "%M" -o "$rss" "$@" >"$out"
}
clean() {
    for c in other stream rate; do "$bin" -q --config "$work/$c.yaml" delete --all --yes >/dev/null 2>&1 || true; done
    # The 1,000 catalog backups are copies of one backup's meta files that
    # all name it: they go by prefix.
    rcl purge "s3:$MBT_BACKUP_BUCKET/bench-catalog" || true
}

for gib in "${sizes[@]}"; do
    echo "== ${gib} GiB: creating vectors in Milvus A"
    reuse=()
    [ "${MILVUS_BACKUP_BENCH_REUSE:-0}" = 1 ] && reuse=(--reuse)
    data=$("$MBT_PY_23" bench/make_data.py --port "$MBT_A_PORT" --gib "$gib" "${reuse[@]}" 2>/dev/null)
    rows=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["rows"])' "$data")
    cargo build --release --quiet -p milvus-backup # after the data: the build overlaps the servers' start
    clean
    rcl purge "s3:$MBT_BACKUP_BUCKET/rclone-bench" || true
    rcl purge "s3b:$MBT_BACKUP_BUCKET/rclone-bench" || true

    echo "== backups ($rounds rounds: ours and rclone alternate, medians reported)"
    : >"$work/rounds.txt"
    coll_id=""
    for r in $(seq 1 "$rounds"); do
        # Round 1's backups are kept (the incremental's base, the restore's source).
        ss=full st=stream
        [ "$r" = 1 ] || { ss=full$r; st=stream$r; }
        t0=$(now)
        timed "$work/ss$r.json" "$work/ss$r.rss" "$bin" --json --config "$work/other.yaml" create -n "$ss" -c bench_vectors -f
        t1=$(now)
        [ -n "$coll_id" ] || coll_id=$("$bin" --json --config "$work/other.yaml" get -n full | python3 -c 'import json,sys; print(json.load(sys.stdin)["collection_backups"][0]["collection_id"])')
        rcl copy "s3:$MBT_A_BUCKET/files/insert_log/$coll_id" "s3:$MBT_BACKUP_BUCKET/rclone-bench/insert_log/$coll_id"
        t2=$(now)
        rcl purge "s3:$MBT_BACKUP_BUCKET/rclone-bench" || true
        t2b=$(now)
        timed "$work/st$r.json" "$work/st$r.rss" "$bin" --json --config "$work/stream.yaml" create -n "$st" -c bench_vectors -f
        t3=$(now)
        rcl copy --disable copy "s3:$MBT_A_BUCKET/files/insert_log/$coll_id" "s3b:$MBT_BACKUP_BUCKET/rclone-bench/insert_log/$coll_id"
        t4=$(now)
        rcl purge "s3b:$MBT_BACKUP_BUCKET/rclone-bench" || true
        echo "$r $t0 $t1 $t2 $t2b $t3 $t4" >>"$work/rounds.txt"
        # Extra rounds' copies go at once: at 5 GiB the disk holds few.
        if [ "$r" != 1 ]; then
            "$bin" -q --config "$work/other.yaml" delete -n "$ss" --yes
            "$bin" -q --config "$work/stream.yaml" delete -n "$st" --yes
        fi
    done
    for ext in json rss; do cp "$work/ss1.$ext" "$work/full.$ext" && cp "$work/st1.$ext" "$work/stream.$ext"; done
    timed "$work/incr.json" "$work/incr.rss" "$bin" --json --config "$work/other.yaml" create -n incr -c bench_vectors -f --incremental
    mb=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size_bytes"] / 1e6)' "$work/full.json")
    # A third of the speed measured above: the cap, not the storage, sets the pace.
    cap=$(python3 -c 'import statistics, sys
rounds = [list(map(float, l.split()[1:])) for l in open(sys.argv[2])]
print(max(1, int(float(sys.argv[1]) / statistics.median(r[1] - r[0] for r in rounds) / 3)))' "$mb" "$work/rounds.txt")
    timed "$work/rate.json" "$work/rate.rss" "$bin" --json --config "$work/rate.yaml" create -n capped -c bench_vectors -f --rate-limit "$cap"
    "$bin" -q --config "$work/rate.yaml" delete -n capped --yes
    rclone_mb=$(env -u AWS_CA_BUNDLE rclone size --json "s3:$MBT_A_BUCKET/files/insert_log/$coll_id" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"] / 1e6)')

    echo "== restoring into Milvus B"
    t3=$(now)
    "$bin" -q --config "$work/restore.yaml" restore -n full -s _plan --dry-run >/dev/null
    t4=$(now)
    timed "$work/restore.json" "$work/restore.rss" "$bin" --json --config "$work/restore.yaml" restore -n full -s "_r$(date +%s)"

    echo "== catalog: 1,000 backups, one of 10,000 segments"
    "$py_s3" - "$MBT_S3_ENDPOINT" "$MBT_S3_ACCESS_KEY" "$MBT_S3_SECRET_KEY" "$MBT_BACKUP_BUCKET" <<'PY'
import json, sys
from concurrent.futures import ThreadPoolExecutor
import boto3
endpoint, ak, sk, bucket = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="us-east-1", config=boto3.session.Config(max_pool_connections=64))
src = "bench/full/meta/"
# No catalog index yet: the first list reads every backup and builds it.
s3.delete_object(Bucket=bucket, Key=".milvus-backup/bench-catalog/catalog.json")
metas = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=src)["Contents"]]
def copy(i):
    for k in metas:
        s3.copy_object(Bucket=bucket, Key=f"bench-catalog/cat_{i:04d}/meta/{k[len(src):]}",
                       CopySource={"Bucket": bucket, "Key": k})
with ThreadPoolExecutor(64) as pool:
    list(pool.map(copy, range(1000)))
# One backup of 10,000 segments: the bench backup's segments repeated.
full = json.loads(s3.get_object(Bucket=bucket, Key=src + "full_meta.json")["Body"].read())
part = full["collection_backups"][0]["partition_backups"][0]
segs = part["segment_backups"]
part["segment_backups"] = [dict(segs[i % len(segs)], segment_id=10**9 + i) for i in range(10000)]
s3.put_object(Bucket=bucket, Key="bench-catalog/wide/meta/full_meta.json", Body=json.dumps(full).encode())
PY
    t5=$(now)
    "$bin" -q --config "$work/catalog.yaml" list >/dev/null # builds the catalog index
    t6=$(now)
    "$bin" -q --config "$work/catalog.yaml" list >/dev/null
    t6b=$(now)
    "$bin" --json --config "$work/catalog.yaml" get -n wide >/dev/null
    t7=$(now)

    python3 - "$work" "$gib" "$rows" "$mb" "$rclone_mb" "$cap" "$t3" "$t4" "$t5" "$t6" "$t6b" "$t7" <<'PY'
import json, statistics, sys
work, gib, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
mb, rclone_mb, cap = float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])
t3, t4, t5, t6, t6b, t7 = map(float, sys.argv[7:13])
st = {n: json.load(open(f"{work}/{n}.json")) for n in ["full", "incr", "stream", "rate", "restore"]}
rss = {n: int(open(f"{work}/{n}.rss").read().split()[-1]) / 1024 for n in st}
full, incr, stream, rate, rs = (st[n] for n in ["full", "incr", "stream", "rate", "restore"])
# Wall times of each round (process start to exit, ours and rclone's alike); medians.
rounds = [list(map(float, l.split()[1:])) for l in open(f"{work}/rounds.txt")]
peak = lambda kind: max(int(open(f"{work}/{kind}{r}.rss").read().split()[-1]) / 1024 for r in range(1, len(rounds) + 1))
med = lambda xs: statistics.median(xs)
ss_s, rs_s = med([r[1] - r[0] for r in rounds]), med([r[2] - r[1] for r in rounds])
st_s, rt_s = med([r[4] - r[3] for r in rounds]), med([r[5] - r[4] for r in rounds])
ours_ss, ours_st = mb / ss_s, mb / st_s
rc_ss, rc_st = rclone_mb / rs_s, rclone_mb / rt_s
each = lambda i, j: "/".join(f"{r[j] - r[i]:.1f}" for r in rounds)
print(f"\n--- {gib} GiB: {mb:.0f} MB of binlogs in {full['files']} files, {rows:,} rows; medians of {len(rounds)} rounds ---")
print(f"another bucket, same S3 (server-side): ours {ours_ss:7.1f} MB/s ({ss_s:.1f} s of {each(0, 1)}, peak RSS {peak('ss'):.0f} MiB)"
      f"  rclone copy {rc_ss:7.1f} MB/s ({rs_s:.1f} s of {each(1, 2)})  ratio {ours_ss / rc_ss:.2f}x")
print(f"second S3 service (streamed):          ours {ours_st:7.1f} MB/s ({st_s:.1f} s of {each(3, 4)}, peak RSS {peak('st'):.0f} MiB)"
      f"  rclone --disable copy {rc_st:7.1f} MB/s ({rt_s:.1f} s of {each(4, 5)})  ratio {ours_st / rc_st:.2f}x")
print(f"incremental of unchanged data: {incr['duration_s']:.2f} s = {100 * incr['duration_s'] / full['duration_s']:.1f} % of full"
      f" ({incr['shared_files']} files shared, {incr['copied_bytes']} bytes copied, peak RSS {rss['incr']:.0f} MiB)")
print(f"--rate-limit {cap} MB/s: {mb / rate['duration_s']:.1f} MB/s over the whole backup ({rate['duration_s']:.1f} s,"
      f" {100 * (mb / rate['duration_s'] / cap - 1):+.1f} % of the cap)")
w = rs["wall"]
print(f"restore: {rs['entities'] / rs['duration_s']:,.0f} rows/s  {mb / rs['duration_s']:.1f} MB/s  {rs['duration_s']:.1f} s; wall split:"
      f" plan {t4 - t3:.1f} s, create {w['create_s']:.1f} s, staging {w['staging_s']:.1f} s, import {w['import_s']:.1f} s,"
      f" load {w['load_s']:.1f} s; {rs['staged_bytes'] / 1e6:.0f} MB staged (server-side), peak RSS {rss['restore']:.0f} MiB")
overhead = rs["duration_s"] - w["import_s"]
print(f"restore overhead (wall time outside Milvus's imports): {overhead:.1f} s = {100 * overhead / max(w['import_s'], 1e-9):.0f} % of import")
print(f"catalog: list of 1,000 backups: first {t6 - t5:.2f} s (builds the index), then {t6b - t6:.2f} s;"
      f" get of a 10,000-segment backup {t7 - t6b:.2f} s")
PY
done
