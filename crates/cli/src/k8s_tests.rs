//! The Kubernetes manifests cannot drift from the parser. No cluster runs
//! on the test machines, so every `*.yaml` of `deploy/kubernetes/` is read
//! here instead: each container runs this image with args that this
//! binary's own parser accepts, an Indexed Job's `--shard` is
//! `$(JOB_COMPLETION_INDEX)/N` with N its `completions`, `--config` names a
//! file of a ConfigMap mounted in the pod (which loads without a warning,
//! with the container's `--set`s), and the set holds a sharded create and
//! restore, both seals, the server and a CronJob. What it does not check is
//! Kubernetes' own schema (`kubectl apply --dry-run=server` on a cluster).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser};
use milvus_backup_core::config::{Config, LoadOptions};
use serde::Deserialize;
use serde_yaml::Value;

use crate::Cli;

/// What Kubernetes replaces with the pod's index in an Indexed Job.
const INDEX: &str = "$(JOB_COMPLETION_INDEX)";
const INDEX_FIELD: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// Every document of `text` (a file may hold several, `---` apart).
fn documents(file: &str, text: &str) -> Vec<(String, Value)> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{file}: not valid YAML: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .map(|doc| (file.to_string(), doc))
        .collect()
}

/// Every document of every `*.yaml` in deploy/kubernetes/, with its file's name.
fn manifests() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/kubernetes/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            documents(&name, &std::fs::read_to_string(path).unwrap())
        })
        .collect()
}

/// What the checks found: the problems, and what the containers run
/// (`create --shard`, `restore --seal`, `server`, …, and `CronJob`).
#[derive(Default)]
struct Findings {
    problems: Vec<String>,
    seen: BTreeSet<String>,
}

fn check_all(docs: &[(String, Value)]) -> Findings {
    let config_maps: BTreeMap<&str, &Value> = docs
        .iter()
        .filter(|(_, d)| d["kind"].as_str() == Some("ConfigMap"))
        .filter_map(|(_, d)| Some((d["metadata"]["name"].as_str()?, &d["data"])))
        .collect();
    let mut found = Findings::default();
    for (file, doc) in docs {
        check_workload(file, doc, &config_maps, &mut found);
    }
    found
}

/// A Deployment, Job or CronJob: its pod spec and each of its containers.
fn check_workload(
    file: &str,
    doc: &Value,
    config_maps: &BTreeMap<&str, &Value>,
    found: &mut Findings,
) {
    let kind = doc["kind"].as_str().unwrap_or_default();
    if kind == "CronJob" {
        found.seen.insert("CronJob".to_string());
    }
    let spec = &doc["spec"];
    let pod = [
        &spec["template"]["spec"],
        &spec["jobTemplate"]["spec"]["template"]["spec"],
    ]
    .into_iter()
    .find(|p| p["containers"].is_sequence());
    let Some(pod) = pod else {
        return; // a ConfigMap, a Service
    };
    let at = format!(
        "{file}: {kind} {}",
        doc["metadata"]["name"].as_str().unwrap_or("?")
    );
    let indexed = kind == "Job" && spec["completionMode"].as_str() == Some("Indexed");
    if indexed
        && !spec["backoffLimitPerIndex"].is_null()
        && pod["restartPolicy"].as_str() != Some("Never")
    {
        found.problems.push(format!(
            "{at}: backoffLimitPerIndex needs restartPolicy: Never"
        ));
    }
    let completions = spec["completions"].as_u64();
    for c in pod["containers"].as_sequence().into_iter().flatten() {
        let at = format!("{at}, container {}", c["name"].as_str().unwrap_or("?"));
        let shards = indexed.then_some(completions);
        for problem in check_container(c, pod, shards, config_maps, &mut found.seen) {
            found.problems.push(format!("{at}: {problem}"));
        }
    }
}

