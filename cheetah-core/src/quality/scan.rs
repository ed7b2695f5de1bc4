//! One table's checks from its chunks: coverage from the day index, and each field's missing,
//! stale and outlier metrics from its value chunks, read in blocks of dates straight from the
//! store (never through the hot layer, which the report would only flush).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use rayon::prelude::*;

use super::stats::{numbers, value_keys, Spread, Trailing, MIN_VALUES};
use super::{Check, Metric};
use crate::config::QualityConfig;
use crate::error::StoreError;
use crate::store::catalog::{FieldEntry, TableEntry};
use crate::store::codec;
use crate::store::symbols::SymbolDictionary;
use crate::store::{ChunkKind, Store};
use crate::types::{date_of, Day, TableKind};

/// Dates of value chunks read and decoded at once, per field.
const BLOCK: usize = 128;
/// A table whose own dates are at least this share of the calendar's over its span is a daily
/// feed: a calendar date it lacks counts as a date with no rows.
const DENSE: f64 = 0.9;

/// Each cached date of a table with its symbol ids, ascending.
pub(super) type DayIds = Vec<(Day, Arc<[u32]>)>;

/// One table, its cached dates and the report's settings.
pub(super) struct TableScan<'a> {
    pub store: &'a Store,
    pub entry: &'a TableEntry,
    /// Its cached dates up to the watermark, with their row counts.
    pub days: &'a [(Day, u32)],
    /// Every daily table's dates.
    pub calendar: &'a [Day],
    pub range: (Day, Day),
    pub settings: &'a QualityConfig,
}

