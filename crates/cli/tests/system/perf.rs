//! Server-side copies across buckets of one S3 endpoint and how they are
//! checked: the manifest says which check each file had, `verify` catches
//! a changed copy by its ETag and `verify --deep` by its bytes (also for a
//! copy whose service gave no SHA-256: deep computes and stores it).

use milvus_backup_core::model::layout;
use milvus_backup_core::model::meta::Check;
use milvus_backup_core::model::meta::{Manifest, Summary};
use milvus_backup_core::storage::s3copy::{Parts, S3Copier};
use milvus_backup_core::storage::Storage;
use milvus_backup_core::Context;
use sha2::{Digest, Sha256};

use crate::env::{cli, config, config_file, config_yaml, generated, run, unique, var};

fn s3(bucket: &str, root: &str) -> Storage {
    crate::storage::s3("MBT_S3_ENDPOINT", bucket, root)
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn multipart_copies_across_buckets_and_copies_of_a_changed_source_are_refused() {
    let root = unique("pf_parts");
    let src = s3(&var("MBT_A_BUCKET"), &root);
    let dst = s3("milvus-backup", &root);
    let data: Vec<u8> = (0..12 * 1024 * 1024 + 3)
        .map(|i| (i * 31 % 253) as u8)
        .collect();
    src.write("big", data.clone()).await.unwrap();
    let listed = src.stat_object("big").await.unwrap().unwrap();

    // In parts (UploadPartCopy), with 5 MiB parts instead of 512 MiB ones.
    let copier = S3Copier::new(
        &var("MBT_S3_ENDPOINT"),
        "us-east-1",
        &var("MBT_S3_ACCESS_KEY"),
        &var("MBT_S3_SECRET_KEY"),
        "",
    );
    let copied = copier
        .copy_in_parts_over(
            (&var("MBT_A_BUCKET"), &format!("{root}/big")),
            ("milvus-backup", &format!("{root}/parts")),
            data.len() as u64,
            listed.etag.as_deref(),
            Parts {
                single_max: 5 * 1024 * 1024,
                part_size: 5 * 1024 * 1024,
            },
        )
        .await
        .unwrap();
    assert!(
        copied.multipart && copied.etag.ends_with("-3"),
        "{copied:?}"
    );
    assert_eq!(
        dst.sha256("parts").await.unwrap(),
        (sha(&data), data.len() as u64)
    );

    // Whole, through the storage: conditional on the listed ETag.
    let out = src.copy_listed(&listed, &dst, "whole").await.unwrap();
    assert!(out.server_side);
    assert_eq!(out.sha256.as_deref(), Some(sha(&data).as_str()));
    assert_eq!(out.check, Check::ServiceSha256);
    assert_eq!(out.etag, listed.etag);

    // The source rewritten after it was listed: the copy is refused.
    src.write("big", b"other bytes".to_vec()).await.unwrap();
    let err = src.copy_listed(&listed, &dst, "stale").await.unwrap_err();
    assert!(
        err.to_string().contains("changed while it was copied"),
        "{err}"
    );

    src.delete_prefix("").await.unwrap();
    dst.delete_prefix("").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_copies_are_checked_and_deep_verify_hashes_and_catches_a_flipped_byte() {
    let g = generated("A").first().unwrap().clone();
    let yaml = config_yaml("A", &unique("pf_check"));
    let (_d, cfg) = config_file(&yaml);
    let name = unique("pf_v");
    run(&cfg, &[], &["create", "-n", &name, "-c", &g.full_name()]);
    let ctx = Context::open(&config(&yaml, &[])).unwrap();
    let storage = &ctx.backup_storage;
    let manifest_key = layout::backup_meta_file(&name, layout::MANIFEST);
    let read_manifest = || async {
        serde_json::from_slice::<Manifest>(&storage.read(&manifest_key).await.unwrap()).unwrap()
    };
    let mut manifest = read_manifest().await;
    assert!(manifest.files.len() >= 2);
    // Milvus's bucket and the backup bucket are two buckets of one S3
    // server: every file is a server-side copy the service hashed.
    for f in &manifest.files {
        assert_eq!(f.check, Some(Check::ServiceSha256), "{}", f.path);
        assert!(f.etag.is_some() && f.sha256.len() == 64, "{}", f.path);
        let stored = layout::join(&layout::backup_dir(&name), &f.path);
        assert_eq!(storage.sha256(&stored).await.unwrap().0, f.sha256);
    }

    // As a service without additional checksums would have left it: ETag
    // checks only, no SHA-256 (summary.json kept in step, as a real
    // backup's would be).
    let want: Vec<String> = manifest.files.iter().map(|f| f.sha256.clone()).collect();
    for f in &mut manifest.files {
        f.sha256.clear();
        f.check = Some(Check::Etag);
    }
    let (manifest_key, name) = (&manifest_key, &name);
    let write_manifest = |m: Manifest| async move {
        let bytes = serde_json::to_vec_pretty(&m).unwrap();
        let summary_key = layout::backup_meta_file(name, layout::SUMMARY);
        let mut summary: Summary =
            serde_json::from_slice(&storage.read(&summary_key).await.unwrap()).unwrap();
        summary
            .meta_sha256
            .insert(layout::MANIFEST.to_string(), sha(&bytes));
        storage.write(manifest_key, bytes).await.unwrap();
        storage
            .write(&summary_key, serde_json::to_vec_pretty(&summary).unwrap())
            .await
            .unwrap();
    };
    write_manifest(manifest).await;
    let deep = |code: i32| {
        let out = cli()
            .arg("--json")
            .arg("--config")
            .arg(&cfg)
            .args(["verify", "-n", name, "--deep"])
            .assert()
            .code(code);
        let reports: Vec<serde_json::Value> =
            serde_json::from_slice(&out.get_output().stdout).unwrap();
        reports[0].clone()
    };
    let report = deep(0);
    assert_eq!(report["hashed"], want.len(), "{report}");
    let manifest = read_manifest().await;
    let got: Vec<String> = manifest.files.iter().map(|f| f.sha256.clone()).collect();
    assert_eq!(got, want, "deep verify stored each file's SHA-256");
    // A second deep check compares them (and the stored manifest passes
    // the meta-edit check).
    assert_eq!(deep(0)["hashed"], serde_json::Value::Null);

    // One byte flipped in a copy that has only its ETag.
    let mut manifest = manifest;
    manifest.files[0].sha256.clear();
    let victim = layout::join(&layout::backup_dir(name), &manifest.files[0].path);
    write_manifest(manifest.clone()).await;
    let mut bytes = storage.read(&victim).await.unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    storage.write(&victim, bytes).await.unwrap();
    let report = deep(9);
    let problem = report["problems"][0]["problem"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        report["problems"][0]["path"] == manifest.files[0].path.as_str()
            && problem.contains("content changed"),
        "{report}"
    );
    // Plain verify sees it too, from the ETag alone.
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["verify", "-n", name])
        .assert()
        .code(9);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("ETag"));
    // And a restore refuses it before importing anything.
    let out = cli()
        .arg("--config")
        .arg(&cfg)
        .args(["restore", "-n", name, "-s", "_pf"])
        .assert()
        .code(9);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("damaged"));

    milvus_backup_core::ops::delete::delete_backup(storage, name)
        .await
        .unwrap();
}
