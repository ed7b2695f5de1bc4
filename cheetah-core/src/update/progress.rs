//! Progress of an update, reported to a callback: the library draws nothing itself, so the CLI
//! renders a terminal bar and Python a notebook one from the same events.

use std::sync::Arc;

use chrono::NaiveDate;

/// One step of an update.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A table starts fetching the dates `from..=to`. `task` tells a table's new dates from the
    /// backfill of its added fields.
    Started {
        /// The table.
        table: String,
        /// What it fetches.
        task: ProgressTask,
        /// The first date it may fetch.
        from: NaiveDate,
        /// The last date it may fetch.
        to: NaiveDate,
    },
    /// A date was committed.
    Committed {
        /// The table.
        table: String,
        /// What it fetches.
        task: ProgressTask,
        /// The date.
        date: NaiveDate,
        /// Rows committed for it.
        rows: usize,
    },
    /// The table's fetch ended, however it ended.
    Finished {
        /// The table.
        table: String,
        /// What it fetched.
        task: ProgressTask,
    },
}

/// What part of a table's update a [`ProgressEvent`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProgressTask {
    /// The lookback dates and every newer one.
    NewDates,
    /// Fields added to the config, over the dates already cached.
    AddedFields,
}

/// Receives an update's [`ProgressEvent`]s, from the thread that runs the update.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// Reports one fetch's events to an optional callback, and `Finished` when dropped.
pub(super) struct Reporter {
    callback: Option<ProgressFn>,
    table: String,
    task: ProgressTask,
}

impl Reporter {
    pub fn start(
        callback: Option<&ProgressFn>,
        table: &str,
        task: ProgressTask,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Self {
        let table = table.to_string();
        if let Some(callback) = callback {
            callback(&ProgressEvent::Started { table: table.clone(), task, from, to });
        }
        Self { callback: callback.cloned(), table, task }
    }

    pub fn committed(&self, date: NaiveDate, rows: usize) {
        if let Some(callback) = &self.callback {
            callback(&ProgressEvent::Committed { table: self.table.clone(), task: self.task, date, rows });
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if let Some(callback) = &self.callback {
            callback(&ProgressEvent::Finished { table: self.table.clone(), task: self.task });
        }
    }
}
