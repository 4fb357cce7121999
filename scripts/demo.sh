#!/usr/bin/env bash
# The whole job on one machine, from nothing: start an embedded Milvus
# (2.3.5 standalone with local storage, installed from PyPI), create data,
# back it up, restore it under a suffix, and compare every row.
#
#   scripts/demo.sh
#
# Leaves the servers running for exploration; `scripts/testenv.sh stop`
# stops them. Everything lives under $MILVUS_BACKUP_DEMO (default
# /tmp/milvus-backup-demo).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_DEMO:-/tmp/milvus-backup-demo}
export MBT_PORT_BASE=${MBT_PORT_BASE:-20600}
export MBT_SERVICES=L
export MBT_MINIMAL=1   # install only Milvus 2.3.5 and the S3 server
# Bold headings on a terminal only (and never with NO_COLOR set).
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi

# A prebuilt binary (e.g. a release download) skips the build.
if [[ -n ${MILVUS_BACKUP_BIN:-} ]]; then
  say "1/6 using $MILVUS_BACKUP_BIN"
  bin=$MILVUS_BACKUP_BIN
else
  say "1/6 building milvus-backup (a debug build: about 5 min on 2 cores from a fresh clone; MILVUS_BACKUP_BIN=path skips it)"
  cargo build --locked --quiet
  bin=$PWD/target/debug/milvus-backup
fi

say "2/6 starting an embedded Milvus (first run installs it from PyPI: a few minutes)"
scripts/testenv.sh start
# shellcheck disable=SC1091
source "$MILVUS_BACKUP_TESTENV/env.sh"
work=$MILVUS_BACKUP_TESTENV/demo
mkdir -p "$work"
cat >"$work/backup.yaml" <<YAML
milvus:
  address: $MBT_L_HOST
  port: $MBT_L_PORT
minio:
  storageType: local
  rootPath: $MBT_L_ROOT          # Milvus's own files
  backupStorageType: local
  backupRootPath: $work/backups  # where backups go
backup:
  gcPause: { enable: true, address: "$MBT_L_MGMT" }
YAML
mb() { "$bin" --config "$work/backup.yaml" "$@"; }

say "3/6 creating data: every scalar type, vectors, JSON, arrays, dynamic fields, partitions, deletes"
"$MBT_PY_23" "$MBT_GEN_DATA" generate --host "$MBT_L_HOST" --port "$MBT_L_PORT" --prefix demo_ --rows 2000 >"$work/generated.json"
python3 -c 'import json,sys; [print("  %s.%s: %d rows" % (c["db"], c["name"], c["rows"])) for c in json.load(open(sys.argv[1]))["collections"]]' "$work/generated.json"
mb check

name=demo_$(date -u +%Y%m%d_%H%M%S)
say "4/6 backing up as $name"
mb create -n "$name" --filter 'default.demo_*,demo_db2.*'
mb list

say "5/6 restoring every collection with the suffix _restored"
mb restore -n "$name" -s _restored --restore_index

say "6/6 comparing every row, field by field, and each schema"
python3 - "$work/generated.json" <<'PY'
import json, os, subprocess, sys
env = os.environ
gen = json.load(open(sys.argv[1]))["collections"]
def run(*args):
    out = subprocess.run([env["MBT_PY_23"], env["MBT_GEN_DATA"], *args, "--host", env["MBT_L_HOST"],
                          "--port", env["MBT_L_PORT"]], check=True, capture_output=True, text=True)
    return out.stdout
bad = 0
for c in gen:
    db, src, dst = c["db"], c["name"], c["name"] + "_restored"
    d1 = json.loads(run("describe", "--db", db, "--collection", src))
    d2 = json.loads(run("describe", "--db", db, "--collection", dst))
    for d in (d1, d2):
        for k in ("name", "load_state", "aliases"):
            d.pop(k, None)
    rows1 = run("dump", "--db", db, "--collection", src)
    rows2 = run("dump", "--db", db, "--collection", dst)
    same = d1 == d2 and rows1 == rows2
    bad += not same
    print(f"  {'MATCH' if same else 'DIFFER'}  {db}.{dst}: {rows2.count(chr(10))} rows "
          f"(source {rows1.count(chr(10))}), schema {'equal' if d1 == d2 else 'DIFFERENT'}")
print("\nround trip OK: every restored collection equals its source" if not bad
      else f"\n{bad} collection(s) differ")
sys.exit(1 if bad else 0)
PY