impl TableScan<'_> {
    /// The first of the table's dates a check reads: the range's first date less a window of
    /// history for the typical date, or every date for an asof table, whose latest events may
    /// be older than any window.
    fn first_read(&self) -> usize {
        let first_in_range = self.days.partition_point(|(d, _)| *d < self.range.0);
        match self.entry.kind {
            TableKind::Daily => first_in_range.saturating_sub(self.settings.window),
            TableKind::Asof => 0,
        }
    }

    /// The table's dates that a check reads, up to the range's end.
    fn read_days(&self) -> &[(Day, u32)] {
        let last = self.days.partition_point(|(d, _)| *d <= self.range.1);
        &self.days[self.first_read().min(last)..last]
    }

    /// The symbol ids of each date [`TableScan::read_days`] holds.
    ///
    /// # Errors
    /// A store failure, or a row chunk that does not decode.
    pub(super) fn ids(&self) -> Result<DayIds, StoreError> {
        let days = self.read_days();
        let keys: Vec<(u32, Day)> = days.iter().map(|(d, _)| (self.entry.id, *d)).collect();
        let ids = self.store.read_chunks(ChunkKind::Rows, &keys, |i, bytes| {
            codec::decode_rows(bytes).map_err(|e| self.store.corrupt_chunk(&self.entry.name, None, days[i].0, e))
        })?;
        Ok(days.iter().zip(ids).map(|((d, _), ids)| (*d, ids.unwrap_or_else(|| Arc::from([])))).collect())
    }

    /// Rows per date against the previous date and the typical one. A dense table is checked
    /// on every calendar date of its span, a date it lacks having no rows.
    pub(super) fn coverage(&self, table: usize) -> Vec<Metric> {
        let days = self.read_days();
        let (Some(first), Some(last)) = (days.first(), self.days.last()) else { return Vec::new() };
        let span: Vec<Day> =
            self.calendar.iter().copied().filter(|d| (first.0..=last.0.min(self.range.1)).contains(d)).collect();
        let dense = days.len() as f64 >= DENSE * span.len() as f64;
        let rows: Vec<(Day, f64)> = if dense {
            let mut own = days.iter().peekable();
            span.iter()
                .map(|&d| (d, own.next_if(|(day, _)| *day == d).map_or(0.0, |(_, rows)| f64::from(*rows))))
                .collect()
        } else {
            days.iter().map(|(d, rows)| (*d, f64::from(*rows))).collect()
        };
        let drop = self.settings.coverage_drop;
        let mut trailing = Trailing::new(self.settings.window);
        let mut previous: Option<f64> = None;
        let mut metrics = Vec::new();
        for (day, rows) in rows {
            let typical = trailing.typical();
            if day >= self.range.0 {
                let short = |reference: f64| rows < (1.0 - drop) * reference;
                let mut why = Vec::new();
                if let Some(p) = previous.filter(|p| short(*p)) {
                    why.push(format!("{:.0}% fewer than the previous date's {p:.0}", 100.0 * (1.0 - rows / p)));
                }
                if let Some(t) = typical.filter(|t| short(*t)) {
                    why.push(format!("{:.0}% fewer than the typical {t:.0}", 100.0 * (1.0 - rows / t)));
                }
                let flag = (!why.is_empty()).then(|| format!("{rows:.0} rows: {}", why.join(", ")));
                metrics.push(Metric {
                    table,
                    field: None,
                    date: date_of(day),
                    check: Check::Coverage,
                    value: rows,
                    typical,
                    flag,
                });
            }
            trailing.push(rows);
            previous = Some(rows);
        }
        metrics
    }

    /// Every field's metrics, the fields in parallel.
    ///
    /// # Errors
    /// A store failure, or a chunk that does not decode or does not match its date's rows.
    pub(super) fn fields(
        &self,
        table: usize,
        ids: &DayIds,
        symbols: &SymbolDictionary,
    ) -> Result<Vec<Metric>, StoreError> {
        let per_field = self
            .entry
            .fields
            .par_iter()
            .enumerate()
            .map(|(f, field)| self.field(table, f, field, ids, symbols))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(per_field.into_iter().flatten().collect())
    }

    fn field(
        &self,
        table: usize,
        index: usize,
        field: &FieldEntry,
        ids: &DayIds,
        symbols: &SymbolDictionary,
    ) -> Result<Vec<Metric>, StoreError> {
        let mut state = FieldState::new(table, index, self.settings, self.entry.kind == TableKind::Daily);
        for block in ids.chunks(BLOCK) {
            let keys: Vec<(u32, Day)> = block.iter().map(|(d, _)| (field.id, *d)).collect();
            let arrays = self.store.read_chunks(ChunkKind::Values, &keys, |i, bytes| {
                let (day, rows) = &block[i];
                let corrupt = |e: String| self.store.corrupt_chunk(&self.entry.name, Some(&field.name), *day, e);
                let array = codec::decode_values(bytes, field.dtype).map_err(corrupt)?;
                if array.len() != rows.len() {
                    return Err(corrupt(format!("it holds {} values for {} rows", array.len(), rows.len())));
                }
                Ok(array)
            })?;
            for ((day, rows), array) in block.iter().zip(arrays) {
                // A field still being backfilled has no chunk on its later dates yet.
                if let Some(array) = array {
                    state.day(*day, rows, &array, self.range.0, symbols);
                }
            }
        }
        Ok(state.metrics)
    }
}

/// What one field's scan carries from a date to the next.
struct FieldState<'a> {
    table: usize,
    field: usize,
    settings: &'a QualityConfig,
    /// Whether its table is daily: an asof table's dates are events, whose shares are
    /// measured but never flagged.
    flags: bool,
    previous: Option<Previous>,
    /// Per symbol id: the last of the field's dates (counted by `dates`) on which it was beyond
    /// half the outlier threshold, [`SEEN`] if never, [`UNSEEN`] before its first value. An
    /// outlier is new when its symbol had values before and was within half the threshold on
    /// each of the previous `window` dates: one that hovers at the threshold, or lives in a fat
    /// tail, is not news on every date.
    far: Vec<i64>,
    /// Per symbol id: its last finite value (NaN before one), for the moves of a positive
    /// field.
    last: Vec<f64>,
    /// The field's dates with numbers so far.
    dates: i64,
    missing: Trailing,
    stale: Trailing,
    metrics: Vec<Metric>,
}

