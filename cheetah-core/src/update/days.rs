//! Regrouping a date-ordered stream of batches into whole days.

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::concat;

use crate::error::SourceError;
use crate::source::TableRows;
use crate::types::{date_of, Day};

/// Every fetched row of one day.
pub struct DayRows {
    /// The day.
    pub day: Day,
    /// Symbol of each row.
    pub symbols: StringArray,
    /// One array per field, aligned with `symbols`.
    pub fields: Vec<ArrayRef>,
}

/// Yields [`DayRows`] from batches that arrive ordered by date. A day that spans batches is
/// yielded once, whole, after its last row has arrived. The batches' own errors pass through.
pub struct DaySplitter<I> {
    batches: I,
    /// Slices of the day being gathered.
    pending: Vec<TableRows>,
    /// Rows of the current batch not yet handed out.
    current: Option<(TableRows, usize)>,
    table: String,
    finished: bool,
}

impl<I: Iterator<Item = Result<TableRows, E>>, E: From<SourceError>> DaySplitter<I> {
    /// Splits `batches` of `table`.
    pub fn new(batches: I, table: &str) -> Self {
        Self { batches, pending: Vec::new(), current: None, table: table.to_string(), finished: false }
    }

    fn pending_day(&self) -> Option<Day> {
        self.pending.first().map(|rows| rows.days[0])
    }

    fn take_pending(&mut self) -> Result<Option<DayRows>, E> {
        let Some(day) = self.pending_day() else {
            return Ok(None);
        };
        let parts = std::mem::take(&mut self.pending);
        let concat_err = |e: arrow::error::ArrowError| SourceError::BadValue {
            table: self.table.clone(),
            message: format!("cannot gather the rows of {}: {e}", date_of(day)),
        };
        let (symbols, fields) = if parts.len() == 1 {
            let only = parts.into_iter().next().expect("one part");
            (only.symbols, only.fields)
        } else {
            let symbol_parts: Vec<&dyn Array> = parts.iter().map(|p| &p.symbols as &dyn Array).collect();
            let symbols = concat(&symbol_parts).map_err(concat_err)?.as_string::<i32>().clone();
            let fields = (0..parts[0].fields.len())
                .map(|f| {
                    let field_parts: Vec<&dyn Array> = parts.iter().map(|p| p.fields[f].as_ref()).collect();
                    concat(&field_parts).map_err(concat_err)
                })
                .collect::<Result<_, _>>()?;
            (symbols, fields)
        };
        Ok(Some(DayRows { day, symbols, fields }))
    }

    fn step(&mut self) -> Result<Option<DayRows>, E> {
        loop {
            let Some((rows, start)) = self.current.take() else {
                if self.finished {
                    return self.take_pending();
                }
                match self.batches.next() {
                    Some(batch) => {
                        let batch = batch?;
                        if !batch.days.is_empty() {
                            self.current = Some((batch, 0));
                        }
                    }
                    None => self.finished = true,
                }
                continue;
            };
            let day = rows.days[start];
            if let Some(pending) = self.pending_day() {
                if day < pending {
                    return Err(SourceError::BadValue {
                        table: self.table.clone(),
                        message: format!(
                            "the source returned {} after {}: rows are not ordered by date",
                            date_of(day),
                            date_of(pending)
                        ),
                    }
                    .into());
                }
                if day > pending {
                    self.current = Some((rows, start));
                    return self.take_pending();
                }
            }
            let end = start + rows.days[start..].iter().take_while(|&&d| d == day).count();
            let len = end - start;
            self.pending.push(TableRows {
                days: vec![day; 1],
                symbols: rows.symbols.slice(start, len),
                fields: rows.fields.iter().map(|f| f.slice(start, len)).collect(),
            });
            if end < rows.days.len() {
                self.current = Some((rows, end));
            }
        }
    }
}

impl<I: Iterator<Item = Result<TableRows, E>>, E: From<SourceError>> Iterator for DaySplitter<I> {
    type Item = Result<DayRows, E>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(Some(day)) => Some(Ok(day)),
            Ok(None) => None,
            Err(e) => {
                self.finished = true;
                self.current = None;
                self.pending.clear();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use std::sync::Arc;

    fn batch(days: &[Day], first_value: i64) -> Result<TableRows, SourceError> {
        let n = days.len() as i64;
        Ok(TableRows {
            days: days.to_vec(),
            symbols: StringArray::from_iter_values((0..n).map(|i| format!("S{}", first_value + i))),
            fields: vec![Arc::new(Int64Array::from_iter_values(first_value..first_value + n))],
        })
    }

    #[test]
    fn days_spanning_batches_come_out_whole() {
        let batches = vec![batch(&[1, 1, 2], 0), batch(&[2, 2], 3), batch(&[], 5), batch(&[2, 5], 5)];
        let days: Vec<DayRows> = DaySplitter::new(batches.into_iter(), "t").map(Result::unwrap).collect();
        let summary: Vec<(Day, Vec<i64>)> = days
            .iter()
            .map(|d| (d.day, d.fields[0].as_primitive::<arrow::datatypes::Int64Type>().values().to_vec()))
            .collect();
        assert_eq!(summary, [(1, vec![0, 1]), (2, vec![2, 3, 4, 5]), (5, vec![6])]);
        assert_eq!(days[1].symbols.value(3), "S5");
    }

    #[test]
    fn out_of_order_days_are_an_error() {
        let batches = vec![batch(&[3], 0), batch(&[2], 1)];
        let results: Vec<_> = DaySplitter::new(batches.into_iter(), "t").collect();
        assert_eq!(results.len(), 1);
        let err = results[0].as_ref().err().expect("an error").to_string();
        assert!(err.contains("not ordered by date"), "{err}");
    }
}
