#!/usr/bin/env bash
# Benchmark (not a test): `delete` in a catalog of N backups (default 1000)
# in the S3 test service (moto), on Milvus 2.3.5.
#
# A small collection is backed up as `cat_base`, changed, and backed up
# again as the incremental `cat_inc` (which keeps files in cat_base's
# folder); one more full backup is copied object by object (server-side)
# into N-2 more backups, with its reference record, as if each had been
# made by this build. Then, timed:
#   1. `delete -n cat_base` among N: its shared files move into cat_inc;
#   2. the same after the reference records are removed, as in a catalog
#      made by an older build or the Go tool (the delete reads every
#      manifest once and records what it read);
#   3. `delete --all` of the rest.
# and `list` of N before the deletes.
#
#   bench/catalog.sh [N]
#
# Uses its own servers (run dir /tmp/milvus-backup-bench-catalog, ports
# 219xx); with MILVUS_BACKUP_BENCH_REUSE=1 the test environment already
# running at $MILVUS_BACKUP_TESTENV instead (left running).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
# shellcheck source=bench/lib.sh
source bench/lib.sh
bench_servers catalog 21900 "A"
py_s3=${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}/venv-moto/bin/python

bench_binary
work=$(mktemp -d)
root=bench_catalog_$$
coll=bench_catalog_$$
bench_s3_config "$work/config.yaml" "$root"
mb() { "$bin" -q --config "$work/config.yaml" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
rows() {
    "$MBT_PY_23" - "$MBT_A_PORT" "$coll" "$1" "$2" <<'PY'
import sys, random
from pymilvus import Collection, CollectionSchema, DataType, FieldSchema, connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
name, start, n = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if start == 0 and utility.has_collection(name):
    utility.drop_collection(name)
c = Collection(name, CollectionSchema([
    FieldSchema("id", DataType.INT64, is_primary=True),
    FieldSchema("vec", DataType.FLOAT_VECTOR, dim=8)]), shards_num=1)
r = random.Random(start)
c.insert([list(range(start, start + n)), [[r.uniform(-1, 1) for _ in range(8)] for _ in range(n)]])
c.flush()
PY
}
# Copies objects server-side: every object under SRC/ into each DST/.
clone() {
    "$py_s3" - "$MBT_S3_ENDPOINT" "$MBT_S3_ACCESS_KEY" "$MBT_S3_SECRET_KEY" "$MBT_BACKUP_BUCKET" "$@" <<'PY'
import sys
from concurrent.futures import ThreadPoolExecutor
import boto3
endpoint, key, secret, bucket, src, *dsts = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=src + "/")
        for o in page.get("Contents", [])]
jobs = [(k, dst + k[len(src):]) for dst in dsts for k in keys]
with ThreadPoolExecutor(32) as pool:
    list(pool.map(lambda j: s3.copy_object(Bucket=bucket, Key=j[1], CopySource={"Bucket": bucket, "Key": j[0]}), jobs))
print(f"   copied {len(keys)} objects into {len(dsts)} backups", file=sys.stderr)
PY
}
remove_prefix() {
    "$py_s3" - "$MBT_S3_ENDPOINT" "$MBT_S3_ACCESS_KEY" "$MBT_S3_SECRET_KEY" "$MBT_BACKUP_BUCKET" "$1" <<'PY'
import sys
import boto3
endpoint, key, secret, bucket, prefix = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
    if objs:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": objs})
PY
}

echo "== a catalog of $n backups in moto S3" >&2
rows 0 1000
mb create -n cat_base -c "$coll" >/dev/null
rows 1000 200
mb create -n cat_inc -c "$coll" --base-backup cat_base >/dev/null
mb create -n cat_full -c "$coll" >/dev/null
clones=()
for i in $(seq 1 $((n - 3))); do clones+=("$root/cat_$(printf %05d "$i")"); done
clone "$root/cat_full" "${clones[@]}"
# The reference records live beside the root, with the catalog index.
records=.milvus-backup/$root/refs
refs=(); for c in "${clones[@]}"; do refs+=("$records/${c#"$root"/}"); done
clone "$records/cat_full" "${refs[@]}"

for when in first again; do
    t0=$(now); listed=$(mb --json list | "$MBT_PY_23" -c 'import json,sys; print(len(json.load(sys.stdin)))'); t1=$(now)
    printf 'list of %s backups (%s): %s s\n' "$listed" "$when" "$(secs "$t0" "$t1")"
done
t0=$(now); mb delete -n cat_base --yes >/dev/null; t1=$(now)
printf 'delete -n cat_base among %s (its shared files moved into cat_inc): %s s\n' "$n" "$(secs "$t0" "$t1")"
mb verify -n cat_inc >/dev/null && echo "   cat_inc verifies after the delete" >&2

mb create -n cat_base2 -c "$coll" >/dev/null
remove_prefix "$records/"
t0=$(now); mb delete -n cat_base2 --yes >/dev/null; t1=$(now)
printf 'delete of 1 among %s without reference records (reads every manifest, records them): %s s\n' "$n" "$(secs "$t0" "$t1")"

left=$(mb --json list | "$MBT_PY_23" -c 'import json,sys; print(len(json.load(sys.stdin)))')
t0=$(now); mb delete --all --yes >/dev/null; t1=$(now)
printf 'delete --all of %s backups: %s s\n' "$left" "$(secs "$t0" "$t1")"
"$MBT_PY_23" - "$MBT_A_PORT" "$coll" <<'PY' >&2
import sys
from pymilvus import connections, utility
connections.connect(host="127.0.0.1", port=sys.argv[1], timeout=60)
if utility.has_collection(sys.argv[2]):
    utility.drop_collection(sys.argv[2])
PY
rm -rf "$work"
