//! `docs/rest-api.md`, the REST reference, is rendered from the OpenAPI
//! document the server generates from its code, so it cannot drift from
//! the routes. The test fails when the file differs; rewrite it with
//! `UPDATE_DOCS=1 cargo test -p milvus-backup-server --lib rest_docs`.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;

const HTTP_METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

/// One line: OpenAPI descriptions wrap at source width, Markdown table
/// cells cannot.
fn one_line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn schema_fragment(name: &str) -> String {
    format!("schema-{}", name.to_lowercase())
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

/// A schema's type as a short Markdown phrase, linking named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = ref_name(r);
        return format!("[{name}](#{})", schema_fragment(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let sep = if key == "allOf" { " and " } else { " or " };
            return options.iter().map(type_of).collect::<Vec<_>>().join(sep);
        }
    }
    let mut kinds: Vec<String> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts.iter().map(|t| text(t).to_string()).collect(),
        _ => vec![],
    };
    for kind in kinds.iter_mut() {
        if kind == "array" {
            *kind = format!(
                "array of {}",
                schema.get("items").map(type_of).unwrap_or_default()
            );
        } else if kind == "object" {
            if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                *kind = format!("object of {}", type_of(values));
            }
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
        kinds.push(format!("one of {}", values.join(", ")));
    }
    if kinds.is_empty() {
        "any".to_string()
    } else {
        kinds.join(" or ")
    }
}

fn render_operation(out: &mut String, method: &str, path: &str, op: &Value) {
    let _ = writeln!(out, "### `{} {path}`\n", method.to_uppercase());
    let summary = text(&op["summary"]);
    if !summary.is_empty() {
        let _ = writeln!(out, "{}\n", one_line(summary));
    }
    let description = text(&op["description"]);
    if !description.is_empty() {
        let _ = writeln!(out, "{}\n", description.trim());
    }
    if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str(
            "| parameter | in | type | required | description |\n| --- | --- | --- | --- | --- |\n",
        );
        for p in params {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                text(&p["name"]),
                text(&p["in"]),
                type_of(&p["schema"]),
                if p["required"].as_bool().unwrap_or(false) {
                    "yes"
                } else {
                    "no"
                },
                one_line(text(&p["description"]))
            );
        }
        out.push('\n');
    }
    if let Some(content) = op["requestBody"]["content"].as_object() {
        for (media, body) in content {
            let _ = writeln!(out, "Body (`{media}`): {}\n", type_of(&body["schema"]));
        }
    }
    if let Some(responses) = op["responses"].as_object() {
        out.push_str("| status | answer | meaning |\n| --- | --- | --- |\n");
        for (status, r) in responses {
            let answer = r["content"]
                .as_object()
                .map(|c| {
                    c.iter()
                        .map(|(media, body)| match body.get("schema") {
                            Some(s) => format!("{} (`{media}`)", type_of(s)),
                            None => format!("`{media}`"),
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "| {status} | {answer} | {} |",
                one_line(text(&r["description"]))
            );
        }
        out.push('\n');
    }
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "### <a id=\"{}\"></a>{name}\n", schema_fragment(name));
    let description = text(&schema["description"]);
    if !description.is_empty() {
        let _ = writeln!(out, "{}\n", one_line(description));
    }
    let Some(props) = schema["properties"].as_object() else {
        let _ = writeln!(out, "Type: {}\n", type_of(schema));
        return;
    };
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().map(text).collect())
        .unwrap_or_default();
    out.push_str(
        "| field | type | required | default | description |\n| --- | --- | --- | --- | --- |\n",
    );
    for (field, p) in props {
        let default = p
            .get("default")
            .map(|d| format!("`{d}`"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {default} | {} |",
            type_of(p),
            if required.contains(&field.as_str()) {
                "yes"
            } else {
                "no"
            },
            one_line(text(&p["description"]))
        );
    }
    out.push('\n');
}

/// The whole reference: routes grouped by tag (in the document's tag
/// order), then every schema.
pub(crate) fn rest_reference(doc: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# REST reference\n\n\
         Generated from the OpenAPI document of `milvus-backup server` (version {}) by\n\
         `crates/server/src/rest_docs.rs`; do not edit by hand. After changing the API, rewrite it with\n\
         `UPDATE_DOCS=1 cargo test -p milvus-backup-server --lib rest_docs`. A running server serves\n\
         the same document at `/api/v1/docs/openapi.json` and Swagger UI at `/api/v1/docs/index.html`;\n\
         [the REST server](server.md) explains how the routes fit together.\n\n{}\n",
        text(&doc["info"]["version"]),
        text(&doc["info"]["description"]).trim()
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let mut tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    (
                        text(&t["name"]).to_string(),
                        text(&t["description"]).to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    tags.push(("".to_string(), "Other routes".to_string()));
    for (tag, description) in &tags {
        let mut section = String::new();
        for (path, item) in &paths {
            for method in HTTP_METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                let op_tag = op["tags"]
                    .as_array()
                    .and_then(|t| t.first())
                    .map(text)
                    .unwrap_or_default();
                let known = tags.iter().any(|(t, _)| !t.is_empty() && t == op_tag);
                if op_tag == tag || (tag.is_empty() && !known) {
                    render_operation(&mut section, method, path, op);
                }
            }
        }
        if !section.is_empty() {
            let title = if tag.is_empty() { description } else { tag };
            let _ = writeln!(out, "## Routes: {title}\n");
            if !tag.is_empty() && !description.is_empty() {
                let _ = writeln!(out, "{}\n", one_line(description));
            }
            out.push_str(&section);
        }
    }
    out.push_str("## Schemas\n\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            render_schema(&mut out, name, schema);
        }
    }
    format!("{}\n", out.trim_end())
}

#[test]
fn rest_reference_matches_the_openapi_document() {
    let doc: Value =
        serde_json::from_str(&crate::openapi().to_json().expect("serializes")).expect("parses");
    let generated = rest_reference(&doc);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/rest-api.md");
    milvus_backup_testkit::generated::assert_file_is_generated(
        &path,
        &generated,
        "UPDATE_DOCS=1 cargo test -p milvus-backup-server --lib rest_docs",
    );
    // Every route of the document is in the reference.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in HTTP_METHODS.iter().filter(|m| item.get(**m).is_some()) {
            let heading = format!("### `{} {path}`", method.to_uppercase());
            assert!(generated.contains(&heading), "{heading} is missing");
        }
    }
}
