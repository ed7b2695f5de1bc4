//! The catalog: which tables and fields the store holds, under which ids.
//!
//! Ids are never reused. Invalidating a table or re-typing a field gives it fresh ids, and the
//! chunks under ids no longer in the catalog are swept by the next update.
//!
//! The catalog is stored with postcard, which writes an enum as its variant index. The store
//! therefore never serialises the crate's own enums: it writes the tags of [`tags`], whose
//! variant order is the format and is pinned by tests, so reordering an enum elsewhere cannot
//! change the meaning of stored bytes.

use serde::{Deserialize, Serialize};

use crate::types::{TableKind, ValueType};

/// Every cached table and field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The next unused id, shared by tables and fields.
    pub next_id: u32,
    /// The cached tables.
    pub tables: Vec<TableEntry>,
}

/// A cached table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Id of its row chunks.
    pub id: u32,
    /// Its name in the config and the source.
    pub name: String,
    /// Daily or asof.
    #[serde(with = "tags::table_kind")]
    pub kind: TableKind,
    /// The config settings its chunks were built with.
    pub fingerprint: TableFingerprint,
    /// Its cached fields.
    pub fields: Vec<FieldEntry>,
}

/// A cached field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldEntry {
    /// Id of its value chunks.
    pub id: u32,
    /// Its column name in the source.
    pub name: String,
    /// Its type.
    #[serde(with = "tags::value_type")]
    pub dtype: ValueType,
    /// False while a newly added field is being backfilled; its chunks then cover only the
    /// dates up to its fieldmark.
    pub complete: bool,
}

impl Catalog {
    /// Takes a fresh id.
    pub fn allocate_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The table named `name`.
    pub fn table(&self, name: &str) -> Option<&TableEntry> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Every id with chunks that should exist, ascending.
    pub fn live_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> =
            self.tables.iter().flat_map(|t| std::iter::once(t.id).chain(t.fields.iter().map(|f| f.id))).collect();
        ids.sort_unstable();
        ids
    }
}

impl TableEntry {
    /// Whether researchers write it (`Cache::write`), rather than an update from a source.
    pub fn is_local(&self) -> bool {
        self.fingerprint == TableFingerprint::local()
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&FieldEntry> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The settings of a table whose change invalidates everything cached for it.
///
/// Stored as `name=value;…` text, in the order given, exactly as every format has written it;
/// two fingerprints are equal when their texts are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TableFingerprint {
    text: String,
}

impl TableFingerprint {
    /// The fingerprint of `settings`, each a name and its value as text.
    pub fn new<'a>(settings: impl IntoIterator<Item = (&'a str, String)>) -> Self {
        let text = settings.into_iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join(";");
        Self { text }
    }

    /// The fingerprint of a local table: `local`, which no source table's settings text (each
    /// `name=value`) can equal.
    pub fn local() -> Self {
        Self { text: "local".into() }
    }

    /// The names of the settings whose values differ in `newer`; `format` when the texts differ
    /// but no setting does (a store written by another version).
    pub fn changed_settings(&self, newer: &Self) -> Vec<String> {
        let old = self.settings();
        let mut changed: Vec<String> =
            newer.settings().into_iter().filter(|kv| !old.contains(kv)).map(|(name, _)| name.to_string()).collect();
        if changed.is_empty() && self != newer {
            changed.push("format".into());
        }
        changed
    }

    fn settings(&self) -> Vec<(&str, &str)> {
        self.text.split(';').filter_map(|kv| kv.split_once('=')).collect()
    }
}

/// The tags the catalog is stored with.
pub(crate) mod tags {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::types::{TableKind, ValueType};

