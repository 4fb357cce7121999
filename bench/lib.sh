# Shared by the bench scripts (sourced, from the repository's root).

# Sets `bin`: MILVUS_BACKUP_BIN, a binary already built, or else a release
# build (in CARGO_TARGET_DIR when set).
bench_binary() {
    bin=${MILVUS_BACKUP_BIN:-}
    if [ -z "$bin" ]; then
        cargo build --release --locked --quiet -p milvus-backup
        bin=${CARGO_TARGET_DIR:-$PWD/target}/release/milvus-backup
    fi
}

# bench_s3_config FILE ROOT: a config for Milvus A (its own storage on the
# S3 test service) with backups in the S3 backup bucket under ROOT.
bench_s3_config() {
    cat >"$1" <<YAML
milvus: { address: 127.0.0.1, port: $MBT_A_PORT }
minio:
  storageType: minio
  address: 127.0.0.1
  port: ${MBT_S3_ENDPOINT##*:}
  accessKeyID: $MBT_S3_ACCESS_KEY
  secretAccessKey: $MBT_S3_SECRET_KEY
  bucketName: $MBT_A_BUCKET
  rootPath: $MBT_A_ROOT
  backupStorageType: minio
  backupAccessKeyID: $MBT_S3_ACCESS_KEY
  backupSecretAccessKey: $MBT_S3_SECRET_KEY
  backupBucketName: $MBT_BACKUP_BUCKET
  backupRootPath: $2
YAML
}
