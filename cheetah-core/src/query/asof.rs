//! Point-in-time alignment of an `asof` table's events to the dates of a read.
//!
//! An asof table holds events keyed by (event date, symbol), one per key: the updater keeps the
//! last by `order_by` when several share an event date. For each date `d` of a read, a symbol's
//! value is that of its latest event with event date ≤ `d`. The alignment turns the events into
//! per-date "state" chunks, shaped like a daily table's, which the assembler then fills into the
//! rows without adding any: a symbol's state on `d` is its latest event at or before `d`.
//!
//! Events before the read's first date count (state carries over), and events after its last
//! date are never looked at, so nothing is seen before it was announced.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::{concat, take};

use super::assemble::{FieldChunks, TableRows};
use crate::types::Day;

/// Events aligned to a read's dates: each date's state as a row chunk, and per field its values.
pub struct Aligned {
    /// Symbol ids with an event so far, on each date.
    pub rows: TableRows,
    /// Per field, the latest values of those symbols on each date.
    pub fields: Vec<FieldChunks>,
}

/// Events of one asof table: its event dates ascending, the row chunk of each, and per field
/// the value chunk of each.
pub struct Events {
    /// Event dates, ascending.
    pub days: Vec<Day>,
    /// Symbol ids with an event on each date.
    pub rows: TableRows,
    /// Per field, its values on each event date, aligned with `rows`.
    pub fields: Vec<FieldChunks>,
}

/// The state of every symbol on each of `days` (ascending): row chunks of the symbols with an
/// event so far, and per field their latest values.
///
/// # Errors
/// Arrow's, if the chunks of one field disagree on type (a corrupt store).
pub fn align(days: &[Day], events: &Events) -> Result<Aligned, String> {
    // Every event of a field in one array, in date order; `first_row[e]` is where date `e` starts.
    let mut first_row = Vec::with_capacity(events.days.len());
    let mut rows = 0usize;
    for keys in &events.rows {
        first_row.push(rows);
        rows += keys.as_ref().map_or(0, |k| k.len());
    }
    let all: Vec<Option<ArrayRef>> = events
        .fields
        .iter()
        .map(|chunks| {
            let parts: Vec<&dyn arrow::array::Array> = chunks.iter().flatten().map(|a| a.as_ref()).collect();
            if parts.is_empty() {
                Ok(None)
            } else {
                concat(&parts).map(Some).map_err(|e| e.to_string())
            }
        })
        .collect::<Result<_, _>>()?;

    // `latest[id]`: the row in `all` of the symbol's latest event so far.
    let mut latest: Vec<u32> = Vec::new();
    let mut next_event = 0;
    let mut keys_out: TableRows = Vec::with_capacity(days.len());
    let mut values_out: Vec<FieldChunks> = vec![Vec::with_capacity(days.len()); events.fields.len()];
    // The state on the previous date, reused while no event changes it.
    let mut previous: Option<(Arc<[u32]>, FieldChunks)> = None;
    for &day in days {
        let mut changed = false;
        while next_event < events.days.len() && events.days[next_event] <= day {
            if let Some(ids) = &events.rows[next_event] {
                for (i, &id) in ids.iter().enumerate() {
                    let id = id as usize;
                    if latest.len() <= id {
                        latest.resize(id + 1, u32::MAX);
                    }
                    latest[id] = (first_row[next_event] + i) as u32;
                    changed = true;
                }
            }
            next_event += 1;
        }
        if changed || previous.is_none() {
            let ids: Vec<u32> = (0..latest.len() as u32).filter(|&id| latest[id as usize] != u32::MAX).collect();
            let indices = UInt32Array::from_iter_values(ids.iter().map(|&id| latest[id as usize]));
            let values = all
                .iter()
                .map(|column| column.as_ref().map(|c| take(c.as_ref(), &indices, None)).transpose())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            previous = Some((Arc::from(ids), values));
        }
        let (ids, values) = previous.as_ref().expect("set above");
        keys_out.push((!ids.is_empty()).then(|| ids.clone()));
        for (out, value) in values_out.iter_mut().zip(values) {
            out.push(value.clone().filter(|_| !ids.is_empty()));
        }
    }
    Ok(Aligned { rows: keys_out, fields: values_out })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::Float64Type;

    fn chunk(values: &[f64]) -> Option<ArrayRef> {
        Some(Arc::new(Float64Array::from(values.to_vec())))
    }

    #[test]
    fn each_date_sees_the_latest_event_at_or_before_it_and_nothing_later() {
        // Symbol 1 reports on day 2 and 10, symbol 3 on day 5 only.
        let events = Events {
            days: vec![2, 5, 10],
            rows: vec![Some(Arc::from(vec![1])), Some(Arc::from(vec![3])), Some(Arc::from(vec![1]))],
            fields: vec![vec![chunk(&[1.0]), chunk(&[3.0]), chunk(&[1.5])]],
        };
        let Aligned { rows: keys, fields: values } = align(&[1, 4, 5, 9, 10, 11], &events).unwrap();
        let state: Vec<Option<Vec<(u32, f64)>>> = keys
            .iter()
            .zip(&values[0])
            .map(|(k, v)| {
                k.as_ref().map(|ids| {
                    let v = v.as_ref().unwrap().as_primitive::<Float64Type>();
                    ids.iter().enumerate().map(|(i, &id)| (id, v.value(i))).collect()
                })
            })
            .collect();
        assert_eq!(
            state,
            vec![
                None,
                Some(vec![(1, 1.0)]),
                Some(vec![(1, 1.0), (3, 3.0)]),
                Some(vec![(1, 1.0), (3, 3.0)]),
                Some(vec![(1, 1.5), (3, 3.0)]),
                Some(vec![(1, 1.5), (3, 3.0)]),
            ]
        );
        assert_eq!(values[0][1].as_ref().unwrap().len(), 1);
    }
}
