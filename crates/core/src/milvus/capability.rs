//! What a Milvus server can hold, by kind and version: one table for
//! Milvus (2.2 to 3.0 and later) and one for Milvus Lite, read from the
//! version string the server sends (`v2.3.5-lite` is Milvus standalone
//! 2.3.5 from PyPI; `milvus_lite-3.2.2` is Milvus Lite). A server whose
//! version cannot be read is taken to hold everything: Milvus itself then
//! says what it refuses.
//!
//! Does not own: comparing a collection with it (`ops::preflight`).

use std::fmt;

use crate::milvus::Version;

/// Which program answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Milvus,
    /// Milvus Lite (`milvus_lite-…`): row-level access only.
    Lite,
    /// A version string neither table knows.
    Unknown,
}

/// One thing a collection may need that a server may lack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Feature {
    Databases,
    Json,
    DynamicField,
    PartitionKey,
    Array,
    BinaryVector,
    Float16Vector,
    BFloat16Vector,
    SparseVector,
    Int8Vector,
    Nullable,
    DefaultValue,
    Bm25Function,
    /// Functions other than BM25 (text embedding, MinHash, ...).
    OtherFunction,
    Geometry,
    Timestamptz,
    Text,
    StructArray,
    ClusteringKey,
    ElementNullable,
}

impl Feature {
    /// The first Milvus version that has it.
    fn since(self) -> Version {
        let v = |major, minor, patch| Version {
            major,
            minor,
            patch,
        };
        match self {
            Feature::Json => v(2, 2, 8),
            Feature::DynamicField | Feature::PartitionKey => v(2, 2, 9),
            Feature::BinaryVector => v(2, 0, 0),
            Feature::Databases | Feature::Array => v(2, 3, 0),
            Feature::Float16Vector
            | Feature::BFloat16Vector
            | Feature::SparseVector
            | Feature::ClusteringKey => v(2, 4, 0),
            Feature::Nullable | Feature::DefaultValue | Feature::Bm25Function => v(2, 5, 0),
            Feature::Int8Vector
            | Feature::OtherFunction
            | Feature::Geometry
            | Feature::Timestamptz
            | Feature::StructArray
            | Feature::ElementNullable => v(2, 6, 0),
            Feature::Text => v(3, 0, 0),
        }
    }

    /// Whether Milvus Lite 3.x has it (checked on Lite 3.2.2: no binary,
    /// float16, bfloat16 or int8 vectors; arrays of structs are accepted
    /// at creation and then dropped, so they count as missing).
    fn on_lite(self) -> bool {
        !matches!(
            self,
            Feature::BinaryVector
                | Feature::Float16Vector
                | Feature::BFloat16Vector
                | Feature::Int8Vector
                | Feature::StructArray
                | Feature::Text
                | Feature::OtherFunction
                | Feature::ClusteringKey
                | Feature::ElementNullable
        )
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Feature::Databases => "databases",
            Feature::Json => "JSON fields",
            Feature::DynamicField => "the dynamic field",
            Feature::PartitionKey => "partition keys",
            Feature::Array => "ARRAY fields",
            Feature::BinaryVector => "binary vectors",
            Feature::Float16Vector => "float16 vectors",
            Feature::BFloat16Vector => "bfloat16 vectors",
            Feature::SparseVector => "sparse vectors",
            Feature::Int8Vector => "int8 vectors",
            Feature::Nullable => "nullable fields",
            Feature::DefaultValue => "default values",
            Feature::Bm25Function => "BM25 functions",
            Feature::OtherFunction => "this function type",
            Feature::Geometry => "GEOMETRY fields",
            Feature::Timestamptz => "TIMESTAMPTZ fields",
            Feature::Text => "TEXT fields",
            Feature::StructArray => "arrays of structs",
            Feature::ClusteringKey => "clustering keys",
            Feature::ElementNullable => "arrays with null elements",
        })
    }
}

/// A server's kind and version, and so what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    pub kind: ServerKind,
    pub version: Option<Version>,
}

impl Capabilities {
    /// From the version string the server sends.
    pub fn of(version_text: &str) -> Capabilities {
        let t = version_text.trim();
        let (kind, rest) = match t.strip_prefix("milvus_lite-") {
            Some(rest) => (ServerKind::Lite, rest),
            None => (ServerKind::Milvus, t),
        };
        match Version::parse(rest) {
            Some(v) => Capabilities {
                kind,
                version: Some(v),
            },
            None => Capabilities {
                kind: ServerKind::Unknown,
                version: None,
            },
        }
    }

    pub fn has(&self, feature: Feature) -> bool {
        match (self.kind, self.version) {
            (ServerKind::Lite, _) => feature.on_lite(),
            (ServerKind::Milvus, Some(v)) => v >= feature.since(),
            _ => true,
        }
    }

    /// Why the server lacks `feature`, for messages: `needs Milvus ≥ 2.5`.
    pub fn why_not(&self, feature: Feature) -> String {
        match self.kind {
            ServerKind::Lite => "Milvus Lite has none".to_string(),
            _ => format!("needs Milvus {} or later", feature.since()),
        }
    }

    /// Whether reads may name a timestamp to read at (a consistent
    /// snapshot of an export): Milvus 2.3 and later, and Lite.
    pub fn reads_at_timestamp(&self) -> bool {
        self.has(Feature::Databases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_strings_of_every_server_here_are_read() {
        let lite = Capabilities::of("milvus_lite-3.2.2");
        assert_eq!(lite.kind, ServerKind::Lite);
        assert_eq!(lite.version.unwrap().to_string(), "3.2.2");
        assert!(lite.has(Feature::Databases));
        assert!(lite.has(Feature::Geometry));
        assert!(!lite.has(Feature::BinaryVector));

        let m23 = Capabilities::of("v2.3.5-lite");
        assert_eq!(m23.kind, ServerKind::Milvus);
        assert!(m23.has(Feature::Array) && m23.has(Feature::Databases));
        assert!(!m23.has(Feature::Nullable));
        assert_eq!(
            m23.why_not(Feature::Nullable),
            "needs Milvus 2.5.0 or later"
        );

        let m22 = Capabilities::of("v2.2.16-lite");
        assert!(!m22.has(Feature::Array) && !m22.has(Feature::Databases));
        assert!(m22.has(Feature::Json) && m22.has(Feature::PartitionKey));

        assert!(Capabilities::of("v2.6.3").has(Feature::Geometry));
        let odd = Capabilities::of("nightly");
        assert_eq!(odd.kind, ServerKind::Unknown);
        assert!(odd.has(Feature::StructArray));
    }
}