/// The problems of container `c` of `pod`; what it runs goes in `seen`.
/// `indexed` is `Some(spec.completions)` in an Indexed Job.
fn check_container(
    c: &Value,
    pod: &Value,
    indexed: Option<Option<u64>>,
    config_maps: &BTreeMap<&str, &Value>,
    seen: &mut BTreeSet<String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let image = c["image"].as_str().unwrap_or_default();
    if !image.starts_with("milvusdb/milvus-backup") {
        problems.push(format!("image `{image}` is not milvusdb/milvus-backup"));
    }
    if !c["command"].is_null() {
        problems.push(
            "sets command: the image's entrypoint is milvus-backup and it has no shell — use args"
                .to_string(),
        );
    }
    let args: Option<Vec<String>> = c["args"]
        .as_sequence()
        .and_then(|a| a.iter().map(|w| w.as_str().map(str::to_string)).collect());
    let Some(args) = args else {
        problems.push("args must be a list of strings".to_string());
        return problems;
    };

    let shard = flag_values(&args, "--shard").pop();
    match indexed {
        Some(completions) => {
            let n = shard.as_deref().and_then(|s| {
                s.strip_prefix(INDEX)?
                    .strip_prefix('/')?
                    .parse::<u64>()
                    .ok()
            });
            if n.is_none() || n != completions {
                problems.push(format!(
                    "an Indexed Job needs --shard {INDEX}/N with N = spec.completions ({}), not {}",
                    completions.map_or("unset".to_string(), |n| n.to_string()),
                    shard.as_deref().unwrap_or("none"),
                ));
            }
        }
        None if shard.is_some() => {
            problems.push("--shard outside an Indexed Job runs one shard only".to_string())
        }
        None => {}
    }
    let declares_index = c["env"].as_sequence().into_iter().flatten().any(|e| {
        e["name"].as_str() == Some("JOB_COMPLETION_INDEX")
            && e["valueFrom"]["fieldRef"]["fieldPath"].as_str() == Some(INDEX_FIELD)
    });
    if args.iter().any(|a| a.contains(INDEX)) && !declares_index {
        problems.push(format!(
            "uses {INDEX}: declare JOB_COMPLETION_INDEX in env (fieldRef {INDEX_FIELD})"
        ));
    }

    match flag_values(&args, "--config").pop() {
        None => problems.push(
            "no --config: name the ConfigMap's file (/etc/milvus-backup/config.yaml)".to_string(),
        ),
        Some(path) => match mounted_file(pod, c, &path, config_maps) {
            Err(why) => problems.push(format!("--config {path}: {why}")),
            Ok(text) => match load(text, &flag_values(&args, "--set")) {
                Err(e) => problems.push(format!("--config {path} does not load: {e}")),
                Ok(warnings) => {
                    problems.extend(warnings.iter().map(|w| format!("--config {path}: {w}")))
                }
            },
        },
    }

    let argv: Vec<String> = std::iter::once("milvus-backup".to_string())
        .chain(args.iter().map(|a| a.replace(INDEX, "0")))
        .collect();
    if let Err(e) = Cli::try_parse_from(&argv) {
        problems.push(format!(
            "`{}` does not parse: {}",
            argv.join(" "),
            e.to_string().lines().next().unwrap_or_default()
        ));
        return problems;
    }
    let matches = Cli::command().get_matches_from(&argv);
    let command = matches.subcommand_name().unwrap_or_default();
    let seal = args.iter().any(|a| a == "--seal");
    seen.insert(match (shard.is_some(), seal) {
        (true, _) => format!("{command} --shard"),
        (false, true) => format!("{command} --seal"),
        (false, false) => command.to_string(),
    });
    problems
}

/// The values given to `flag` (`--flag V` or `--flag=V`), in order.
fn flag_values(args: &[String], flag: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if word == flag {
            values.extend(words.next().cloned());
        } else if let Some(v) = word.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            values.push(v.to_string());
        }
    }
    values
}

/// The text of the file at `path` in container `c`: a key of a ConfigMap of
/// deploy/kubernetes/ whose volume is mounted at the file's folder, or at
/// the file itself with `subPath`.
fn mounted_file<'a>(
    pod: &Value,
    c: &Value,
    path: &str,
    config_maps: &BTreeMap<&str, &'a Value>,
) -> Result<&'a str, String> {
    let (dir, file) = path.rsplit_once('/').ok_or("not an absolute path")?;
    let (mount, key) = c["volumeMounts"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find_map(|m| {
            let at = m["mountPath"].as_str()?.trim_end_matches('/');
            match m["subPath"].as_str() {
                Some(sub) if at == path => Some((m, sub)),
                None if at == dir => Some((m, file)),
                _ => None,
            }
        })
        .ok_or_else(|| format!("no volumeMount at {dir} or {path}"))?;
    let volume_name = mount["name"].as_str().unwrap_or("?");
    let volume = pod["volumes"]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|v| v["name"].as_str() == Some(volume_name))
        .ok_or_else(|| format!("the pod has no volume {volume_name}"))?;
    let cm = volume["configMap"]["name"]
        .as_str()
        .ok_or_else(|| format!("volume {volume_name} is not a ConfigMap"))?;
    // `items` puts keys under other file names.
    let key = match volume["configMap"]["items"].as_sequence() {
        None => key,
        Some(items) => items
            .iter()
            .find(|i| i["path"].as_str() == Some(key))
            .and_then(|i| i["key"].as_str())
            .ok_or_else(|| format!("ConfigMap {cm}'s items put nothing at {key}"))?,
    };
    let data: &'a Value = config_maps
        .get(cm)
        .copied()
        .ok_or_else(|| format!("ConfigMap {cm} is not in deploy/kubernetes/"))?;
    data[key]
        .as_str()
        .ok_or_else(|| format!("ConfigMap {cm} has no key {key}"))
}