/// The previous date's rows and value keys, sorted by id.
struct Previous {
    ids: Arc<[u32]>,
    keys: Vec<Option<u64>>,
}

impl<'a> FieldState<'a> {
    fn new(table: usize, field: usize, settings: &'a QualityConfig, flags: bool) -> Self {
        Self {
            table,
            field,
            settings,
            flags,
            previous: None,
            far: Vec::new(),
            last: Vec::new(),
            dates: 0,
            missing: Trailing::new(settings.window),
            stale: Trailing::new(settings.window),
            metrics: Vec::new(),
        }
    }

    fn day(&mut self, day: Day, ids: &Arc<[u32]>, array: &ArrayRef, first: Day, symbols: &SymbolDictionary) {
        let report = day >= first;
        if array.is_empty() {
            return;
        }
        let missing = array.null_count() as f64 / array.len() as f64;
        let typical = self.missing.typical();
        let flag = (self.flags && array.len() >= MIN_VALUES)
            .then_some(typical)
            .flatten()
            .filter(|t| missing - t >= self.settings.missing_jump)
            .map(|t| format!("{:.1}% missing, typically {:.1}%", 100.0 * missing, 100.0 * t));
        self.push(report, day, Check::Missing, missing, typical, flag);
        self.missing.push(missing);

        let keys = value_keys(array);
        if let Some(previous) = &self.previous {
            let (same, compared) = unchanged(previous, ids, &keys);
            if compared >= MIN_VALUES && self.flags {
                let stale = same as f64 / compared as f64;
                let typical = self.stale.typical();
                let flag = typical.filter(|t| stale - t >= self.settings.stale_jump).map(|t| {
                    format!(
                        "{same} of {compared} symbols unchanged from the previous date ({:.0}%, typically {:.0}%)",
                        100.0 * stale,
                        100.0 * t
                    )
                });
                self.push(report, day, Check::Stale, stale, typical, flag);
                self.stale.push(stale);
            }
        }

        if let Some(values) = numbers(array).filter(|_| self.flags) {
            let k = self.settings.outlier_k;
            let found = self.outliers(&values, ids, k);
            let new: Vec<&Outlier> = found.iter().filter(|o| o.new).collect();
            let flag = (!new.is_empty()).then(|| describe(&new, symbols));
            self.push(report, day, Check::Outliers, new.len() as f64, Some(found.len() as f64), flag);
        }
        self.previous = Some(Previous { ids: ids.clone(), keys });
    }

    /// The values beyond `k` robust deviations from the date's median, each marked new or
    /// not; records which symbols were far out for the dates to come.
    ///
    /// A positive field (prices, ratios, market values: see [`Scale::of`]) is judged on the log
    /// scale, where its healthy skew is gone and a value of zero or below is as far out as can
    /// be. Its cross-section may still span orders of magnitude, so a value is also an outlier
    /// when it moved tenfold or more from the symbol's previous value and that move is beyond
    /// twice `k` robust deviations of the date's moves: a price that jumps ×100 overnight, where
    /// a field whose every day is a fresh draw (a volume) moves that much now and then.
    fn outliers(&mut self, values: &arrow::array::Float64Array, ids: &[u32], k: f64) -> Vec<Outlier> {
        let finite: Vec<f64> = values.iter().flatten().filter(|v| v.is_finite()).collect();
        if finite.len() < MIN_VALUES {
            return Vec::new();
        }
        let Some((scale, spread)) = Scale::of(&finite, k) else { return Vec::new() };
        // A negative value in a positive field is a sign flipped, on either scale.
        let signed = positive(&finite);
        let moves = (scale == Scale::Log).then(|| self.moves(values, ids)).flatten();
        self.dates += 1;
        let window = self.settings.window as i64;
        let mut found = Vec::new();
        for (value, &id) in values.iter().zip(ids) {
            let Some(value) = value.filter(|v| v.is_finite()) else { continue };
            let slot = id as usize;
            if slot >= self.far.len() {
                self.far.resize(slot + 1, UNSEEN);
                self.last.resize(slot + 1, f64::NAN);
            }
            let across = if signed && value < 0.0 { f64::INFINITY } else { spread.deviations(scale.apply(value)) };
            let moved = moves.and_then(|moves| {
                let step = (value / self.last[slot]).ln();
                (step.abs() >= TENFOLD).then(|| moves.deviations(step))
            });
            let deviations = moved.map_or(across, |m| (m / MOVE_BAR).max(across));
            let last_far = self.far[slot];
            if deviations > k {
                let new = last_far == SEEN || (last_far != UNSEEN && self.dates - last_far > window);
                let previous = moved.filter(|&m| m / MOVE_BAR > across).map(|m| (self.last[slot], m));
                found.push(Outlier {
                    id,
                    value,
                    median: scale.invert(spread.centre),
                    deviations,
                    scale,
                    previous,
                    new,
                });
            }
            if deviations > k / 2.0 {
                self.far[slot] = self.dates;
            } else if last_far == UNSEEN {
                self.far[slot] = SEEN;
            }
            self.last[slot] = value;
        }
        found
    }

