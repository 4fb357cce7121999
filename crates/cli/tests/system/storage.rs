//! The storage layer against a real S3 service (two of them) and the local
//! filesystem: copies within and across buckets and services, long listings,
//! and missing objects.

use milvus_backup_core::config::Secret;
use milvus_backup_core::storage::{CopyRoute, Provider, Side, Storage, StorageSpec};
use milvus_backup_core::ErrorKind;
use sha2::{Digest, Sha256};

use crate::env::{unique, var};

pub(crate) fn s3(endpoint_var: &str, bucket: &str, root: &str) -> Storage {
    let (ak, sk) = if endpoint_var == "MBT_S3B_ENDPOINT" {
        (var("MBT_S3B_ACCESS_KEY"), var("MBT_S3B_SECRET_KEY"))
    } else {
        (var("MBT_S3_ACCESS_KEY"), var("MBT_S3_SECRET_KEY"))
    };
    let ak = if endpoint_var == "MBT_S3AUTH_ENDPOINT" {
        "AKIAUNKNOWN".to_string()
    } else {
        ak
    };
    Storage::open(StorageSpec {
        side: Side::Backup,
        provider: Provider::S3,
        address: var(endpoint_var),
        use_ssl: false,
        region: "us-east-1".into(),
        bucket: bucket.into(),
        root: root.into(),
        access_key_id: ak,
        secret_access_key: Secret::new(sk),
        token: Secret::default(),
        use_iam: false,
        iam_endpoint: String::new(),
        gcp_credential_json: String::new(),
        force_stream: false,
    })
    .unwrap()
}

fn local(dir: &std::path::Path) -> Storage {
    Storage::open(StorageSpec {
        side: Side::Backup,
        provider: Provider::Local,
        address: String::new(),
        use_ssl: false,
        region: String::new(),
        bucket: String::new(),
        root: dir.to_string_lossy().into_owned(),
        access_key_id: String::new(),
        secret_access_key: Secret::default(),
        token: Secret::default(),
        use_iam: false,
        iam_endpoint: String::new(),
        gcp_credential_json: String::new(),
        force_stream: false,
    })
    .unwrap()
}

/// Pseudo-random content of `n` bytes, different for each seed.
fn payload(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed as u32) as u8
        })
        .collect()
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn s3_copy_within_a_bucket_is_server_side_and_exact() {
    let root = unique("within");
    let src = s3("MBT_S3_ENDPOINT", "milvus-backup", &format!("{root}/src"));
    let dst = s3("MBT_S3_ENDPOINT", "milvus-backup", &format!("{root}/dst"));
    let data = payload(1, 3 * 1024 * 1024 + 17);
    src.write("seg/1/100/1", data.clone()).await.unwrap();

    let outcome = src.copy_to("seg/1/100/1", &dst, "copy/1").await.unwrap();
    assert!(outcome.server_side, "same bucket copies server-side");
    assert_eq!(outcome.bytes, data.len() as u64);
    assert_eq!(dst.read("copy/1").await.unwrap(), data);
    assert_eq!(
        dst.sha256("copy/1").await.unwrap(),
        (sha(&data), data.len() as u64)
    );

    src.delete_prefix("").await.unwrap();
    dst.delete_prefix("").await.unwrap();
    assert!(src.list("").await.unwrap().is_empty());
}

#[tokio::test]
async fn s3_copy_across_buckets_of_one_endpoint_is_server_side_with_the_service_sha256() {
    let root = unique("buckets");
    let src = s3("MBT_S3_ENDPOINT", &var("MBT_A_BUCKET"), &root);
    let dst = s3("MBT_S3_ENDPOINT", "milvus-backup", &root);
    assert!(!src.same_bucket_as(&dst));
    assert!(src.server_side_to(&dst));
    let data = payload(2, 20 * 1024 * 1024 + 5); // several 8 MiB chunks
    src.write("big", data.clone()).await.unwrap();

    let outcome = src.copy_to("big", &dst, "big").await.unwrap();
    assert!(outcome.server_side);
    assert_eq!(outcome.bytes, data.len() as u64);
    assert_eq!(outcome.sha256.as_deref(), Some(sha(&data).as_str()));
    assert_eq!(dst.read("big").await.unwrap(), data);

    src.delete_prefix("").await.unwrap();
    dst.delete_prefix("").await.unwrap();
}

