//! The outline of a read: what it would return, without fetching a chunk. A server answers
//! "what is this read?" from it, and splits the read into parts by date.

use arrow::datatypes::DataType;
use chrono::NaiveDate;

use super::fetch::ChunkSource;
use super::plan::Plan;
use crate::error::StoreError;
use crate::store::Version;
use crate::types::date_of;

/// A planned read: its columns, and each date it would read with about how many rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Outline {
    /// The field columns after `date` and `symbol`: the name as requested, and its type.
    pub fields: Vec<(String, DataType)>,
    /// Each date the read covers that some row table holds, ascending, with the most rows any
    /// row table holds that date: at least the read's rows that date, at most a symbol filter
    /// or a wider union away from them.
    pub dates: Vec<(NaiveDate, u64)>,
    /// The dates covered: the request clipped to what every involved table has loaded.
    pub covered: Option<(NaiveDate, NaiveDate)>,
    /// Symbols in the store's dictionary.
    pub symbols: usize,
    /// The store version it reads: a read of its parts at this version returns what it
    /// outlines.
    pub version: Version,
}

impl Outline {
    /// Bytes of one row's fixed-width columns: a 4-byte date code, a 4-byte symbol code and
    /// each field's width (text counts 16 bytes, a guess).
    pub fn row_bytes(&self) -> u64 {
        8 + self.fields.iter().map(|(_, t)| t.primitive_width().map_or(16, |w| w as u64)).sum::<u64>()
    }
}

fn fields(plan: &Plan<'_>) -> Vec<(String, DataType)> {
    plan.output_fields().into_iter().map(|(name, dtype)| (name.to_string(), dtype)).collect()
}

/// Outlines `plan`, counting rows from the row tables' day indexes in `chunks`.
pub(crate) fn outline(
    plan: &Plan<'_>,
    chunks: &impl ChunkSource,
    symbols: usize,
    version: Version,
) -> Result<Outline, StoreError> {
    let mut rows = vec![0u64; plan.days.len()];
    let (Some(&first), Some(&last)) = (plan.days.first(), plan.days.last()) else {
        return Ok(Outline { fields: fields(plan), dates: Vec::new(), covered: plan.covered, symbols, version });
    };
    for table in &plan.tables[..plan.row_tables] {
        for (day, n) in chunks.day_rows(table, first, last)? {
            if let Ok(at) = plan.days.binary_search(&day) {
                rows[at] = rows[at].max(u64::from(n));
            }
        }
    }
    let rows = match &plan.symbols {
        Some(ids) => rows.into_iter().map(|n| n.min(ids.len() as u64)).collect(),
        None => rows,
    };
    Ok(Outline {
        fields: fields(plan),
        dates: plan.days.iter().zip(rows).map(|(&d, n)| (date_of(d), n)).collect(),
        covered: plan.covered,
        symbols,
        version,
    })
}
