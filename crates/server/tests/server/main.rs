//! The REST server's tests: the OpenAPI snapshot, and `milvus-backup
//! server` over HTTP against real Milvus and S3 servers (started once per
//! run by `scripts/testenv.sh start`; shared helpers in
//! `milvus-backup-testkit`).

mod guide;
mod http;
mod live;
mod openapi;
mod row_resume;
mod schedule;
mod tls;
