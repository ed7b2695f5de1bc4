//! The value types Cheetah caches, their Arrow equivalents, and [`Day`], the date of a chunk.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit, UInt8Type};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// Days since 1970-01-01: the value of an Arrow `Date32`.
pub type Day = i32;

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");

/// The [`Day`] of a date.
pub fn day_of(date: NaiveDate) -> Day {
    (date - EPOCH).num_days() as Day
}

/// The date of a [`Day`].
pub fn date_of(day: Day) -> NaiveDate {
    // Saturates instead of panicking: a day read from a corrupt record must not abort.
    EPOCH.checked_add_signed(chrono::TimeDelta::days(i64::from(day))).unwrap_or(if day < 0 {
        NaiveDate::MIN
    } else {
        NaiveDate::MAX
    })
}

/// `#[serde(with)]` for a date stored as its [`Day`]: the bytes every stored record of days has.
pub(crate) mod stored_day {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{date_of, day_of, Day};

    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        day_of(*date).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        Day::deserialize(d).map(date_of)
    }

    /// The same for an optional date.
    pub mod optional {
        use super::*;

        pub fn serialize<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            date.map(day_of).serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            Option::<Day>::deserialize(d).map(|day| day.map(date_of))
        }
    }
}

/// The two kinds of table: rows, or events aligned point-in-time at read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TableKind {
    /// At most one row per (date, symbol).
    #[default]
    Daily,
    /// Events, aligned point-in-time at read.
    Asof,
}

/// The type of a cached field. Each maps to exactly one Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueType {
    /// `Boolean`.
    Bool,
    /// `Int8`.
    Int8,
    /// `UInt8` (MariaDB's unsigned TINYINT).
    UInt8,
    /// `Int16`.
    Int16,
    /// `Int32`.
    Int32,
    /// `Int64`.
    Int64,
    /// `Float32`.
    Float32,
    /// `Float64`.
    Float64,
    /// `Date32`.
    Date32,
    /// `Timestamp(unit, None)`; the unit in Arrow's order: s, ms, us, ns.
    Timestamp(u8),
    /// `Utf8`.
    Utf8,
    /// `Decimal128(precision, scale)`.
    Decimal128(u8, i8),
}

impl ValueType {
    /// Whether it holds numbers: an integer, a float or a decimal.
    pub fn is_number(self) -> bool {
        !matches!(self, Self::Bool | Self::Date32 | Self::Timestamp(_) | Self::Utf8)
    }

    /// The Arrow type of the decoded column.
    pub fn arrow(self) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int8 => DataType::Int8,
            Self::UInt8 => DataType::UInt8,
            Self::Int16 => DataType::Int16,
            Self::Int32 => DataType::Int32,
            Self::Int64 => DataType::Int64,
            Self::Float32 => DataType::Float32,
            Self::Float64 => DataType::Float64,
            Self::Date32 => DataType::Date32,
            Self::Timestamp(unit) => DataType::Timestamp(unit_of(unit), None),
            Self::Utf8 => DataType::Utf8,
            Self::Decimal128(p, s) => DataType::Decimal128(p, s),
        }
    }

    /// The cached type for an Arrow column as the source delivers it, or `None` if it is not
    /// cacheable. Decimals become `Float64` unless `exact_decimals`.
    pub fn for_source(data_type: &DataType, exact_decimals: bool) -> Option<Self> {
        Some(match data_type {
            DataType::Boolean => Self::Bool,
            DataType::Int8 => Self::Int8,
            DataType::UInt8 => Self::UInt8,
            DataType::Int16 => Self::Int16,
            DataType::Int32 | DataType::UInt16 => Self::Int32,
            DataType::Int64 | DataType::UInt32 => Self::Int64,
            DataType::Float16 | DataType::Float32 => Self::Float32,
            DataType::Float64 => Self::Float64,
            DataType::Date32 | DataType::Date64 => Self::Date32,
            DataType::Timestamp(unit, _) => Self::Timestamp(unit_code(*unit)),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::Utf8,
            DataType::Decimal128(p, s) if exact_decimals => Self::Decimal128(*p, *s),
            DataType::Decimal128(..) | DataType::Decimal256(..) => Self::Float64,
            _ => return None,
        })
    }

    /// Bytes per value for fixed-width types; `None` for booleans and text.
    pub fn width(self) -> Option<usize> {
        match self {
            Self::Bool | Self::Utf8 => None,
            Self::Int8 | Self::UInt8 => Some(1),
            Self::Int16 => Some(2),
            Self::Int32 | Self::Float32 | Self::Date32 => Some(4),
            Self::Int64 | Self::Float64 | Self::Timestamp(_) => Some(8),
            Self::Decimal128(..) => Some(16),
        }
    }

    /// A one-byte tag written in every chunk header, checked on decode.
    pub fn tag(self) -> u8 {
        match self {
            Self::Bool => 1,
            Self::Int8 => 2,
            Self::UInt8 => 3,
            Self::Int16 => 4,
            Self::Int32 => 5,
            Self::Int64 => 6,
            Self::Float32 => 7,
            Self::Float64 => 8,
            Self::Date32 => 9,
            Self::Timestamp(unit) => 10 + unit.min(3),
            Self::Utf8 => 14,
            Self::Decimal128(..) => 15,
        }
    }

    /// An all-null array of this type.
    pub fn null_array(self, len: usize) -> arrow::array::ArrayRef {
        arrow::array::new_null_array(&self.arrow(), len)
    }

    /// A short name for listings: `float64`, `timestamp[us]`, `decimal(18,4)`.
    pub fn name(self) -> String {
        match self {
            Self::Timestamp(unit) => format!("timestamp[{}]", ["s", "ms", "us", "ns"][usize::from(unit.min(3))]),
            Self::Decimal128(p, s) => format!("decimal({p},{s})"),
            other => format!("{other:?}").to_lowercase(),
        }
    }
}

/// An integer column with nulls as pandas' numpy backend holds it: float64, NaN at the nulls,
/// the validity kept. `None` for any other column, which that backend holds as it is.
pub(crate) fn nan_floats(array: &dyn Array) -> Option<ArrayRef> {
    let nulls = array.nulls().filter(|n| n.null_count() > 0)?;
    fn widen<T: ArrowPrimitiveType>(
        array: &dyn Array,
        nulls: &NullBuffer,
        to_f64: impl Fn(T::Native) -> f64,
    ) -> ArrayRef {
        let values = array.as_primitive::<T>().values();
        let floats: Vec<f64> =
            values.iter().zip(nulls.iter()).map(|(&v, valid)| if valid { to_f64(v) } else { f64::NAN }).collect();
        Arc::new(Float64Array::new(floats.into(), Some(nulls.clone())))
    }
    Some(match array.data_type() {
        DataType::Int8 => widen::<Int8Type>(array, nulls, f64::from),
        DataType::UInt8 => widen::<UInt8Type>(array, nulls, f64::from),
        DataType::Int16 => widen::<Int16Type>(array, nulls, f64::from),
        DataType::Int32 => widen::<Int32Type>(array, nulls, f64::from),
        // As pandas widens them: exactly up to 2^53, to the nearest double beyond.
        DataType::Int64 => widen::<Int64Type>(array, nulls, |v| v as f64),
        _ => return None,
    })
}

fn unit_code(unit: TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    }
}

fn unit_of(code: u8) -> TimeUnit {
    match code {
        0 => TimeUnit::Second,
        1 => TimeUnit::Millisecond,
        2 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}
