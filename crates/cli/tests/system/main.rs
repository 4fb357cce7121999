//! System tests: real Milvus servers and real S3 services, started once per
//! run by `scripts/testenv.sh start` (see `scripts/test.sh`). Nothing here
//! is mocked. Each test uses unique names and cleans up after itself. The
//! helpers they share with the server crate's tests are in
//! `milvus-backup-testkit`; the REST server's tests are in `crates/server`.

use milvus_backup_testkit as env;

mod backup;
mod bulk_import;
mod catalog;
mod check;
mod compare;
mod config_cli;
mod duplicate_keys;
mod edge_values;
mod guide;
mod image;
mod in_use;
mod incremental_logical;
mod insert_mode;
mod logical;
mod logical_backup;
mod logical_resume;
mod many;
mod migrate;
mod modern;
mod ops;
mod password;
mod perf;
mod quiet;
mod rbac;
mod restore;
mod resume;
mod sharded;
mod ship;
mod storage;
mod trust;
mod truth;
mod unpersisted_deletes;
mod verify;
