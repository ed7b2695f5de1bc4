//! The late check of asof tables: on each trading date, the symbols trading (with a row in a
//! daily table) whose latest event, among those they have ever had, is older than
//! `max_age_days`. A symbol with no event yet is not late: a feed may not cover it.

use std::collections::BTreeMap;

use super::scan::DayIds;
use super::{Check, Metric};
use crate::config::QualityConfig;
use crate::store::symbols::SymbolDictionary;
use crate::types::{date_of, Day};

/// The symbols with a row on each date in any daily table, sorted.
#[derive(Default)]
pub(super) struct Alive(BTreeMap<Day, Vec<u32>>);

impl Alive {
    /// Adds one daily table's symbols.
    pub(super) fn add(&mut self, ids: &DayIds) {
        for (day, ids) in ids {
            let symbols = self.0.entry(*day).or_default();
            *symbols = merge(symbols, ids);
        }
    }
}

/// The sorted union of two sorted lists.
fn merge(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let next = a[i].min(b[j]);
        i += usize::from(a[i] == next);
        j += usize::from(b[j] == next);
        out.push(next);
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// Shown in a flag; the rest are counted.
const SHOWN: usize = 5;

/// The late metric of the asof table `table` on every calendar date in `range`.
pub(super) fn late(
    table: usize,
    events: &DayIds,
    alive: &Alive,
    calendar: &[Day],
    (from, to): (Day, Day),
    settings: &QualityConfig,
    symbols: &SymbolDictionary,
) -> Vec<Metric> {
    let max_age = i32::try_from(settings.max_age_days).unwrap_or(i32::MAX);
    let mut latest: Vec<Option<Day>> = Vec::new();
    let mut next_event = events.iter().peekable();
    let mut metrics = Vec::new();
    for &day in calendar.iter().filter(|d| (from..=to).contains(*d)) {
        while let Some((event_day, ids)) = next_event.next_if(|(d, _)| *d <= day) {
            for &id in ids.iter() {
                let id = id as usize;
                if id >= latest.len() {
                    latest.resize(id + 1, None);
                }
                latest[id] = Some(*event_day);
            }
        }
        if latest.is_empty() {
            continue;
        }
        let trading = alive.0.get(&day).map_or(&[][..], Vec::as_slice);
        let with_events: Vec<(u32, Day)> =
            trading.iter().filter_map(|&id| Some((id, (*latest.get(id as usize)?)?))).collect();
        let mut overdue: Vec<(u32, Day)> =
            with_events.iter().copied().filter(|(_, last)| day - last > max_age).collect();
        let flag = (!overdue.is_empty()).then(|| {
            overdue.sort_by_key(|(_, last)| *last);
            let shown: Vec<String> = overdue
                .iter()
                .take(SHOWN)
                .map(|(id, last)| {
                    format!("{} (latest {}, {} days)", symbols.name(*id).unwrap_or("?"), date_of(*last), day - last)
                })
                .collect();
            let more =
                if overdue.len() > SHOWN { format!(" and {} more", overdue.len() - SHOWN) } else { String::new() };
            format!(
                "{} of {} trading symbols have no event in {} days: {}{more}",
                overdue.len(),
                with_events.len(),
                settings.max_age_days,
                shown.join(", ")
            )
        });
        metrics.push(Metric {
            table,
            field: None,
            date: date_of(day),
            check: Check::Late,
            value: overdue.len() as f64,
            typical: Some(with_events.len() as f64),
            flag,
        });
    }
    metrics
}
