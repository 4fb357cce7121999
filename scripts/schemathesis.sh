#!/usr/bin/env bash
# A bounded schemathesis run against the REST server: starts
# `milvus-backup server` on a free loopback port (Milvus V22 of the test
# environment, which the other system tests only read; backups under a
# fresh root of the S3 bucket), fuzzes every operation of the served
# OpenAPI document with the checks `not_a_server_error` and
# `response_schema_conformance`, prints the counts, stops the server and
# removes what the run wrote. Exit code 0 only when nothing failed.
#
#   scripts/schemathesis.sh [path/to/milvus-backup]
#
# Environment: MBT_ST_MAX_EXAMPLES (examples per operation, default 15),
# MBT_ST_INSTANCE (Milvus of the test environment, default V22),
# MBT_ST_SEED (default 1, for a reproducible run), MBT_ST_PHASES (default
# examples,fuzzing; the coverage phase adds ~150 s of full backups).
# Needs the test environment: scripts/testenv.sh start.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/milvus-backup}
[[ -x $bin ]] || { echo "error: $bin not found — cargo build first" >&2; exit 2; }
max_examples=${MBT_ST_MAX_EXAMPLES:-15}
inst=${MBT_ST_INSTANCE:-V22}
seed=${MBT_ST_SEED:-1}

scripts/testenv.sh install >&2
run_dir=${MILVUS_BACKUP_TESTENV:-/tmp/milvus-backup-testenv}
# shellcheck disable=SC1091
source "$run_dir/env.sh"
cache=${MILVUS_BACKUP_CACHE:-$HOME/.cache/milvus-backup-testenv}
st=$cache/venv-schemathesis/bin/schemathesis
export no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}" NO_PROXY="127.0.0.1,localhost"

work=$(mktemp -d)
root="st_$(date +%s)_$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
host_port=${MBT_S3_ENDPOINT#http://}
var() { local n="MBT_${inst}_$1"; echo "${!n}"; }
if [[ $(var STORAGE) == local ]]; then storage=local bucket=""; else storage=minio bucket=$(var BUCKET); fi
cat >"$work/backup.yaml" <<YAML
http: { address: 127.0.0.1 }
milvus: { address: $(var HOST), port: $(var PORT) }
minio:
  storageType: $storage
  address: ${host_port%:*}
  port: ${host_port##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: "$bucket"
  rootPath: "$(var ROOT)"
  backupStorageType: minio
  backupAccessKeyID: $MBT_S3_ACCESS_KEY
  backupSecretAccessKey: $MBT_S3_SECRET_KEY
  backupBucketName: $MBT_BACKUP_BUCKET
  backupRootPath: $root
backup:
  gcPause: { enable: false }
YAML

RUST_LOG=error,milvus_backup=info,milvus_backup_core=info,milvus_backup_server=info "$bin" --config "$work/backup.yaml" server -p "$port" >"$work/server.log" 2>&1 &
server_pid=$!
cleanup() {
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server_pid" 2>/dev/null || true
    # What the run created: backups and task records under its own root.
    "$bin" --config "$work/backup.yaml" --quiet delete --all --yes >/dev/null 2>&1 || true
    "$cache/venv-moto/bin/python" - "$MBT_S3_ENDPOINT" "$MBT_BACKUP_BUCKET" "$root/" <<'PY' || true
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sys.argv[2], Prefix=sys.argv[3]):
    for o in page.get("Contents", []):
        s3.delete_object(Bucket=sys.argv[2], Key=o["Key"])
PY
    rm -rf "$work"
}
trap cleanup EXIT

base=http://127.0.0.1:$port
for _ in $(seq 100); do
    python3 -c 'import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=2)' "$base/api/v1/healthz" >/dev/null 2>&1 && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
done

started=$(date +%s)
# Two runs on one server: first `restore` alone, while the backup root is
# still empty (every restore is refused, so fuzzing never drops or
# overwrites collections of the shared Milvus), then every other operation.
run_st() {
    (cd "$work" && "$st" run "$base/api/v1/docs/openapi.json" "$@" \
        --checks not_a_server_error,response_schema_conformance \
        --max-examples "$max_examples" --seed "$seed" --workers 1 \
        --phases "${MBT_ST_PHASES:-examples,fuzzing}" \
        --request-timeout 120 \
        --suppress-health-check all \
        --no-color) 2>&1 | tee -a "$work/st.out"
    return "${PIPESTATUS[0]}"
}
set +e
# Both restore routes (the Go tool's and the guide's) go in the first run.
# The verify routes are left out: a fuzzed synchronous verify with
# restore_test restores every collection of a backup of everything, which
# outlasts the 120 s request timeout on a 2-core machine; the server's and
# the CLI's system tests cover verify instead.
restores='^/api/v1/(backup/)?restore$'
run_st --include-path-regex "$restores"
rc1=$?
run_st --exclude-path-regex '^/api/v1/(backup/)?(restore|verify)$'
rc2=$?
set -e
rc=$(( rc1 > rc2 ? rc1 : rc2 ))
echo "schemathesis finished in $(( $(date +%s) - started )) s (exit code $rc)"
# One summary line the test suite reads: schemathesis's own counts, and
# the status of every request as the server logged it.
python3 - "$work/st.out" "$work/server.log" <<'PY'
import re, sys, collections
out = open(sys.argv[1]).read()
tested = sum(int(n) for n in re.findall(r"Tested:\s+(\d+)", out))
cases = sum(int(n) for n in re.findall(r"(\d+) generated", out))
failures = sum(int(n) for n in re.findall(r"(\d+) unique failures?", out))
status = collections.Counter()
for line in open(sys.argv[2], errors="replace"):
    m = re.search(r" (GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS) \S+ (\d{3}) \d+ ms", line)
    if m:
        status[m.group(2)[0] + "xx"] += 1
print("SCHEMATHESIS operations=%s cases=%s failures=%s requests=%d 2xx=%d 4xx=%d 5xx=%d" % (
    tested, cases, failures, sum(status.values()),
    status["2xx"], status["4xx"], status["5xx"]))
PY
exit "$rc"