    /// The centre and robust spread of the date's moves on the log scale: each symbol's
    /// logarithm of its value over its previous one, where both are positive.
    fn moves(&self, values: &arrow::array::Float64Array, ids: &[u32]) -> Option<Spread> {
        let mut steps: Vec<f64> = values
            .iter()
            .zip(ids)
            .filter_map(|(value, &id)| Some((value?, *self.last.get(id as usize)?)))
            .filter(|&(value, last)| value > 0.0 && last > 0.0)
            .map(|(value, last)| (value / last).ln())
            .filter(|step| step.is_finite())
            .collect();
        if steps.len() < MIN_VALUES {
            return None;
        }
        Spread::of(&mut steps)
    }

    fn push(&mut self, report: bool, day: Day, check: Check, value: f64, typical: Option<f64>, flag: Option<String>) {
        if report {
            let (table, field) = (self.table, Some(self.field));
            self.metrics.push(Metric { table, field, date: date_of(day), check, value, typical, flag });
        }
    }
}

/// Of the symbols with a value on both dates, how many have the same one, and how many there
/// are. Both dates' ids are sorted, so one merge pairs them.
fn unchanged(previous: &Previous, ids: &[u32], keys: &[Option<u64>]) -> (usize, usize) {
    let (mut i, mut j, mut same, mut compared) = (0, 0, 0, 0);
    while i < previous.ids.len() && j < ids.len() {
        match previous.ids[i].cmp(&ids[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if let (Some(a), Some(b)) = (previous.keys[i], keys[j]) {
                    compared += 1;
                    same += usize::from(a == b);
                }
                i += 1;
                j += 1;
            }
        }
    }
    (same, compared)
}

/// How a date's values are measured for outliers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// As they are.
    Linear,
    /// As logarithms: the date's values are positive (its median, and all but 1 in 100).
    Log,
}

impl Scale {
    /// The scale for a date's finite values, with their spread on it (`None` where they have
    /// none): the one on which fewer of them lie beyond the threshold `k`, the log scale only
    /// for a positive field (its median, and all but 1 in 100), and the linear one when they
    /// tie. Prices, ratios and market values are skewed, so a healthy cross-section has values
    /// many robust deviations out on the linear scale, and symbols drift in and out of that
    /// tail every day; a field spread evenly (a volume drawn from a range) is the other way
    /// round, its smallest values far out among logarithms.
    fn of(values: &[f64], k: f64) -> Option<(Self, Spread)> {
        let linear = Spread::of(&mut values.to_vec());
        if !positive(values) {
            return linear.map(|spread| (Self::Linear, spread));
        }
        // On the log scale a value of zero or below is infinitely far, and so not measured.
        let mut logs: Vec<f64> = values.iter().filter(|&&v| v > 0.0).map(|v| v.ln()).collect();
        let log = Spread::of(&mut logs);
        let far = |spread: Option<Spread>, measured: &[f64]| {
            spread.map_or(usize::MAX, |spread| measured.iter().filter(|&&v| spread.deviations(v) > k).count())
        };
        match (log, linear) {
            (Some(log), _) if far(Some(log), &logs) < far(linear, values) => Some((Self::Log, log)),
            (_, linear) => linear.map(|spread| (Self::Linear, spread)),
        }
    }

