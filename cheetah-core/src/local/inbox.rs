//! The inbox: how a process without the writer role hands a local write to the process that has
//! it (`cheetah serve`), or makes it itself once no process has it.
//!
//! A request is an Arrow IPC file in the store's `inbox/` folder: the frame, with the operation
//! in its schema's metadata, written whole under a temporary name and renamed to `NAME.request`.
//! Whoever writes it first renames it: the writer to `NAME.taken`, the requester taking it back
//! to `NAME.own`. One rename succeeds, so a request is applied once. The writer then leaves
//! `NAME.result` (JSON, written whole by rename): the report, or the error. A requester whose
//! writer went away (the store's lock is free) takes its request back from either name and
//! writes it itself; a date is committed whole or not at all, so a write cut short by a kill is
//! written again whole.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow::array::RecordBatch;
use arrow::datatypes::Schema;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::{Frame, WriteReport};
use crate::config::Config;
use crate::error::WriteError;
use crate::store::Store;
use crate::types::Day;

/// A write, delete or drop of a local table.
#[derive(Debug, Clone)]
pub enum Request {
    /// [`super::write`] of these batches, keyed by these columns.
    Write {
        /// The local table.
        table: String,
        /// The frame.
        batches: Vec<RecordBatch>,
        /// Its date column.
        date: String,
        /// Its symbol column.
        symbol: String,
        /// Days whose rows join those stored rather than replace them.
        merge: BTreeSet<Day>,
    },
    /// [`super::delete`].
    Delete {
        /// The local table.
        table: String,
        /// The first date deleted.
        start: NaiveDate,
        /// The last.
        end: NaiveDate,
    },
    /// [`super::drop_table`].
    Drop {
        /// The local table.
        table: String,
    },
}

impl Request {
    /// Applies the request to `store`, which must be the writer's.
    ///
    /// # Errors
    /// As [`super::write`], [`super::delete`] and [`super::drop_table`].
    pub fn apply(&self, store: &Store, config: &Config) -> Result<WriteReport, WriteError> {
        match self {
            Self::Write { table, batches, date, symbol, merge } => {
                super::write(store, config, table, &Frame::new(batches, date, symbol)?, merge)
            }
            Self::Delete { table, start, end } => super::delete(store, table, *start, *end),
            Self::Drop { table } => super::drop_table(store, table),
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        let (op, table) = match self {
            Self::Write { table, date, symbol, merge, .. } => {
                meta.insert("date".into(), date.clone());
                meta.insert("symbol".into(), symbol.clone());
                meta.insert("merge".into(), merge.iter().map(Day::to_string).collect::<Vec<_>>().join(","));
                ("write", table)
            }
            Self::Delete { table, start, end } => {
                meta.insert("start".into(), start.to_string());
                meta.insert("end".into(), end.to_string());
                ("delete", table)
            }
            Self::Drop { table } => ("drop", table),
        };
        meta.insert("op".into(), op.into());
        meta.insert("table".into(), table.clone());
        meta
    }

    fn from_file(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| e.to_string())?;
        let reader = FileReader::try_new(BufReader::new(file), None).map_err(|e| e.to_string())?;
        let meta = reader.schema().metadata().clone();
        let get = |key: &str| meta.get(key).cloned().ok_or_else(|| format!("the request has no `{key}`"));
        let date = |key: &str| get(key)?.parse::<NaiveDate>().map_err(|e| format!("`{key}`: {e}"));
        let table = get("table")?;
        match get("op")?.as_str() {
            "write" => {
                let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
                let merge = get("merge")?
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(|d| d.parse::<Day>().map_err(|e| format!("`merge`: {e}")))
                    .collect::<Result<_, _>>()?;
                Ok(Self::Write { table, batches, date: get("date")?, symbol: get("symbol")?, merge })
            }
            "delete" => Ok(Self::Delete { table, start: date("start")?, end: date("end")? }),
            "drop" => Ok(Self::Drop { table }),
            other => Err(format!("unknown operation `{other}`")),
        }
    }