/// Loads `text` as the config file with `sets` as `--set`: its warnings
/// (unknown keys, keys with no counterpart), or the error that stops it.
fn load(text: &str, sets: &[String]) -> Result<Vec<String>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).map_err(|e| e.to_string())?;
    let (_, report) = Config::load(&LoadOptions {
        file: Some(path.as_path()),
        file_required: true,
        sets,
        env: Default::default(),
    })
    .map_err(|e| e.to_string())?;
    Ok(report.warnings)
}

#[test]
fn every_manifest_runs_what_the_cli_parses() {
    let docs = manifests();
    let found = check_all(&docs);
    eprintln!(
        "checked {} documents of deploy/kubernetes/, which run: {:?}",
        docs.len(),
        found.seen
    );
    assert!(
        found.problems.is_empty(),
        "{} problem(s) in deploy/kubernetes/:\n{}",
        found.problems.len(),
        found.problems.join("\n")
    );
    for want in [
        "create --shard",
        "create --seal",
        "restore --shard",
        "restore --seal",
        "server",
        "CronJob",
    ] {
        assert!(
            found.seen.contains(want),
            "no manifest in deploy/kubernetes/ runs a {want}; found {:?}",
            found.seen
        );
    }
}

/// The checks above would fail on these mistakes.
#[test]
fn the_checks_catch_mistakes() {
    const BAD: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: { name: bad-config }
data:
  config.yaml: |
    milvus: { adress: milvus }
---
apiVersion: batch/v1
kind: Job
metadata: { name: bad }
spec:
  completionMode: Indexed
  completions: 3
  backoffLimitPerIndex: 1
  template:
    spec:
      containers:
        - name: not-ours
          image: busybox
          args: [create, --no-such-flag]
        - name: wrong-n
          image: milvusdb/milvus-backup:latest
          args: [create, --config, /etc/milvus-backup/config.yaml, -n, x, --format, parquet, --shard, "$(JOB_COMPLETION_INDEX)/4"]
        - name: bad-key
          image: milvusdb/milvus-backup:latest
          args: [create, --config, /etc/milvus-backup/config.yaml, -n, x, --format, parquet, --shard, "$(JOB_COMPLETION_INDEX)/3"]
          env:
            - name: JOB_COMPLETION_INDEX
              valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } }
          volumeMounts: [{ name: config, mountPath: /etc/milvus-backup }]
      volumes:
        - { name: config, configMap: { name: bad-config } }
"#;
    let found = check_all(&documents("bad.yaml", BAD));
    let all = found.problems.join("\n");
    for expected in [
        "restartPolicy: Never",
        "container not-ours: image `busybox`",
        "container not-ours: no --config",
        "container not-ours: `milvus-backup create --no-such-flag` does not parse",
        "container wrong-n: an Indexed Job needs --shard $(JOB_COMPLETION_INDEX)/N with N = spec.completions (3), not $(JOB_COMPLETION_INDEX)/4",
        "container wrong-n: uses $(JOB_COMPLETION_INDEX): declare JOB_COMPLETION_INDEX",
        "container wrong-n: --config /etc/milvus-backup/config.yaml: no volumeMount",
        "container bad-key: --config /etc/milvus-backup/config.yaml: unknown config key `milvus.adress`",
    ] {
        assert!(all.contains(expected), "`{expected}` not reported; found:\n{all}");
    }
    // bad-key's mount, shard and args are right: only its config key is not.
    let bad_key = found
        .problems
        .iter()
        .filter(|p| p.contains("container bad-key"));
    assert_eq!(bad_key.count(), 1, "{all}");
    assert!(found.seen.contains("create --shard"), "{:?}", found.seen);
}