    /// A value on this scale; a non-positive value on the log scale is `-inf`, infinitely far.
    fn apply(self, value: f64) -> f64 {
        match self {
            Self::Linear => value,
            Self::Log if value > 0.0 => value.ln(),
            Self::Log => f64::NEG_INFINITY,
        }
    }

    /// A centre on this scale as a value.
    fn invert(self, measured: f64) -> f64 {
        match self {
            Self::Linear => measured,
            Self::Log => measured.exp(),
        }
    }
}

/// Whether a date's values are those of a positive field: its median, and all but 1 in 100.
fn positive(values: &[f64]) -> bool {
    let not_positive = values.iter().filter(|&&v| v <= 0.0).count();
    not_positive * 100 <= values.len() && 2 * not_positive < values.len()
}

/// A value beyond `k` robust deviations from its date's median.
struct Outlier {
    id: u32,
    value: f64,
    median: f64,
    deviations: f64,
    scale: Scale,
    /// The symbol's previous value and the robust deviations of its move from it, when the move
    /// is what made it an outlier.
    previous: Option<(f64, f64)>,
    /// Whether its symbol was within half the threshold on each of the previous `window` dates.
    new: bool,
}

/// The smallest move of a positive field, as a logarithm, that may be an outlier: tenfold.
const TENFOLD: f64 = std::f64::consts::LN_10;
/// How many times `outlier_k` robust deviations of the date's moves a move must be beyond.
const MOVE_BAR: f64 = 2.0;

/// A symbol with no value yet, in [`FieldState::far`].
const UNSEEN: i64 = i64::MIN;
/// A symbol never beyond half the threshold, in [`FieldState::far`].
const SEEN: i64 = -1;

/// The first few new outliers, by how far out they are.
fn describe(new: &[&Outlier], symbols: &SymbolDictionary) -> String {
    let mut worst: Vec<&&Outlier> = new.iter().collect();
    worst.sort_by(|a, b| b.deviations.total_cmp(&a.deviations));
    let shown: Vec<String> = worst
        .iter()
        .take(3)
        .map(|o| {
            let name = symbols.name(o.id).unwrap_or("?");
            let (value, median) = (short(o.value), short(o.median));
            match (o.scale, o.deviations.is_finite(), o.previous) {
                (_, false, _) => format!("{name} = {value}, in a field whose values are positive (median {median})"),
                (Scale::Linear, ..) => {
                    format!("{name} = {value} ({:.0} robust deviations from the median {median})", o.deviations)
                }
                (Scale::Log, true, Some((previous, moved))) => format!(
                    "{name} = {value}, {}× its previous {} ({moved:.0} robust deviations of the date's moves)",
                    short(o.value / previous),
                    short(previous),
                ),
                (Scale::Log, true, None) => format!(
                    "{name} = {value} ({:.0} robust deviations of the logarithm from the median {median})",
                    o.deviations
                ),
            }
        })
        .collect();
    let more = if new.len() > 3 { format!(" and {} more", new.len() - 3) } else { String::new() };
    format!("{} new outlier{}: {}{more}", new.len(), if new.len() == 1 { "" } else { "s" }, shown.join(", "))
}