    fn to_file(&self, path: &Path) -> Result<(), String> {
        let schema = match self {
            Self::Write { batches, .. } if !batches.is_empty() => batches[0].schema().as_ref().clone(),
            _ => Schema::empty(),
        };
        let schema = Arc::new(schema.with_metadata(self.metadata()));
        let file = File::create(path).map_err(|e| e.to_string())?;
        let mut writer = FileWriter::try_new(BufWriter::new(file), &schema).map_err(|e| e.to_string())?;
        if let Self::Write { batches, .. } = self {
            for batch in batches {
                let batch = batch.clone().with_schema(schema.clone()).map_err(|e| e.to_string())?;
                writer.write(&batch).map_err(|e| e.to_string())?;
            }
        }
        writer.finish().map_err(|e| e.to_string())?;
        writer
            .into_inner()
            .map_err(|e| e.to_string())?
            .into_inner()
            .map_err(|e| e.to_string())?
            .sync_all()
            .map_err(|e| e.to_string())
    }
}

/// What a request's result file holds.
#[derive(Debug, Serialize, Deserialize)]
enum Outcome {
    Done(WriteReport),
    Failed(String),
}

/// The inbox of the store at `store`.
pub fn folder(store: &Path) -> PathBuf {
    store.join("inbox")
}