#[tokio::test]
async fn s3_copy_across_two_services_is_streamed() {
    let root = unique("services");
    let src = s3("MBT_S3_ENDPOINT", "milvus-backup", &root);
    let dst = s3("MBT_S3B_ENDPOINT", "milvus-backup", &root);
    let data = payload(3, 9 * 1024 * 1024);
    src.write("a/b/c", data.clone()).await.unwrap();

    let there = src.copy_to("a/b/c", &dst, "a/b/c").await.unwrap();
    assert!(!there.server_side);
    assert_eq!(there.sha256.as_deref(), Some(sha(&data).as_str()));
    // And back again, to a new key.
    let back = dst.copy_to("a/b/c", &src, "returned").await.unwrap();
    assert_eq!(back.sha256, there.sha256);
    assert_eq!(src.read("returned").await.unwrap(), data);

    // A listed object (a backup's copies) is piped: one PutObject whose
    // body is the download as it arrives, hashed on the way.
    let listed = src.stat_object("a/b/c").await.unwrap().unwrap();
    assert_eq!(src.route_to(&dst, listed.size), CopyRoute::Piped);
    let piped = src.copy_listed(&listed, &dst, "piped").await.unwrap();
    assert!(!piped.server_side);
    assert_eq!(piped.bytes, data.len() as u64);
    assert_eq!(piped.sha256.as_deref(), Some(sha(&data).as_str()));
    assert_eq!(dst.read("piped").await.unwrap(), data);
    // One that vanished after the listing (Milvus compacted it) is not
    // found, and nothing is left under the target key.
    src.delete("a/b/c").await.unwrap();
    let gone = src.copy_listed(&listed, &dst, "gone").await.unwrap_err();
    assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
    assert!(dst.stat_object("gone").await.unwrap().is_none());

    src.delete_prefix("").await.unwrap();
    dst.delete_prefix("").await.unwrap();
}

#[tokio::test]
async fn s3_listing_follows_pages_past_1000_keys() {
    let root = unique("list");
    let st = s3("MBT_S3_ENDPOINT", "milvus-backup", &root);
    let writes = (0..1234).map(|i| {
        let st = st.clone();
        async move { st.write(&format!("k/{i:05}"), vec![b'x'; i % 7]).await }
    });
    let results = futures::future::join_all(writes).await;
    assert!(results.iter().all(Result::is_ok));

    let listed = st.list("k/").await.unwrap();
    assert_eq!(listed.len(), 1234);
    assert_eq!(listed[0].key, "k/00000");
    assert_eq!(listed[1233].key, "k/01233");
    assert_eq!(listed[13].size, 13 % 7);
    assert!(st.has_objects("k/").await.unwrap());

    assert_eq!(st.delete_prefix("").await.unwrap(), 1234);
    assert!(!st.has_objects("k/").await.unwrap());
}

#[tokio::test]
async fn s3_missing_key_and_bucket_give_clear_errors() {
    let st = s3("MBT_S3_ENDPOINT", "milvus-backup", &unique("missing"));
    assert_eq!(st.stat("nope").await.unwrap(), None);
    let err = st.read("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");

    let other = s3("MBT_S3_ENDPOINT", "milvus-backup", "elsewhere");
    let err = st.copy_to("nope", &other, "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    let gone = s3("MBT_S3_ENDPOINT", "no-such-bucket-here", "r");
    let err = gone.list("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let text = err.to_string();
    assert!(
        text.contains("no-such-bucket-here") && text.contains("minio.backupBucketName"),
        "{text}"
    );
}

#[tokio::test]
async fn s3_wrong_credentials_are_named() {
    // S3AUTH checks credentials and knows none.
    let mut spec = s3("MBT_S3AUTH_ENDPOINT", "milvus-backup", "r")
        .spec()
        .clone();
    spec.secret_access_key = Secret::new("definitely-wrong");
    let st = Storage::open(spec).unwrap();
    let err = st.list("").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("refused the credentials") && text.contains("minio.backupAccessKeyID"),
        "{text}"
    );
    assert!(!text.contains("definitely-wrong"), "secret leaked: {text}");
}

#[tokio::test]
async fn local_filesystem_copy_list_and_missing() {
    let dir = tempfile::tempdir().unwrap();
    let st = local(dir.path());
    let data = payload(4, 100_000);
    st.write("insert_log/1/2/3/100/7", data.clone())
        .await
        .unwrap();
    st.write("insert_log/1/2/3/101/8", vec![1, 2, 3])
        .await
        .unwrap();

    let out = st
        .copy_to("insert_log/1/2/3/100/7", &st, "backup/x/7")
        .await
        .unwrap();
    assert!(out.server_side);
    assert_eq!(st.read("backup/x/7").await.unwrap(), data);

    let listed = st.list("insert_log/").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].key, "insert_log/1/2/3/100/7");
    assert_eq!(listed[0].size, 100_000);
    assert_eq!(st.list("nothing/here/").await.unwrap(), vec![]);

    assert_eq!(st.stat("missing").await.unwrap(), None);
    assert_eq!(
        st.read("missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    assert_eq!(st.delete_prefix("insert_log/").await.unwrap(), 2);
    assert!(!dir.path().join("insert_log").exists());
}

#[tokio::test]
async fn local_to_s3_and_back_streams() {
    let dir = tempfile::tempdir().unwrap();
    let fs = local(dir.path());
    let root = unique("fs_s3");
    let bucket = s3("MBT_S3_ENDPOINT", "milvus-backup", &root);
    let data = payload(5, 1_000_003);
    fs.write("a", data.clone()).await.unwrap();

    let up = fs.copy_to("a", &bucket, "a").await.unwrap();
    assert!(!up.server_side);
    let down = bucket.copy_to("a", &fs, "b").await.unwrap();
    assert_eq!(up.sha256, down.sha256);
    assert_eq!(fs.read("b").await.unwrap(), data);
    bucket.delete_prefix("").await.unwrap();
}
