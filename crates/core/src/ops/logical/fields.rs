//! The collection's fields as the logical engine sees them: each field's
//! kind (type, element type, dimension) from the backed-up schema, and the
//! Arrow type its Parquet column has.

use std::sync::Arc;

use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema as ArrowSchema, TimeUnit};

use crate::error::{Error, Result};
use crate::milvus::proto::schema::DataType;
use crate::model::meta::{CollectionSchema, FieldSchema};

/// What values one field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    VarChar,
    /// Long text (Milvus 3.0); strings like VarChar.
    Text,
    Json,
    /// A geometry: WKB in Parquet (GeoParquet), WKT in JSON and on insert.
    Geometry,
    /// A point in time, microseconds since the epoch in UTC.
    Timestamptz,
    /// An array of scalars of this element kind.
    Array(Elem),
    FloatVector(usize),
    /// Dimension in bits.
    BinaryVector(usize),
    Float16Vector(usize),
    BFloat16Vector(usize),
    Int8Vector(usize),
    SparseFloatVector,
}

/// Element kinds of array fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    Bool,
    Int8,
    Int16,
    Int32,
    Int64,
    Float,
    Double,
    VarChar,
}

/// One field of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub kind: Kind,
    pub is_primary: bool,
    pub auto_id: bool,
    /// The dynamic field (`$meta`): a JSON object per row.
    pub is_dynamic: bool,
    pub nullable: bool,
    /// The server fills in a default value where a row has none.
    pub has_default: bool,
}

impl Field {
    /// A field of `kind` that takes no null: the primary key when named `id`
    /// (for tests).
    #[cfg(test)]
    pub(crate) fn plain(name: &str, kind: Kind) -> Field {
        Field {
            name: name.into(),
            kind,
            is_primary: name == "id",
            auto_id: false,
            is_dynamic: false,
            nullable: false,
            has_default: false,
        }
    }

    /// Whether a row may have no value: null, or the default filled in.
    pub fn takes_null(&self) -> bool {
        self.nullable || self.has_default
    }
}

/// Why a field has no column in the files: the server computes it.
pub fn is_computed(f: &FieldSchema) -> bool {
    f.is_function_output
}

impl Kind {
    fn of(f: &FieldSchema) -> Result<Kind> {
        let dim = || -> Result<usize> {
            f.type_params
                .iter()
                .find(|p| p.key == "dim")
                .and_then(|p| p.value.parse().ok())
                .ok_or_else(|| {
                    Error::invalid_input(format!("vector field `{}` has no dim", f.name))
                })
        };
        let dt = DataType::try_from(f.data_type).unwrap_or(DataType::None);
        Ok(match dt {
            DataType::Bool => Kind::Bool,
            DataType::Int8 => Kind::Int8,
            DataType::Int16 => Kind::Int16,
            DataType::Int32 => Kind::Int32,
            DataType::Int64 => Kind::Int64,
            DataType::Float => Kind::Float,
            DataType::Double => Kind::Double,
            DataType::String | DataType::VarChar => Kind::VarChar,
            DataType::Text => Kind::Text,
            DataType::Json => Kind::Json,
            DataType::Geometry => Kind::Geometry,
            DataType::Timestamptz => Kind::Timestamptz,
            DataType::Array => Kind::Array(Elem::of(f.element_type).ok_or_else(|| {
                Error::unsupported(format!(
                    "array field `{}` has element type {} which logical backups do not handle",
                    f.name,
                    type_name(f.element_type)
                ))
            })?),
            DataType::FloatVector => Kind::FloatVector(dim()?),
            DataType::BinaryVector => Kind::BinaryVector(dim()?),
            DataType::Float16Vector => Kind::Float16Vector(dim()?),
            DataType::BFloat16Vector => Kind::BFloat16Vector(dim()?),
            DataType::Int8Vector => Kind::Int8Vector(dim()?),
            DataType::SparseFloatVector => Kind::SparseFloatVector,
            _ => {
                return Err(Error::unsupported(format!(
                    "field `{}` has type {} which logical backups do not handle",
                    f.name,
                    type_name(f.data_type)
                )))
            }
        })
    }

