//! Local writes: [`Cache::write`], [`Cache::delete`] and [`Cache::drop_table`]. The writer
//! applies them; any other process hands them to the writer through the store's inbox, or
//! applies them itself once no process holds the writer role.

use std::collections::BTreeSet;
use std::time::Duration;

use arrow::array::RecordBatch;
use chrono::NaiveDate;

use super::Cache;
use crate::error::Error;
use crate::local::inbox::{self, Request};
use crate::local::{self, Frame, WriteReport};
use crate::store::Store;
use crate::types::Day;

/// How long a write waits for a writer that does not take it (a long `cheetah update` holding
/// the role) before it is withdrawn.
const PATIENCE: Duration = Duration::from_secs(300);

impl Cache {
    /// Writes `batches` into the local table `table`, keyed by the columns `date` and
    /// `symbol`: each date they hold replaces that date of the table whole, in one store
    /// version. The table is created, or gains fields, as needed.
    ///
    /// # Errors
    /// [`crate::WriteError`] for a bad frame or name, a name taken by a configured table or another
    /// table's field, a field whose type differs from the stored one, or a writer that does
    /// not take the write; nothing is written then.
    pub fn write(
        &self,
        table: &str,
        batches: Vec<RecordBatch>,
        date: &str,
        symbol: &str,
    ) -> Result<WriteReport, Error> {
        let frame = Frame::new(&batches, date, symbol)?;
        self.write_frame(table, frame, batches, date, symbol, BTreeSet::new())
    }

    /// Writes a stream of batches into the local table `table`, as [`Cache::write`] of them
    /// all would, holding one batch at a time: each is one write, and a date an earlier batch
    /// wrote gets the rows of both. A file sorted by date streams in one pass; otherwise each
    /// batch merges into the dates it shares with those before. `on_batch` hears of each write
    /// and the rows read so far.
    ///
    /// # Errors
    /// As [`Cache::write`], for the first batch that fails, and the stream's own errors; the
    /// batches before it stay written.
    pub fn import(
        &self,
        table: &str,
        batches: impl IntoIterator<Item = Result<RecordBatch, Error>>,
        date: &str,
        symbol: &str,
        mut on_batch: impl FnMut(&WriteReport, u64),
    ) -> Result<WriteReport, Error> {
        let mut written: BTreeSet<Day> = BTreeSet::new();
        let mut total = WriteReport { table: table.to_string(), ..WriteReport::default() };
        let mut rows = 0u64;
        for batch in batches {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            let frame = Frame::new(std::slice::from_ref(&batch), date, symbol)
                .map_err(|e| e.offset_rows(rows - batch.num_rows() as u64))?;
            let days: BTreeSet<Day> = frame.days.iter().copied().collect();
            let merge: BTreeSet<Day> = days.intersection(&written).copied().collect();
            let report = self.write_frame(table, frame, vec![batch], date, symbol, merge)?;
            written.extend(days);
            total.created |= report.created;
            total.added.extend(report.added.iter().cloned());
            total.rows += report.rows;
            total.version = report.version.or(total.version);
            on_batch(&report, rows);
        }
        total.dates = written.len();
        Ok(total)
    }

    fn write_frame(
        &self,
        table: &str,
        frame: Frame,
        batches: Vec<RecordBatch>,
        date: &str,
        symbol: &str,
        merge: BTreeSet<Day>,
    ) -> Result<WriteReport, Error> {
        let catalog = self.follower()?.view().catalog.clone();
        local::check(&catalog, &self.config, table, &frame)?;
        if self.is_writer() {
            let report = local::write(&self.follower()?.store(), &self.config, table, &frame, &merge)?;
            self.refresh()?;
            return Ok(report);
        }
        drop(frame);
        let request = Request::Write {
            table: table.to_string(),
            batches,
            date: date.to_string(),
            symbol: symbol.to_string(),
            merge,
        };
        self.hand_over(&request)
    }

    /// Deletes the dates of local table `table` in `start..=end`.
    ///
    /// # Errors
    /// [`crate::WriteError::UnknownTable`] for a name that is no local table; store failures.
    pub fn delete(&self, table: &str, start: NaiveDate, end: NaiveDate) -> Result<WriteReport, Error> {
        crate::query::check_range(start, end)?;
        self.hand_over(&Request::Delete { table: table.to_string(), start, end })
    }

    /// Drops local table `table` and its chunks.
    ///
    /// # Errors
    /// [`crate::WriteError::UnknownTable`] for a name that is no local table; store failures.
    pub fn drop_table(&self, table: &str) -> Result<WriteReport, Error> {
        self.hand_over(&Request::Drop { table: table.to_string() })
    }

    /// Applies what other processes handed this writer; returns how many requests it took.
    ///
    /// # Errors
    /// [`crate::StoreError::ReadOnly`] for a reader; [`crate::WriteError::Inbox`].
    pub fn take_inbox(&self) -> Result<usize, Error> {
        if !self.is_writer() {
            return Err(crate::StoreError::ReadOnly { path: self.config.store.path.clone() }.into());
        }
        let taken = inbox::take_all(&self.follower()?.store(), &self.config)?;
        if taken > 0 {
            self.refresh()?;
        }
        Ok(taken)
    }

    fn is_writer(&self) -> bool {
        self.follower().is_ok_and(|f| f.store().is_writer())
    }

    /// Applies `request` as the writer, or hands it to the writer process.
    fn hand_over(&self, request: &Request) -> Result<WriteReport, Error> {
        let report = if self.is_writer() {
            request.apply(&self.follower()?.store(), &self.config)?
        } else {
            let path = &self.config.store.path;
            let level = self.config.store.compression_level;
            let open = || match Store::open_writer(path, level) {
                Ok(store) => Some(store),
                Err(crate::StoreError::Locked { .. }) => None,
                Err(e) => {
                    tracing::warn!("taking the writer role for a local write failed: {e}");
                    None
                }
            };
            inbox::hand_over(path, request, PATIENCE, open, &self.config)?
        };
        self.refresh()?;
        Ok(report)
    }
}