    /// A table kind as stored. Append only: the variant index is the tag.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub enum KindTag {
        Daily,
        Asof,
    }

    /// A value type as stored. Append only: the variant index is the tag, and the payloads are
    /// the timestamp unit (0 s, 1 ms, 2 us, 3 ns) and the decimal precision and scale.
    #[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
    pub enum TypeTag {
        Bool,
        Int8,
        UInt8,
        Int16,
        Int32,
        Int64,
        Float32,
        Float64,
        Date32,
        Timestamp(u8),
        Utf8,
        Decimal128(u8, i8),
    }

    impl From<TableKind> for KindTag {
        fn from(kind: TableKind) -> Self {
            match kind {
                TableKind::Daily => Self::Daily,
                TableKind::Asof => Self::Asof,
            }
        }
    }

    impl From<KindTag> for TableKind {
        fn from(tag: KindTag) -> Self {
            match tag {
                KindTag::Daily => Self::Daily,
                KindTag::Asof => Self::Asof,
            }
        }
    }

    impl From<ValueType> for TypeTag {
        fn from(dtype: ValueType) -> Self {
            match dtype {
                ValueType::Bool => Self::Bool,
                ValueType::Int8 => Self::Int8,
                ValueType::UInt8 => Self::UInt8,
                ValueType::Int16 => Self::Int16,
                ValueType::Int32 => Self::Int32,
                ValueType::Int64 => Self::Int64,
                ValueType::Float32 => Self::Float32,
                ValueType::Float64 => Self::Float64,
                ValueType::Date32 => Self::Date32,
                ValueType::Timestamp(unit) => Self::Timestamp(unit),
                ValueType::Utf8 => Self::Utf8,
                ValueType::Decimal128(p, s) => Self::Decimal128(p, s),
            }
        }
    }

    impl From<TypeTag> for ValueType {
        fn from(tag: TypeTag) -> Self {
            match tag {
                TypeTag::Bool => Self::Bool,
                TypeTag::Int8 => Self::Int8,
                TypeTag::UInt8 => Self::UInt8,
                TypeTag::Int16 => Self::Int16,
                TypeTag::Int32 => Self::Int32,
                TypeTag::Int64 => Self::Int64,
                TypeTag::Float32 => Self::Float32,
                TypeTag::Float64 => Self::Float64,
                TypeTag::Date32 => Self::Date32,
                TypeTag::Timestamp(unit) => Self::Timestamp(unit),
                TypeTag::Utf8 => Self::Utf8,
                TypeTag::Decimal128(p, s) => Self::Decimal128(p, s),
            }
        }
    }

    /// `#[serde(with)]` for a [`TableKind`] stored as its [`KindTag`].
    pub mod table_kind {
        use super::*;

        pub fn serialize<S: Serializer>(kind: &TableKind, s: S) -> Result<S::Ok, S::Error> {
            KindTag::from(*kind).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TableKind, D::Error> {
            KindTag::deserialize(d).map(TableKind::from)
        }
    }

    /// `#[serde(with)]` for a [`ValueType`] stored as its [`TypeTag`].
    pub mod value_type {
        use super::*;

        pub fn serialize<S: Serializer>(dtype: &ValueType, s: S) -> Result<S::Ok, S::Error> {
            TypeTag::from(*dtype).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ValueType, D::Error> {
            TypeTag::deserialize(d).map(ValueType::from)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tags::{KindTag, TypeTag};
    use super::*;

    #[test]
    fn every_stored_tag_is_pinned() {
        let kinds = [(TableKind::Daily, vec![0]), (TableKind::Asof, vec![1])];
        for (kind, bytes) in kinds {
            assert_eq!(postcard::to_stdvec(&KindTag::from(kind)).unwrap(), bytes, "{kind:?}");
        }
        let types = [
            (ValueType::Bool, vec![0]),
            (ValueType::Int8, vec![1]),
            (ValueType::UInt8, vec![2]),
            (ValueType::Int16, vec![3]),
            (ValueType::Int32, vec![4]),
            (ValueType::Int64, vec![5]),
            (ValueType::Float32, vec![6]),
            (ValueType::Float64, vec![7]),
            (ValueType::Date32, vec![8]),
            (ValueType::Timestamp(2), vec![9, 2]),
            (ValueType::Utf8, vec![10]),
            (ValueType::Decimal128(18, -4), vec![11, 18, 0xfc]),
        ];
        for (dtype, bytes) in types {
            let tag = TypeTag::from(dtype);
            assert_eq!(postcard::to_stdvec(&tag).unwrap(), bytes, "{dtype:?}");
            assert_eq!(ValueType::from(postcard::from_bytes::<TypeTag>(&bytes).unwrap()), dtype);
        }
    }

    #[test]
    fn a_catalog_round_trips_and_keeps_its_bytes() {
        let catalog = Catalog {
            next_id: 3,
            tables: vec![TableEntry {
                id: 0,
                name: "t".into(),
                kind: TableKind::Asof,
                fingerprint: TableFingerprint::new([("kind", "Asof".to_string())]),
                fields: vec![FieldEntry { id: 1, name: "f".into(), dtype: ValueType::Float64, complete: true }],
            }],
        };
        let bytes = postcard::to_stdvec(&catalog).unwrap();
        assert_eq!(
            bytes,
            [3, 1, 0, 1, b't', 1, 9, b'k', b'i', b'n', b'd', b'=', b'A', b's', b'o', b'f', 1, 1, 1, b'f', 7, 1]
        );
        assert_eq!(postcard::from_bytes::<Catalog>(&bytes).unwrap(), catalog);
    }

    #[test]
    fn fingerprints_name_the_settings_that_changed() {
        let old = TableFingerprint::new([("date", "d".to_string()), ("where", "None".to_string())]);
        let new = TableFingerprint::new([("date", "d".to_string()), ("where", "Some(\"x > 1\")".to_string())]);
        assert_eq!(old.changed_settings(&new), ["where"]);
        assert!(old.changed_settings(&old).is_empty());
        let reordered = TableFingerprint::new([("where", "None".to_string()), ("date", "d".to_string())]);
        assert_eq!(old.changed_settings(&reordered), ["format"]);
    }
}
