//! Store versions as a [`Cache`] offers them: which version a read names, snapshots, what
//! retention keeps, and the history status shows.

use std::collections::BTreeSet;

use chrono::{NaiveDate, Utc};

use super::Cache;
use crate::config::Span;
use crate::diff::{Diff, Side};
use crate::error::{Error, QueryError, VersionError};
use crate::query::{resolve_fields, AsOf, HotStore, PastStore};
use crate::status::VersionStatus;
use crate::store::snapshots::{self, Snapshot};
use crate::store::{Store, Version};
use crate::types::{day_of, Day};
use crate::view::View;

impl Cache {
    /// The version `as_of` names in `store` (the view's own when `None`), and the snapshot it
    /// named, checked readable.
    ///
    /// # Errors
    /// [`VersionError`] for a snapshot, version or moment that does not exist or that
    /// retention dropped.
    pub(super) fn resolve(
        &self,
        store: &Store,
        view: &View,
        as_of: Option<&AsOf>,
    ) -> Result<(Version, Option<String>), QueryError> {
        let missing = |n: u64| store.corrupt("version records", format!("version {n} is missing"));
        let (version, snapshot, asked) = match as_of {
            None => return Ok((view.version, None)),
            Some(AsOf::Version(n)) => {
                let latest = store.latest_version()?;
                if *n == 0 || *n > latest {
                    return Err(VersionError::BeyondLatest { asked: *n, latest }.into());
                }
                (store.version(*n)?.ok_or_else(|| missing(*n))?, None, format!("version {n}"))
            }
            Some(AsOf::Moment(moment)) => match store.version_at(*moment)? {
                Some(version) => (version, None, format!("known_at {moment}")),
                None => {
                    let first = store.version(1)?.ok_or_else(|| missing(1))?;
                    return Err(VersionError::BeforeFirst { moment: *moment, first: first.committed }.into());
                }
            },
            Some(AsOf::Snapshot(name)) => {
                let path = &self.config.store.path;
                let snapshot = snapshots::get(path, name)?.ok_or_else(|| snapshots::unknown(path, name))?;
                let version = store.version(snapshot.version)?.ok_or_else(|| missing(snapshot.version))?;
                return Ok((version, Some(snapshot.name)));
            }
        };
        let floor = store.history_floor()?;
        if version.number < floor && !self.pinned()?.contains(&version.number) {
            let oldest = store.version(floor)?.ok_or_else(|| missing(floor))?;
            return Err(VersionError::PastRetention {
                asked,
                oldest: oldest.committed,
                oldest_version: floor,
                keep: self.config.store.keep_versions.as_ref().map_or_else(String::new, |k| k.text.clone()),
            }
            .into());
        }
        Ok((version, snapshot))
    }

    /// The versions snapshots pin.
    fn pinned(&self) -> Result<BTreeSet<u64>, VersionError> {
        Ok(snapshots::list(&self.config.store.path)?.into_iter().map(|s| s.version).collect())
    }

    /// Names the current version `name`, with `note`: the snapshot survives retention and every
    /// later correction. Readers may make snapshots while another process holds the writer role.
    ///
    /// # Errors
    /// [`VersionError`] for a name that is taken or not a plain name, or a snapshots folder that
    /// cannot be written; [`crate::StoreError`].
    pub fn snapshot(&self, name: &str, note: Option<&str>) -> Result<Snapshot, Error> {
        self.refresh()?;
        let version = self.follower()?.store().latest_version()?;
        let snapshot =
            Snapshot { name: name.to_string(), version, created: Utc::now(), note: note.map(str::to_string) };
        snapshots::create(&self.config.store.path, &snapshot)?;
        Ok(snapshot)
    }

    /// Every snapshot, by name.
    ///
    /// # Errors
    /// [`VersionError::SnapshotIo`].
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, Error> {
        Ok(snapshots::list(&self.config.store.path)?)
    }

    /// Deletes the snapshot `name`; the history only it kept goes with the next retention.
    ///
    /// # Errors
    /// [`VersionError::UnknownSnapshot`] naming the snapshots there are.
    pub fn delete_snapshot(&self, name: &str) -> Result<Snapshot, Error> {
        Ok(snapshots::delete(&self.config.store.path, name)?)
    }

