//! Universes: which symbols belonged to a set (an index, a sector) on each date, as membership
//! intervals. A symbol is a member on `day` when `start <= day < end`; an open interval (`end`
//! NULL in the source) is a member from `start` on.
//!
//! Each update reads a universe whole from the source and replaces the stored one in one write,
//! so corrections and removals in the source are seen; a universe whose intervals overlap or run
//! backwards is refused and the stored one kept.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::types::{date_of, Day};
use crate::view::SymbolRanking;

/// One interval of one symbol's membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// The symbol, as the source spells it.
    pub symbol: String,
    /// Its first day as a member.
    pub start: Day,
    /// Its first day no longer a member; `None` while still a member.
    pub end: Option<Day>,
}

impl Interval {
    /// Whether the interval holds `day`.
    pub fn holds(&self, day: Day) -> bool {
        self.start <= day && self.end.is_none_or(|end| day < end)
    }

    fn describe(&self) -> String {
        match self.end {
            Some(end) => format!("[{}, {})", date_of(self.start), date_of(end)),
            None => format!("[{}, still a member)", date_of(self.start)),
        }
    }
}

/// A universe as stored: its intervals sorted by symbol then start, and when it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Universe {
    /// Sorted by symbol, then start; no two of one symbol overlap.
    pub intervals: Vec<Interval>,
    /// When the update read it, in seconds since the Unix epoch.
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
                date_of(bad.start),
                date_of(bad.end.expect("found by its end"))
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
        let day = crate::types::day_of(date);
        // Sorted by symbol, and a symbol holds a day in at most one interval.
        self.intervals.iter().filter(|i| i.holds(day)).map(|i| i.symbol.as_str()).collect()
    }

    /// How many distinct symbols were ever members.
    pub fn symbols(&self) -> usize {
        self.intervals.windows(2).filter(|w| w[0].symbol != w[1].symbol).count()
            + usize::from(!self.intervals.is_empty())
    }

    /// The first day any interval starts and the last day any member holds (`None` for an
    /// interval still open).
    pub fn span(&self) -> Option<(Day, Option<Day>)> {
        let first = self.intervals.iter().map(|i| i.start).min()?;
        let last = self.intervals.iter().try_fold(Day::MIN, |last, i| i.end.map(|end| last.max(end - 1)));
        Some((first, last))
    }
}

/// A universe's intervals as symbol ranks of one reader's ranking, for filtering rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// `(rank, start, end)`, with `Day::MAX` for an open end; symbols unknown to the reader have
    /// no rows and are left out.
    spans: Vec<(u32, Day, Day)>,
}

impl Membership {
    /// `universe` ranked by `ranking`, whose symbols `id` finds.
    pub(crate) fn new(universe: &Universe, ranking: &SymbolRanking, id: impl Fn(&str) -> Option<u32>) -> Self {
        let spans = universe
            .intervals
            .iter()
            .filter_map(|i| {
                let rank = *ranking.rank.get(id(&i.symbol)? as usize)?;
                Some((rank, i.start, i.end.unwrap_or(Day::MAX)))
            })
            .collect();
        Self { spans }
    }

    /// Calls `member` with the rank of each symbol that was a member on `day`.
    pub(crate) fn for_each_member(&self, day: Day, mut member: impl FnMut(u32)) {
        for &(rank, start, end) in &self.spans {
            if start <= day && day < end {
                member(rank);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(symbol: &str, start: Day, end: Option<Day>) -> Interval {
        Interval { symbol: symbol.into(), start, end }
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
        assert_eq!(u.span(), Some((0, None)));
        let closed = Universe::new(vec![interval("A", 3, Some(8)), interval("B", 1, Some(5))], 0).unwrap();
        assert_eq!(closed.span(), Some((1, Some(7))));
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