/// Applies `request` with `open_writer` when no process holds the store's writer role;
/// otherwise hands it to the writer and waits up to `patience` for it, taking it back and
/// applying it itself once the role is free.
///
/// # Errors
/// [`WriteError::NotTaken`] after `patience`; the writer's error as [`WriteError::Writer`];
/// [`WriteError::Inbox`] when the folder cannot be used.
pub fn hand_over(
    store: &Path,
    request: &Request,
    patience: Duration,
    open_writer: impl Fn() -> Option<Store>,
    config: &Config,
) -> Result<WriteReport, WriteError> {
    if writer_pid(store).is_none() {
        if let Some(writer) = open_writer() {
            return request.apply(&writer, config);
        }
    }
    let folder = folder(store);
    let inbox = |e: String| WriteError::Inbox { path: folder.clone(), message: e };
    std::fs::create_dir_all(&folder).map_err(|e| inbox(e.to_string()))?;
    let name = request_name();
    let at = |suffix: &str| folder.join(format!("{name}.{suffix}"));
    request.to_file(&at("tmp")).map_err(&inbox)?;
    std::fs::rename(at("tmp"), at("request")).map_err(|e| inbox(e.to_string()))?;
    let started = Instant::now();
    loop {
        if let Some(outcome) = read_result(&at("result")).map_err(inbox)? {
            let _ = std::fs::remove_file(at("result"));
            return outcome;
        }
        if writer_pid(store).is_none() {
            if let Some(writer) = open_writer() {
                // Whichever name it has, a rename makes it ours; a writer that got there first
                // leaves neither, and its result follows.
                let ours = ["request", "taken"].iter().any(|from| std::fs::rename(at(from), at("own")).is_ok());
                if ours {
                    let outcome = request.apply(&writer, config);
                    let _ = std::fs::remove_file(at("own"));
                    return outcome;
                }
            }
        }
        if started.elapsed() >= patience && std::fs::rename(at("request"), at("withdrawn")).is_ok() {
            let _ = std::fs::remove_file(at("withdrawn"));
            let pid = writer_pid(store).map_or_else(|| "unknown".to_string(), |p| p.to_string());
            return Err(WriteError::NotTaken { path: store.to_path_buf(), pid, seconds: patience.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Applies every request waiting in the inbox of `store` (the writer's), oldest first; returns
/// how many it applied. A request that fails gets its error as its result.
///
/// # Errors
/// [`WriteError::Inbox`] when the folder cannot be read.
pub fn take_all(store: &Store, config: &Config) -> Result<usize, WriteError> {
    let folder = folder(store.path());
    let inbox = |e: std::io::Error| WriteError::Inbox { path: folder.clone(), message: e.to_string() };
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(inbox(e)),
    };
    let mut waiting: Vec<String> = Vec::new();
    for entry in entries {
        let path = entry.map_err(inbox)?.path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some(name) = file.strip_suffix(".request") {
            waiting.push(name.to_string());
        } else if LEFT_BEHIND.iter().any(|suffix| file.ends_with(suffix))
            && older_than(&path, Duration::from_secs(3600))
        {
            // Its requester, or the writer that took it, is gone.
            let _ = std::fs::remove_file(&path);
        }
    }
    waiting.sort();
    let mut applied = 0;
    for name in waiting {
        let at = |suffix: &str| folder.join(format!("{name}.{suffix}"));
        if std::fs::rename(at("request"), at("taken")).is_err() {
            continue; // withdrawn or taken back meanwhile
        }
        let outcome = match Request::from_file(&at("taken")) {
            Ok(request) => match request.apply(store, config) {
                Ok(report) => Outcome::Done(report),
                Err(e) => Outcome::Failed(e.to_string()),
            },
            Err(e) => Outcome::Failed(format!("the request in {} does not read: {e}", at("taken").display())),
        };
        if let Outcome::Done(report) = &outcome {
            tracing::info!(table = %report.table, dates = report.dates, rows = report.rows, version = ?report.version, "applied a local write from the inbox");
        }
        let text = serde_json::to_vec(&outcome).expect("outcomes serialize");
        std::fs::write(at("result.tmp"), text).map_err(inbox)?;
        std::fs::rename(at("result.tmp"), at("result")).map_err(inbox)?;
        let _ = std::fs::remove_file(at("taken"));
        applied += 1;
    }
    Ok(applied)
}

/// What a request leaves behind when a process is killed while handling it, or when its
/// requester stops waiting for its result. A request being handled is in memory by then, so
/// removing its file does not disturb the one handling it.
const LEFT_BEHIND: [&str; 5] = [".result", ".taken", ".own", ".tmp", ".result.tmp"];

fn read_result(path: &Path) -> Result<Option<Result<WriteReport, WriteError>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Outcome>(&bytes).map_err(|e| e.to_string())? {
            Outcome::Done(report) => Ok(Some(Ok(report))),
            Outcome::Failed(message) => Ok(Some(Err(WriteError::Writer { message }))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn request_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos:024}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn older_than(path: &Path, age: Duration) -> bool {
    path.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|e| e > age))
}

/// The process holding the store's writer role (RocksDB's lock on its `LOCK` file), if any.
pub fn writer_pid(store: &Path) -> Option<i32> {
    let file = File::open(store.join("LOCK")).ok()?;
    // SAFETY: `flock` is a plain C struct, for which all zeroes is a valid value.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: F_GETLK only fills in `lock`, which lives for the call.
    let done = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_GETLK, &mut lock) };
    (done == 0 && lock.l_type != libc::F_UNLCK as libc::c_short).then_some(lock.l_pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_clears_what_dead_processes_left_after_an_hour() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::testing::config(dir.path(), "1MiB");
        let store = Store::open_writer(&config.store.path, 1).unwrap();
        let folder = folder(store.path());
        std::fs::create_dir_all(&folder).unwrap();
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for suffix in LEFT_BEHIND {
            for (age, when) in [("old", Some(two_hours_ago)), ("new", None)] {
                let file = File::create(folder.join(format!("{age}{suffix}"))).unwrap();
                if let Some(when) = when {
                    file.set_modified(when).unwrap();
                }
            }
        }
        assert_eq!(take_all(&store, &config).unwrap(), 0);
        let mut left: Vec<String> =
            std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        let mut fresh: Vec<String> = LEFT_BEHIND.iter().map(|suffix| format!("new{suffix}")).collect();
        fresh.sort();
        assert_eq!(left, fresh);
    }
}