    /// Every cell of `cols` (every cached field when `None`) over `start..=end` (each open when
    /// `None`) that differs between the version `from` names and the one `to` names (the
    /// latest when `None`).
    ///
    /// # Errors
    /// [`VersionError`] for a version that cannot be read; unknown or ambiguous names as for
    /// [`Cache::get`]; [`crate::StoreError`].
    pub fn diff(
        &self,
        from: &AsOf,
        to: Option<&AsOf>,
        (start, end): (Option<NaiveDate>, Option<NaiveDate>),
        cols: Option<&[String]>,
    ) -> Result<Diff, Error> {
        if let (Some(start), Some(end)) = (start, end) {
            crate::query::check_range(start, end)?;
        }
        let days = (start.map_or(Day::MIN, day_of), end.map_or(Day::MAX, day_of));
        self.refresh()?;
        loop {
            let attempt = |store: &Store, view: &View| {
                let (old, _) = self.resolve(store, view, Some(from))?;
                let (new, _) = self.resolve(store, view, to)?;
                if old.number.max(new.number) > view.version.number {
                    return Ok(None);
                }
                let (past_old, past_new) = (view.at(store, old)?, view.at(store, new)?);
                let wanted = match cols {
                    Some(cols) => Some(
                        resolve_fields(&past_new.view.catalog, &self.rules.aliases, cols)?
                            .iter()
                            .map(|f| f.field.id)
                            .collect::<Vec<u32>>(),
                    ),
                    None => None,
                };
                let chunks =
                    |version: Version| PastStore { now: HotStore { hot: &self.hot, store }, version: version.number };
                let (chunks_old, chunks_new) = (chunks(old), chunks(new));
                let sides = (
                    Side { view: &past_old.view, chunks: &chunks_old },
                    Side { view: &past_new.view, chunks: &chunks_new },
                );
                Ok(Some(crate::diff::diff(store, &sides.0, &sides.1, days, wanted.as_deref(), view)?))
            };
            match self.follower()?.read(&self.hot, attempt)? {
                Some(diff) => return Ok(diff),
                None => self.refresh()?,
            }
        }
    }

    /// The version a user names with `text`: a version number, a snapshot's name, or a moment.
    ///
    /// # Errors
    /// [`VersionError::BadMoment`] naming the snapshots there are, for text that is none of
    /// them.
    pub fn as_of(&self, text: &str) -> Result<AsOf, Error> {
        let text = text.trim();
        if let Ok(number) = text.parse::<u64>() {
            return Ok(AsOf::Version(number));
        }
        if snapshots::get(&self.config.store.path, text)?.is_some() {
            return Ok(AsOf::Snapshot(text.to_string()));
        }
        AsOf::moment(text).map_err(|_| {
            let known = snapshots::list(&self.config.store.path)
                .map(|all| all.into_iter().map(|s| s.name).collect::<Vec<_>>())
                .unwrap_or_default();
            VersionError::NotAVersion { text: text.to_string(), known }.into()
        })
    }

    /// What the store keeps of its versions.
    ///
    /// # Errors
    /// [`crate::StoreError`], [`VersionError::SnapshotIo`].
    pub fn versions(&self) -> Result<VersionStatus, Error> {
        self.refresh()?;
        let store = self.follower()?.store();
        let latest = store.latest()?;
        let oldest_number = store.history_floor()?.min(latest.number);
        let oldest = store.version(oldest_number)?.unwrap_or(latest);
        Ok(VersionStatus {
            latest: latest.number,
            latest_committed: latest.committed,
            oldest: oldest.number,
            oldest_committed: oldest.committed,
            kept: store.versions_from(oldest.number)?,
            history_bytes: store.history_bytes()?,
            keep_versions: self.config.store.keep_versions.as_ref().map(|k| k.text.clone()),
            snapshots: snapshots::list(&self.config.store.path)?,
        })
    }

    /// Drops the history older than `[store] keep_versions` that no snapshot pins; the writer
    /// runs it after each update. Returns the bytes dropped.
    ///
    /// # Errors
    /// [`crate::StoreError::ReadOnly`] for a reader, [`crate::StoreError`],
    /// [`VersionError::SnapshotIo`].
    pub fn retain(&self) -> Result<u64, Error> {
        let Some(keep) = &self.config.store.keep_versions else { return Ok(0) };
        let store = self.follower()?.store();
        if !store.is_writer() {
            return Err(crate::error::StoreError::ReadOnly { path: store.path().to_path_buf() }.into());
        }
        Ok(retain(&store, keep, &self.pinned()?)?)
    }
}

