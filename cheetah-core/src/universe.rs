//! Universes: which symbols belonged to a set (an index, a sector) on each date, as membership
//! intervals. A symbol is a member on `day` when `start <= day < end`; an open interval (`end`
//! NULL in the source) is a member from `start` on.
//!
//! Each update reads a universe whole from the source and replaces the stored one in one write,
//! so corrections and removals in the source are seen; a universe whose intervals overlap or run
//! backwards is refused and the stored one kept.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::types::stored_day;

/// One interval of one symbol's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// The symbol, as the source spells it.
    pub symbol: String,
    /// Its first day as a member.
    #[serde(with = "stored_day")]
    pub start: NaiveDate,
    /// Its first day no longer a member; `None` while still a member.
    #[serde(with = "stored_day::optional")]
    pub end: Option<NaiveDate>,
}

impl Interval {
    /// Whether the interval holds `date`.
    pub fn holds(&self, date: NaiveDate) -> bool {
        self.start <= date && self.end.is_none_or(|end| date < end)
    }

    fn describe(&self) -> String {
        match self.end {
            Some(end) => format!("[{}, {end})", self.start),
            None => format!("[{}, still a member)", self.start),
        }
    }
}

/// A universe as stored: its intervals sorted by symbol then start, and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Universe {
    /// Sorted by symbol, then start; no two of one symbol overlap.
    pub intervals: Vec<Interval>,
    /// When an update last read it changed, in seconds since the Unix epoch.
    pub updated: i64,
}

impl Universe {
    /// Sorts `intervals` and checks them.
    ///
    /// # Errors
    /// A message naming the symbol and the dates of the first interval that ends on or before
    /// it starts, or of the first two of one symbol that overlap.
    pub fn new(mut intervals: Vec<Interval>, updated: i64) -> Result<Self, String> {
        if let Some(bad) = intervals.iter().find(|i| i.end.is_some_and(|end| end <= i.start)) {
            return Err(format!(
                "symbol `{}` has an interval that ends on or before it starts: start {}, end {}",
                bad.symbol,
                bad.start,
                bad.end.expect("found by its end")
            ));
        }
        intervals.sort_by(|a, b| (&a.symbol, a.start).cmp(&(&b.symbol, b.start)));
        for pair in intervals.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.symbol == b.symbol && a.end.is_none_or(|end| b.start < end) {
                return Err(format!(
                    "symbol `{}` has overlapping intervals {} and {}",
                    a.symbol,
                    a.describe(),
                    b.describe()
                ));
            }
        }
        Ok(Self { intervals, updated })
    }

    /// The symbols that were members on `date`, sorted.
    pub fn members(&self, date: NaiveDate) -> Vec<&str> {
        // Sorted by symbol, and a symbol holds a date in at most one interval.
        self.intervals.iter().filter(|i| i.holds(date)).map(|i| i.symbol.as_str()).collect()
    }

    /// How many distinct symbols were ever members.
    pub fn symbols(&self) -> usize {
        self.intervals.windows(2).filter(|w| w[0].symbol != w[1].symbol).count()
            + usize::from(!self.intervals.is_empty())
    }

    /// Its intervals, symbols, span and when it was read, for listings.
    pub fn summary(&self) -> UniverseSummary {
        let span = self.span();
        UniverseSummary {
            intervals: self.intervals.len(),
            symbols: self.symbols(),
            first: span.map(|(first, _)| first),
            last: span.and_then(|(_, last)| last),
            updated: self.updated,
        }
    }

    /// The first day any interval starts and the last day any member holds (`None` while an
    /// interval is open).
    pub fn span(&self) -> Option<(NaiveDate, Option<NaiveDate>)> {
        let first = self.intervals.iter().map(|i| i.start).min()?;
        let last = self
            .intervals
            .iter()
            .try_fold(NaiveDate::MIN, |last, i| i.end.map(|end| last.max(end.pred_opt().unwrap_or(end))));
        Some((first, last))
    }
}

/// What a listing of universes shows of one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UniverseSummary {
    /// Intervals stored.
    pub intervals: usize,
    /// Distinct symbols in them.
    pub symbols: usize,
    /// The first day any interval starts.
    pub first: Option<NaiveDate>,
    /// The last day any member holds; `None` while an interval is open.
    pub last: Option<NaiveDate>,
    /// When an update last read it changed, in seconds since the Unix epoch.
    pub updated: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::types::date_of;

    fn interval(symbol: &str, start: i32, end: Option<i32>) -> Interval {
        Interval { symbol: symbol.into(), start: date_of(start), end: end.map(date_of) }
    }

    #[test]
    fn members_are_those_whose_interval_holds_the_date() {
        let u = Universe::new(
            vec![
                interval("B", 10, Some(20)),
                interval("A", 5, None),
                interval("B", 20, Some(30)),
                interval("C", 0, Some(10)),
            ],
            0,
        )
        .unwrap();
        assert_eq!(u.members(date_of(9)), ["A", "C"]);
        assert_eq!(u.members(date_of(10)), ["A", "B"], "end is the first day no longer a member");
        assert_eq!(u.members(date_of(4)), ["C"]);
        assert_eq!(u.symbols(), 3);
        assert_eq!(u.span(), Some((date_of(0), None)));
        let closed = Universe::new(vec![interval("A", 3, Some(8)), interval("B", 1, Some(5))], 0).unwrap();
        assert_eq!(closed.span(), Some((date_of(1), Some(date_of(7)))));
    }

    #[test]
    fn a_universe_is_stored_as_it_always_was() {
        let u = Universe::new(vec![interval("A", 5, Some(10)), interval("B", -2, None)], 3).unwrap();
        let bytes = postcard::to_stdvec(&u).unwrap();
        // Two intervals: "A", start 5 (zigzag 10), Some(10) (1, 20); "B", -2 (3), None (0); updated 3 (6).
        assert_eq!(bytes, [2, 1, b'A', 10, 1, 20, 1, b'B', 3, 0, 6]);
        assert_eq!(postcard::from_bytes::<Universe>(&bytes).unwrap(), u);
    }

    #[test]
    fn reversed_and_overlapping_intervals_name_the_symbol_and_dates() {
        let err = Universe::new(vec![interval("X", 10, Some(10))], 0).unwrap_err();
        assert!(err.contains("`X`") && err.contains("1970-01-11"), "{err}");
        let err = Universe::new(vec![interval("Y", 20, Some(40)), interval("Y", 10, Some(25))], 0).unwrap_err();
        assert!(
            err.contains("`Y` has overlapping intervals [1970-01-11, 1970-01-26) and [1970-01-21, 1970-02-10)"),
            "{err}"
        );
        let err = Universe::new(vec![interval("Z", 1, None), interval("Z", 5, Some(6))], 0).unwrap_err();
        assert!(err.contains("still a member"), "{err}");
        assert!(Universe::new(vec![interval("W", 1, Some(5)), interval("W", 5, None)], 0).is_ok(), "adjacent is fine");
    }
}