    /// Milvus's `DataType` of this kind.
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Bool => DataType::Bool,
            Kind::Int8 => DataType::Int8,
            Kind::Int16 => DataType::Int16,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float => DataType::Float,
            Kind::Double => DataType::Double,
            Kind::VarChar => DataType::VarChar,
            Kind::Text => DataType::Text,
            Kind::Json => DataType::Json,
            Kind::Geometry => DataType::Geometry,
            Kind::Timestamptz => DataType::Timestamptz,
            Kind::Array(_) => DataType::Array,
            Kind::FloatVector(_) => DataType::FloatVector,
            Kind::BinaryVector(_) => DataType::BinaryVector,
            Kind::Float16Vector(_) => DataType::Float16Vector,
            Kind::BFloat16Vector(_) => DataType::BFloat16Vector,
            Kind::Int8Vector(_) => DataType::Int8Vector,
            Kind::SparseFloatVector => DataType::SparseFloatVector,
        }
    }

    /// The Arrow type of this kind's Parquet column.
    pub fn arrow_type(self) -> ArrowType {
        match self {
            Kind::Bool => ArrowType::Boolean,
            Kind::Int8 => ArrowType::Int8,
            Kind::Int16 => ArrowType::Int16,
            Kind::Int32 => ArrowType::Int32,
            Kind::Int64 => ArrowType::Int64,
            Kind::Float => ArrowType::Float32,
            Kind::Double => ArrowType::Float64,
            Kind::VarChar | Kind::Text | Kind::Json | Kind::SparseFloatVector => ArrowType::Utf8,
            Kind::Geometry => ArrowType::Binary,
            Kind::Timestamptz => ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Array(e) => ArrowType::List(Arc::new(ArrowField::new(
                "item",
                e.kind().arrow_type(),
                true,
            ))),
            Kind::FloatVector(dim) => ArrowType::FixedSizeList(
                Arc::new(ArrowField::new("item", ArrowType::Float32, false)),
                dim as i32,
            ),
            Kind::Int8Vector(dim) => ArrowType::FixedSizeList(
                Arc::new(ArrowField::new("item", ArrowType::Int8, false)),
                dim as i32,
            ),
            Kind::BinaryVector(dim) => ArrowType::FixedSizeBinary((dim / 8) as i32),
            Kind::Float16Vector(dim) | Kind::BFloat16Vector(dim) => {
                ArrowType::FixedSizeBinary((dim * 2) as i32)
            }
        }
    }

    /// Bytes per row of a vector kind (its raw size).
    pub fn vector_bytes(self) -> Option<usize> {
        match self {
            Kind::FloatVector(d) => Some(d * 4),
            Kind::BinaryVector(d) => Some(d / 8),
            Kind::Float16Vector(d) | Kind::BFloat16Vector(d) => Some(d * 2),
            Kind::Int8Vector(d) => Some(d),
            _ => None,
        }
    }
}

impl Elem {
    fn of(element_type: i32) -> Option<Elem> {
        Some(match DataType::try_from(element_type).ok()? {
            DataType::Bool => Elem::Bool,
            DataType::Int8 => Elem::Int8,
            DataType::Int16 => Elem::Int16,
            DataType::Int32 => Elem::Int32,
            DataType::Int64 => Elem::Int64,
            DataType::Float => Elem::Float,
            DataType::Double => Elem::Double,
            DataType::String | DataType::VarChar => Elem::VarChar,
            _ => return None,
        })
    }

    pub fn kind(self) -> Kind {
        match self {
            Elem::Bool => Kind::Bool,
            Elem::Int8 => Kind::Int8,
            Elem::Int16 => Kind::Int16,
            Elem::Int32 => Kind::Int32,
            Elem::Int64 => Kind::Int64,
            Elem::Float => Kind::Float,
            Elem::Double => Kind::Double,
            Elem::VarChar => Kind::VarChar,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::Array(e) => write!(f, "Array<{:?}>", e.kind().data_type()),
            Kind::FloatVector(d)
            | Kind::BinaryVector(d)
            | Kind::Float16Vector(d)
            | Kind::BFloat16Vector(d)
            | Kind::Int8Vector(d) => write!(f, "{:?}(dim {d})", self.data_type()),
            k => write!(f, "{:?}", k.data_type()),
        }
    }
}

