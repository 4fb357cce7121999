# Shared by the bench scripts (sourced, from the repository's root).

# bench_servers NAME PORT_BASE SERVICES: starts the bench's own test
# servers (run dir /tmp/milvus-backup-bench-NAME, ports from PORT_BASE),
# stopped and removed when the script exits; with
# MILVUS_BACKUP_BENCH_REUSE=1 the test environment already running at
# $MILVUS_BACKUP_TESTENV instead (left running). Then reads its env.sh.
bench_servers() {
    if [ "${MILVUS_BACKUP_BENCH_REUSE:-0}" != 1 ]; then
        export MILVUS_BACKUP_TESTENV=${MILVUS_BACKUP_BENCH:-/tmp/milvus-backup-bench-$1}
        export MBT_PORT_BASE=${MBT_PORT_BASE:-$2}
        export MBT_SERVICES="$3" MBT_MINIMAL=1
        trap 'scripts/testenv.sh stop >/dev/null 2>&1; [[ $MILVUS_BACKUP_TESTENV == *bench* ]] && rm -rf "$MILVUS_BACKUP_TESTENV"' EXIT
        scripts/testenv.sh start >/dev/null
    fi
    # shellcheck disable=SC1091
    source "$MILVUS_BACKUP_TESTENV/env.sh"
}

# Sets `bin`: MILVUS_BACKUP_BIN, a binary already built, or else a release
# build (in CARGO_TARGET_DIR when set).
bench_binary() {
    bin=${MILVUS_BACKUP_BIN:-}
    if [ -z "$bin" ]; then
        cargo build --release --locked --quiet -p milvus-backup
        bin=${CARGO_TARGET_DIR:-$PWD/target}/release/milvus-backup
    fi
}

# bench_milvus_storage [INSTANCE]: the `minio:` block for Milvus
# INSTANCE's own storage (A by default: its bucket on the S3 test service).
bench_milvus_storage() {
    local inst=${1:-A}
    local bucket_var=MBT_${inst}_BUCKET root_var=MBT_${inst}_ROOT
    cat <<YAML
minio:
  storageType: minio
  address: 127.0.0.1
  port: ${MBT_S3_ENDPOINT##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: ${!bucket_var}
  rootPath: ${!root_var}
YAML
}

# bench_s3_config FILE ROOT [INSTANCE]: a config for Milvus INSTANCE (A
# by default; its own storage on the S3 test service) with backups in the
# S3 backup bucket under ROOT.
bench_s3_config() {
    local inst=${3:-A}
    local port_var=MBT_${inst}_PORT
    {
        echo "milvus: { address: 127.0.0.1, port: ${!port_var} }"
        bench_milvus_storage "$inst"
        cat <<YAML
  backupStorageType: minio
  backupAccessKeyID: $MBT_S3_ACCESS_KEY
  backupSecretAccessKey: $MBT_S3_SECRET_KEY
  backupBucketName: $MBT_BACKUP_BUCKET
  backupRootPath: $2
YAML
    } >"$1"
}