/// Drops the history of `store` older than `keep` that no version of `pinned` reads.
fn retain(store: &Store, keep: &Span, pinned: &BTreeSet<u64>) -> Result<u64, crate::error::StoreError> {
    let Some(cutoff) = Utc::now().checked_sub_signed(keep.duration) else { return Ok(0) };
    let Some(floor) = store.version_at(cutoff)? else { return Ok(0) };
    if floor.number <= store.history_floor()? {
        return Ok(0);
    }
    let dropped = store.drop_history(floor.number, pinned)?;
    tracing::info!(
        floor = floor.number,
        since = %floor.committed,
        bytes = dropped,
        "dropped the history older than [store] keep_versions that no snapshot pins"
    );
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use crate::store::codec;
    use crate::testing::{catalog, config, Market, BAR, FIRST};
    use crate::types::{date_of, Day};
    use crate::{Adjust, AsOf, Cache, Request};

    /// What a test does to the store between reads.
    #[derive(Debug, Clone)]
    enum Step {
        /// Commits the next new day.
        Append,
        /// Rewrites a cached day with other values.
        Rewrite(u8),
        /// Writes a cached day again with the same content, encoded otherwise.
        Same(u8),
        /// Deletes a day of `val`.
        Delete(u8),
        /// Replaces the universe.
        Universe(u8),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => Just(Step::Append),
            3 => any::<u8>().prop_map(Step::Rewrite),
            2 => any::<u8>().prop_map(Step::Same),
            1 => any::<u8>().prop_map(Step::Delete),
            1 => any::<u8>().prop_map(Step::Universe),
        ]
    }

    /// Every read shape a version must give back: the outer union of both daily tables with the
    /// asof field, a universe's rows adjusted forward, and `val` alone.
    fn reads() -> Vec<Request> {
        let (start, end) = (date_of(FIRST - 5), date_of(FIRST + 400));
        let cols = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        vec![
            Request::new(start, end, cols(&["close", "volume", "name", "pe", "mv", "revenue"])),
            Request::new(start, end, cols(&["close", "pe"])).universe("u").adjust(Adjust::Forward),
            Request::new(start, end, cols(&["val.pe", "revenue"])).base("val"),
        ]
    }

    fn read_all(cache: &Cache, as_of: Option<AsOf>) -> (u64, Vec<RecordBatch>) {
        let mut version = 0;
        let batches = reads()
            .into_iter()
            .map(|r| {
                let r = match &as_of {
                    Some(a) => r.as_of(a.clone()),
                    None => r,
                };
                let result = cache.get(&r).unwrap();
                version = result.version.number;
                result.batch
            })
            .collect();
        (version, batches)
    }

    /// The chunks of `table` on `day` decoded and encoded again at another level: the same
    /// content in other bytes.
    fn resubmit(market: &Market, table: u32, day: Day) {
        let entry = catalog().tables.into_iter().find(|t| t.id == table).unwrap();
        let store = &market.store;
        let Some(ids) = store.rows(&entry, day).unwrap() else { return };
        let mut batch = store.batch();
        batch.put_day(table, day, ids.len(), codec::encode_rows(&ids, 9));
        for field in &entry.fields {
            let found =
                store.read_chunks(crate::store::ChunkKind::Values, &[(field.id, day)], |_, b| Ok(b.to_vec())).unwrap();
            let bytes = found[0].clone().unwrap();
            let array = codec::decode_values(&bytes, field.dtype).unwrap();
            batch.put_values(table, field, day, codec::encode_values(array.as_ref(), field.dtype, 9));
        }
        assert!(store.write(batch).unwrap().is_none(), "the same content is no new version");
    }

    fn universe(seed: u8) -> crate::Universe {
        let intervals = (0..12u8)
            .filter(|&s| (u32::from(s) + u32::from(seed)) % 3 != 0)
            .map(|s| crate::Interval {
                symbol: format!("S{s:02}"),
                start: date_of(FIRST + Day::from(seed % 7)),
                end: (s % 2 == 0).then(|| date_of(FIRST + 20 + Day::from(s))),
            })
            .collect();
        crate::Universe::new(intervals, i64::from(seed)).unwrap()
    }

    type Cells = BTreeMap<(String, String, NaiveDate, String), (Option<String>, Option<String>)>;

    /// Every field of `bar` and `val`, each read alone on its table's own rows at `version`.
    fn tables_at(cache: &Cache, version: u64) -> BTreeMap<(String, String, NaiveDate, String), Option<String>> {
        let mut cells = BTreeMap::new();
        for (table, fields) in [("bar", &["close", "volume", "name"][..]), ("val", &["pe", "mv"][..])] {
            let cols: Vec<String> = fields.iter().map(|f| format!("{table}.{f}")).collect();
            let request =
                Request::new(date_of(FIRST - 5), date_of(FIRST + 400), cols).base(table).as_of(AsOf::Version(version));
            let batch = cache.get(&request).unwrap().batch;
            let dates = batch.column(0).as_primitive::<arrow::datatypes::Date32Type>();
            let symbols = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::Utf8).unwrap();
            let symbols = symbols.as_string::<i32>();
            for (f, field) in fields.iter().enumerate() {
                let column = batch.column(f + 2);
                let text = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default()).unwrap();
                for row in 0..batch.num_rows() {
                    let value = column.is_valid(row).then(|| text.value(row).to_string());
                    let date = date_of(dates.value(row));
                    cells.insert((table.to_string(), field.to_string(), date, symbols.value(row).to_string()), value);
                }
            }
        }
        cells
    }

    /// The cells that differ between two versions, from whole reads of each table.
    fn naive_diff(cache: &Cache, from: u64, to: u64) -> Cells {
        let (old, new) = (tables_at(cache, from), tables_at(cache, to));
        let keys: std::collections::BTreeSet<_> = old.keys().chain(new.keys()).cloned().collect();
        keys.into_iter()
            .filter_map(|key| {
                let (a, b) = (old.get(&key), new.get(&key));
                (a != b).then(|| (key, (a.cloned().flatten(), b.cloned().flatten())))
            })
            .collect()
    }

    fn cells_of(diff: &crate::Diff) -> Cells {
        let mut cells = BTreeMap::new();
        for field in &diff.fields {
            let show = |array: &ArrayRef, i: usize| {
                let text = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).unwrap();
                array.is_valid(i).then(|| text.value(i).to_string())
            };
            for i in 0..field.dates.len() {
                let key = (field.table.clone(), field.field.clone(), field.dates[i], field.symbols[i].clone());
                cells.insert(key, (show(&field.old, i), show(&field.new, i)));
            }
        }
        cells
    }

    /// Retention drops the history older than `keep_versions` except what a snapshot reads, and
    /// says so when asked for what it dropped.
    #[test]
    fn retention_keeps_what_snapshots_pin_and_names_what_it_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path(), "64MiB");
        config.store.keep_versions =
            Some(crate::config::Span { text: "1s".into(), duration: chrono::TimeDelta::seconds(1) });
        let mut market = Market::new(&config.store.path, 12, 5);
        for day in FIRST..FIRST + 6 {
            market.commit(day);
        }
        let mut batch = market.store.batch();
        batch.put_universe("u", &universe(0));
        market.store.write(batch).unwrap();
        market.rewrite(FIRST + 1);
        let cache = Cache::builder(config).share(false).open().unwrap();
        let before_rewrite = market.store.latest_version().unwrap() - 1;
        let early = read_all(&cache, Some(AsOf::Version(before_rewrite)));
        let pinned = read_all(&cache, None);
        cache.snapshot("kept", None).unwrap();
        market.rewrite(FIRST + 2);
        market.rewrite(FIRST + 3);
        let floor = read_all(&cache, None);
        let bytes = cache.versions().unwrap().history_bytes;
        std::thread::sleep(std::time::Duration::from_millis(1200));
        market.rewrite(FIRST + 4);
        let latest = read_all(&cache, None);

        let keep = cache.config().store.keep_versions.clone().unwrap();
        let pinned_now = |cache: &Cache| cache.snapshots().unwrap().into_iter().map(|s| s.version).collect();
        assert!(
            matches!(cache.retain(), Err(crate::Error::Store(crate::StoreError::ReadOnly { .. }))),
            "the writer's job"
        );
        assert!(super::retain(&market.store, &keep, &pinned_now(&cache)).unwrap() > 0, "history past the second goes");
        let status = cache.versions().unwrap();
        assert_eq!((status.oldest, status.latest), (floor.0, latest.0));
        assert!(status.history_bytes < bytes, "{} < {bytes}", status.history_bytes);
        assert_eq!(status.snapshots.iter().map(|s| s.version).collect::<Vec<_>>(), [pinned.0]);
        assert_eq!(read_all(&cache, Some(AsOf::Snapshot("kept".into()))).1, pinned.1, "the snapshot reads as it did");
        assert_eq!(read_all(&cache, Some(AsOf::Version(pinned.0))).1, pinned.1, "and so does its version");
        assert_eq!(read_all(&cache, Some(AsOf::Version(floor.0))).1, floor.1);
        assert_eq!(read_all(&cache, Some(AsOf::Version(latest.0))).1, latest.1);
        let request = reads().remove(0).as_of(AsOf::Version(early.0));
        let err = cache.get(&request).unwrap_err().to_string();
        assert!(err.contains("older than the oldest version kept") && err.contains("keep_versions = \"1s\""), "{err}");

        // Without its snapshot, what only it kept goes with the next retention.
        cache.delete_snapshot("kept").unwrap();
        let pinned_bytes = cache.versions().unwrap().history_bytes;
        std::thread::sleep(std::time::Duration::from_millis(1200));
        market.rewrite(FIRST + 5);
        assert!(super::retain(&market.store, &keep, &pinned_now(&cache)).unwrap() > 0);
        assert!(cache.versions().unwrap().history_bytes < pinned_bytes);
        assert!(cache.get(&reads().remove(0).as_of(AsOf::Version(pinned.0))).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// A read at every version recorded along a random sequence of commits returns exactly
        /// what the same read returned when that version was the newest, asked by number and
        /// by the moment it was committed.
        #[test]
        fn a_read_at_a_version_returns_what_it_returned_then(steps in prop::collection::vec(step(), 1..16), seed in 1u64..1000) {
            let dir = tempfile::tempdir().unwrap();
            let config = config(dir.path(), "64MiB");
            let mut market = Market::new(&config.store.path, 14, seed);
            let mut next = FIRST;
            for _ in 0..6 {
                market.commit(next);
                next += 1;
            }
            let mut batch = market.store.batch();
            batch.put_universe("u", &universe(0));
            market.store.write(batch).unwrap();
            let cache = Cache::builder(config).share(false).open().unwrap();
            let mut seen = vec![read_all(&cache, None)];
            for step in steps {
                let cached = |n: u8| FIRST + Day::from(n) % (next - FIRST);
                let before = market.store.latest_version().unwrap();
                match step {
                    Step::Append => {
                        market.commit(next);
                        next += 1;
                    }
                    Step::Rewrite(n) => market.rewrite(cached(n)),
                    Step::Same(n) => resubmit(&market, BAR, cached(n)),
                    Step::Delete(n) => market.delete(cached(n)),
                    Step::Universe(n) => {
                        let mut batch = market.store.batch();
                        batch.put_universe("u", &universe(n));
                        market.store.write(batch).unwrap();
                    }
                }
                if matches!(step, Step::Same(_)) {
                    prop_assert_eq!(market.store.latest_version().unwrap(), before);
                }
                seen.push(read_all(&cache, None));
            }
            for (version, batches) in &seen {
                let by_number = read_all(&cache, Some(AsOf::Version(*version)));
                prop_assert_eq!(&by_number, &(*version, batches.clone()), "version {}", version);
                let committed = market.store.version(*version).unwrap().unwrap().committed;
                let by_moment = read_all(&cache, Some(AsOf::Moment(committed)));
                prop_assert_eq!(by_moment.0, *version);
            }
            // A diff lists exactly the cells whole reads of both versions tell apart.
            let (first, last) = (seen[0].0, seen[seen.len() - 1].0);
            for (from, to) in [(first, last), (last, first), (seen[seen.len() / 2].0, last)] {
                let cols: Vec<String> = ["bar.close", "bar.volume", "bar.name", "val.pe", "val.mv"].map(String::from).to_vec();
                let diff = cache.diff(&AsOf::Version(from), Some(&AsOf::Version(to)), (None, None), Some(&cols)).unwrap();
                prop_assert_eq!(cells_of(&diff), naive_diff(&cache, from, to), "{} to {}", from, to);
            }
        }
    }
}
