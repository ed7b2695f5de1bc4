//! The wide assembler: per-date chunks scattered straight into one date × symbol matrix per
//! field, with no long table between them.
//!
//! The matrix's rows are the dates with rows and its columns every symbol with a row on any of
//! them, in text order; a cell without a row is NaN. Each date fills its own row of every
//! matrix, so dates fill in parallel.

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use rayon::prelude::*;

use super::{day_rows, Inputs, RankBits, NONE};
use crate::types::Day;

/// The assembled matrices.
pub struct Wide {
    /// The dates with rows: the matrices' rows.
    pub days: Vec<Day>,
    /// The ranks of the symbols with rows: the matrices' columns.
    pub ranks: Vec<u32>,
    /// Per field, its matrix in row-major order (`days.len()` × `ranks.len()`).
    pub fields: Vec<Vec<f64>>,
}

/// Scatters `inputs`' numeric fields into matrices.
pub fn assemble_wide(inputs: &Inputs<'_>) -> Wide {
    let symbols = inputs.ranking.rank.len();
    let rows = day_rows(inputs);
    let mut all = RankBits::new(symbols);
    rows.iter().for_each(|r| all.union(r));
    let mut column = vec![NONE; symbols];
    let mut ranks = Vec::new();
    all.for_each(|rank| {
        column[rank as usize] = ranks.len() as u32;
        ranks.push(rank);
    });
    let dated: Vec<usize> = (0..inputs.days.len()).filter(|&d| rows[d].count() > 0).collect();
    let width = ranks.len();

    let fields = inputs
        .fields
        .iter()
        .map(|(table, _, chunks)| {
            // Zeroed memory comes from the OS untouched: each date's thread fills its own row's
            // pages, so the first touch is parallel too.
            let mut matrix = vec![0.0; dated.len() * width];
            if width == 0 {
                return matrix;
            }
            matrix.par_chunks_mut(width).zip(&dated).for_each(|(out, &d)| {
                out.fill(f64::NAN);
                let (Some(keys), Some(chunk)) = (&inputs.tables[*table][d], &chunks[d]) else { return };
                let floats = match chunk.data_type() {
                    DataType::Float64 => chunk.clone(),
                    _ => cast(chunk, &DataType::Float64).expect("numeric chunks cast to float64"),
                };
                let floats = floats.as_primitive::<Float64Type>();
                let nulls = floats.nulls().filter(|n| n.null_count() > 0);
                for (i, (&id, &value)) in keys.iter().zip(floats.values()).enumerate() {
                    let Some(&rank) = inputs.ranking.rank.get(id as usize) else { continue };
                    if rows[d].get(rank) && nulls.is_none_or(|n| n.is_valid(i)) {
                        out[column[rank as usize] as usize] = value;
                    }
                }
            });
            matrix
        })
        .collect();
    Wide { days: dated.iter().map(|&d| inputs.days[d]).collect(), ranks, fields }
}
