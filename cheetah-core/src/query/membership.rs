//! A universe as a reader filters rows by it: its intervals as symbol ranks of the reader's
//! ranking.

use crate::types::{day_of, Day};
use crate::universe::Universe;
use crate::view::SymbolRanking;

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
                Some((rank, day_of(i.start), i.end.map_or(Day::MAX, day_of)))
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