/// A number in at most 6 significant digits.
pub(super) fn short(value: f64) -> String {
    let text = format!("{value:.6}");
    if value.abs() >= 1e6 || (value != 0.0 && value.abs() < 1e-3) {
        format!("{value:.4e}")
    } else {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Float64Array;

    use super::*;

    /// A lognormal cross-section of `n` symbols, deterministic: value `i` is exp(0.7 z_i) for
    /// evenly spaced normal quantiles z_i, shuffled by a stride.
    fn lognormal(n: usize, sigma: f64) -> Vec<f64> {
        let quantile = |p: f64| {
            // Acklam-free: the logit approximation is enough for a fat enough tail.
            (p / (1.0 - p)).ln() * 0.5513
        };
        (0..n).map(|i| (sigma * quantile((((i * 7919) % n) as f64 + 0.5) / n as f64)).exp()).collect()
    }

    fn new_outliers(state: &mut FieldState<'_>, values: &[f64]) -> Vec<u32> {
        let ids: Vec<u32> = (0..values.len() as u32).collect();
        let found = state.outliers(&Float64Array::from(values.to_vec()), &ids, state.settings.outlier_k);
        found.iter().filter(|o| o.new).map(|o| o.id).collect()
    }

    #[test]
    fn a_skewed_positive_field_is_quiet_and_a_planted_value_is_not() {
        let settings = QualityConfig::default();
        let mut state = FieldState::new(0, 0, &settings, true);
        let healthy = lognormal(2000, 0.9);
        let mut linear = healthy.clone();
        let spread = Spread::of(&mut linear).unwrap();
        let far = healthy.iter().filter(|&&v| spread.deviations(v) > settings.outlier_k).count();
        assert!(far > 0, "on the linear scale this healthy field has {far} values beyond k");
        for _ in 0..3 {
            assert_eq!(new_outliers(&mut state, &healthy), Vec::<u32>::new(), "on the log scale it has none");
        }
        // The next date moves every symbol a little; one is ×100 and one flips its sign.
        let mut planted: Vec<f64> =
            healthy.iter().enumerate().map(|(i, v)| v * (1.0 + 0.02 * ((i % 7) as f64 - 3.0) / 3.0)).collect();
        let median_symbol =
            (0..planted.len()).min_by(|&a, &b| (planted[a] - 1.0).abs().total_cmp(&(planted[b] - 1.0).abs())).unwrap();
        planted[median_symbol] *= 100.0;
        planted[11] = -planted[11];
        let mut found = new_outliers(&mut state, &planted);
        found.sort_unstable();
        let mut want = vec![11, median_symbol as u32];
        want.sort_unstable();
        assert_eq!(found, want, "a value ×100 and a sign flip");
        // The ×100 is within the cross-section's reach: its move is what gives it away.
        let mut logs: Vec<f64> = planted.iter().map(|v| v.abs().ln()).collect();
        let spread = Spread::of(&mut logs).unwrap();
        assert!(spread.deviations(planted[median_symbol].ln()) < settings.outlier_k, "{spread:?}");
    }

    #[test]
    fn the_scale_is_the_one_with_fewer_values_far_out() {
        let values: Vec<f64> = (0..100).map(|i| f64::from(i) - 30.0).collect();
        let scale = |values: &[f64]| Scale::of(values, 8.0).map(|(scale, _)| scale);
        assert_eq!(scale(&values), Some(Scale::Linear), "negative values");
        let skewed = lognormal(500, 0.8);
        assert_eq!(scale(&skewed), Some(Scale::Log), "skewed and positive");
        let even: Vec<f64> = (0..500).map(|i| 1e3 + f64::from(i) * 1e5).collect();
        assert_eq!(scale(&even), Some(Scale::Linear), "positive, spread evenly: its logarithms are skewed");
        // The spread comes measured on the scale chosen.
        let mut logs: Vec<f64> = skewed.iter().map(|v| v.ln()).collect();
        assert_eq!(Scale::of(&skewed, 8.0).map(|(_, spread)| spread), Spread::of(&mut logs));
        assert_eq!(Scale::of(&even, 8.0).map(|(_, spread)| spread), Spread::of(&mut even.clone()));
        assert_eq!(scale(&[5.0; 30]), None, "no spread on either scale");
        assert_eq!(Scale::Log.apply(-1.0), f64::NEG_INFINITY);
    }
}
