//! Before a restore or an import creates anything: can the target server
//! hold what each collection needs? Every field type, nullable field,
//! default value, function, array and partition key of a backed-up
//! schema is compared with the server's [`Capabilities`], and what is
//! missing is named as `db.collection.field: what (why)`.
//!
//! Does not own: what a server holds (`milvus::capability`), or what the
//! caller does with the answer (refuse, or skip with `--skip-unsupported`).

use serde::Serialize;

use crate::error::{Error, Opt, Remedy};
use crate::milvus::capability::{Capabilities, Feature};
use crate::milvus::proto::schema::DataType;
use crate::model::meta::{CollectionSchema, FieldSchema};
use crate::model::selection::CollectionRef;

/// What one collection needs and the target lacks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unsupported {
    /// The collection as the backup names it.
    pub collection: String,
    /// `db.collection.field: what (why)`, one per missing feature and field.
    pub missing: Vec<String>,
}

/// What a schema needs, by field (the collection itself: `None`).
pub fn needs(schema: &CollectionSchema) -> Vec<(Option<&str>, Feature)> {
    let mut out = Vec::new();
    if schema.enable_dynamic_field {
        out.push((None, Feature::DynamicField));
    }
    for f in &schema.fields {
        for feature in field_needs(f) {
            out.push((Some(f.name.as_str()), feature));
        }
    }
    for f in &schema.struct_array_fields {
        out.push((Some(f.name.as_str()), Feature::StructArray));
    }
    for f in &schema.functions {
        let feature = match f.function_type {
            1 => Feature::Bm25Function,
            _ => Feature::OtherFunction,
        };
        out.push((Some(f.name.as_str()), feature));
    }
    out
}

fn field_needs(f: &FieldSchema) -> Vec<Feature> {
    let mut out = Vec::new();
    let feature = match DataType::try_from(f.data_type).unwrap_or(DataType::None) {
        DataType::Json if !f.is_dynamic => Some(Feature::Json),
        DataType::Array => Some(Feature::Array),
        DataType::BinaryVector => Some(Feature::BinaryVector),
        DataType::Float16Vector => Some(Feature::Float16Vector),
        DataType::BFloat16Vector => Some(Feature::BFloat16Vector),
        DataType::SparseFloatVector => Some(Feature::SparseVector),
        DataType::Int8Vector => Some(Feature::Int8Vector),
        DataType::Geometry => Some(Feature::Geometry),
        DataType::Timestamptz => Some(Feature::Timestamptz),
        DataType::Text => Some(Feature::Text),
        DataType::ArrayOfStruct | DataType::Struct => Some(Feature::StructArray),
        _ => None,
    };
    out.extend(feature);
    if f.nullable {
        out.push(Feature::Nullable);
    }
    if f.default_value().is_some() {
        out.push(Feature::DefaultValue);
    }
    if f.is_partition_key {
        out.push(Feature::PartitionKey);
    }
    if f.is_clustering_key {
        out.push(Feature::ClusteringKey);
    }
    if f.element_nullable {
        out.push(Feature::ElementNullable);
    }
    out
}

/// What `schema` (of `collection`) needs that `caps` lacks; `None` when
/// the server holds all of it.
pub fn check(
    caps: &Capabilities,
    collection: &CollectionRef,
    schema: &CollectionSchema,
) -> Option<Unsupported> {
    let missing: Vec<String> = needs(schema)
        .into_iter()
        .filter(|(_, feature)| !caps.has(*feature))
        .map(|(field, feature)| {
            let place = match field {
                Some(f) => format!("{collection}.{f}"),
                None => collection.to_string(),
            };
            format!("{place}: {feature} ({})", caps.why_not(feature))
        })
        .collect();
    (!missing.is_empty()).then(|| Unsupported {
        collection: collection.to_string(),
        missing,
    })
}

/// The one line that refuses a restore or import of `unsupported` into
/// the server at `server` (`address (version)`); `others` collections
/// would fit.
pub fn refusal(server: &str, unsupported: &[Unsupported], others: usize) -> Error {
    let list = unsupported
        .iter()
        .flat_map(|u| u.missing.iter().cloned())
        .collect::<Vec<_>>()
        .join("; ");
    let way_out = Remedy::text("nothing was changed; restore into a Milvus that has them");
    let way_out = match others {
        0 => way_out,
        n => way_out
            .then(", or pass ")
            .opt(Opt::SkipUnsupported)
            .then(format!(" to restore the {n} other collection(s)")),
    };
    Error::unsupported(format!(
        "Milvus {server} cannot hold what the backup needs: {list}"
    ))
    .remedy(way_out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::meta::FunctionSchema;

    fn field(name: &str, data_type: DataType) -> FieldSchema {
        FieldSchema {
            name: name.into(),
            data_type: data_type as i32,
            ..Default::default()
        }
    }

    #[test]
    fn every_missing_feature_is_named_with_its_field() {
        let schema = CollectionSchema {
            fields: vec![
                FieldSchema {
                    is_primary_key: true,
                    ..field("id", DataType::Int64)
                },
                FieldSchema {
                    nullable: true,
                    ..field("n", DataType::Int32)
                },
                field("geo", DataType::Geometry),
                field("tags", DataType::Array),
                field("sparse", DataType::SparseFloatVector),
            ],
            functions: vec![FunctionSchema {
                name: "bm25".into(),
                function_type: 1,
                ..Default::default()
            }],
            ..Default::default()
        };
        let c = CollectionRef {
            db: "default".into(),
            name: "docs".into(),
        };
        let on_23 = check(&Capabilities::of("v2.3.5-lite"), &c, &schema).unwrap();
        assert_eq!(
            on_23.missing,
            [
                "default.docs.n: nullable fields (needs Milvus 2.5.0 or later)",
                "default.docs.geo: GEOMETRY fields (needs Milvus 2.6.0 or later)",
                "default.docs.sparse: sparse vectors (needs Milvus 2.4.0 or later)",
                "default.docs.bm25: BM25 functions (needs Milvus 2.5.0 or later)",
            ]
        );
        let on_22 = check(&Capabilities::of("v2.2.16-lite"), &c, &schema).unwrap();
        assert!(on_22
            .missing
            .contains(&"default.docs.tags: ARRAY fields (needs Milvus 2.3.0 or later)".into()));
        assert_eq!(
            check(&Capabilities::of("milvus_lite-3.2.2"), &c, &schema),
            None
        );
        let e = refusal("127.0.0.1:19530 (v2.3.5)", &[on_23], 1);
        let line = e.to_string();
        assert!(!line.contains('\n'));
        assert!(line.contains("--skip-unsupported"), "{line}");
        let guide = e.line(crate::Caller::Guide);
        assert!(guide.contains(r#""skip_unsupported": true"#), "{guide}");
    }
}
