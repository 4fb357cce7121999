//! System tests: real Milvus servers and real S3 services, started once per
//! run by `scripts/testenv.sh start` (see `scripts/test.sh`). Nothing here
//! is mocked. Each test uses unique names and cleans up after itself.

mod backup;
mod check;
mod config_cli;
mod env;
mod ops;
mod restore;
mod server;
mod storage;
mod trust;
mod verify;
