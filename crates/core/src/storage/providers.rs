//! The builder side of the provider table ([`crate::config::providers`]):
//! each provider's OpenDAL service, on the whole bucket (or, for local
//! storage, on the base directory), and the key prefix every key of the
//! storage is joined to. Not here: the layers over the service
//! ([`super::open`]), the provider names (the config's table).

use opendal::{services, Operator};

use super::{Provider, StorageSpec};
use crate::error::{Error, Result};

/// The operator of `s`'s service, and the prefix (`root/`, empty for local
/// storage) its keys get.
pub(super) fn service(s: &StorageSpec) -> Result<(Operator, String)> {
    let invalid = |e: opendal::Error| {
        Error::invalid_input(format!("cannot configure storage {}: {e}", s.describe()))
    };
    let op = match s.provider {
        Provider::Local => return local(s),
        Provider::S3 => Operator::new(s3(s)),
        Provider::Gcs => Operator::new(gcs(s)),
        Provider::Azure => Operator::new(
            services::Azblob::default()
                .root("/")
                .container(&s.bucket)
                .endpoint(&s.endpoint())
                .account_name(&s.access_key_id)
                .account_key(s.secret_access_key.expose()),
        ),
        Provider::Oss => Operator::new(
            services::Oss::default()
                .root("/")
                .bucket(&s.bucket)
                .endpoint(&s.endpoint())
                .access_key_id(&s.access_key_id)
                .access_key_secret(s.secret_access_key.expose()),
        ),
        Provider::Cos => Operator::new(
            services::Cos::default()
                .root("/")
                .bucket(&s.bucket)
                .endpoint(&s.endpoint())
                .secret_id(&s.access_key_id)
                .secret_key(s.secret_access_key.expose()),
        ),
        Provider::Memory => Operator::new(services::Memory::default().root("/")),
    };
    Ok((op.map_err(invalid)?, root_prefix(&s.root)))
}

/// A local directory: the operator is rooted at it, keys get no prefix.
fn local(s: &StorageSpec) -> Result<(Operator, String)> {
    if s.root.is_empty() {
        return Err(Error::invalid_input(
            "local storage needs a directory: set minio.rootPath (Milvus side) or minio.backupRootPath (backup side)",
        ));
    }
    let op = Operator::new(services::Fs::default().root(&s.root)).map_err(|e| {
        Error::invalid_input(format!("cannot configure storage {}: {e}", s.describe()))
    })?;
    Ok((op, String::new()))
}

fn s3(s: &StorageSpec) -> services::S3 {
    let b = services::S3::default()
        .root("/")
        .bucket(&s.bucket)
        .endpoint(&s.endpoint())
        .region(if s.region.is_empty() {
            "us-east-1"
        } else {
            &s.region
        });
    if s.use_iam {
        // Credentials come from the environment / instance metadata.
        return b;
    }
    let b = b
        .access_key_id(&s.access_key_id)
        .secret_access_key(s.secret_access_key.expose())
        .disable_config_load()
        .disable_ec2_metadata();
    if s.token.is_empty() {
        b
    } else {
        b.session_token(s.token.expose())
    }
}

fn gcs(s: &StorageSpec) -> services::Gcs {
    let b = services::Gcs::default().root("/").bucket(&s.bucket);
    if s.gcp_credential_json.is_empty() {
        b
    } else {
        b.credential_path(&s.gcp_credential_json)
    }
}

/// `root/` of an object store's root path; empty for none.
pub(super) fn root_prefix(root: &str) -> String {
    let r = root.trim_matches('/');
    if r.is_empty() {
        String::new()
    } else {
        format!("{r}/")
    }
}