fn type_name(t: i32) -> String {
    DataType::try_from(t)
        .map(|d| format!("{d:?}"))
        .unwrap_or_else(|_| t.to_string())
}

/// The dynamic field's name.
pub const DYNAMIC_FIELD: &str = "$meta";

/// The fields of a backed-up schema that files hold, in schema order, with
/// the dynamic field last when the schema enables it without listing it
/// (Milvus Lite). Function outputs are left out: a restore recreates the
/// function and the server computes them.
pub fn fields_of(schema: &CollectionSchema) -> Result<Vec<Field>> {
    if let Some(f) = schema.fields.iter().find(|f| f.element_nullable) {
        return Err(Error::unsupported(format!(
            "array field `{}` may hold null elements, which logical backups do not handle yet; \
             back the collection up with --format binlog",
            f.name
        )));
    }
    if let Some(s) = schema.struct_array_fields.first() {
        return Err(Error::unsupported(format!(
            "field `{}` is an array of structs, which logical backups do not handle yet; \
             back the collection up with --format binlog",
            s.name
        )));
    }
    let mut fields: Vec<Field> = schema
        .fields
        .iter()
        .filter(|f| !is_computed(f))
        .map(|f| {
            Ok(Field {
                name: f.name.clone(),
                kind: Kind::of(f)?,
                is_primary: f.is_primary_key,
                auto_id: f.auto_id || (f.is_primary_key && schema.auto_id),
                is_dynamic: f.is_dynamic,
                nullable: f.nullable,
                has_default: f.default_value().is_some(),
            })
        })
        .collect::<Result<_>>()?;
    if schema.enable_dynamic_field && !fields.iter().any(|f| f.is_dynamic) {
        fields.push(Field {
            name: DYNAMIC_FIELD.to_string(),
            kind: Kind::Json,
            is_primary: false,
            auto_id: false,
            is_dynamic: true,
            nullable: false,
            has_default: false,
        });
    }
    Ok(fields)
}

/// The Arrow schema of an export's Parquet files: one column per field,
/// named by the field. Geometry columns (WKB) are described by GeoParquet
/// metadata (the `geo` key), so GeoPandas and DuckDB read them as geometry.
pub fn arrow_schema(fields: &[Field]) -> ArrowSchema {
    let schema = ArrowSchema::new(
        fields
            .iter()
            .map(|f| ArrowField::new(&f.name, f.kind.arrow_type(), f.nullable))
            .collect::<Vec<_>>(),
    );
    let geo: Vec<&str> = fields
        .iter()
        .filter(|f| f.kind == Kind::Geometry)
        .map(|f| f.name.as_str())
        .collect();
    match geo.first() {
        None => schema,
        Some(primary) => {
            let columns: serde_json::Map<String, serde_json::Value> = geo
                .iter()
                .map(|name| {
                    (
                        name.to_string(),
                        serde_json::json!({"encoding": "WKB", "geometry_types": []}),
                    )
                })
                .collect();
            let meta = serde_json::json!({
                "version": "1.1.0",
                "primary_column": primary,
                "columns": columns,
            });
            schema.with_metadata(std::collections::HashMap::from([(
                "geo".to_string(),
                meta.to_string(),
            )]))
        }
    }
}

/// Raw bytes of one row, estimated from the fixed-size fields, with
/// `var_bytes` for each variable-size one: sizes batches and files.
pub fn row_bytes(fields: &[Field], var_bytes: usize) -> usize {
    fields
        .iter()
        .map(|f| match f.kind {
            Kind::Bool | Kind::Int8 => 1,
            Kind::Timestamptz => 8,
            Kind::Int16 => 2,
            Kind::Int32 | Kind::Float => 4,
            Kind::Int64 | Kind::Double => 8,
            k => k.vector_bytes().unwrap_or(var_bytes),
        })
        .sum::<usize>()
        .max(1)
}
