//! A date range fetched as consecutive date windows over the source's connections, and read
//! back in date order.
//!
//! Windows bound memory whatever the driver buffers: psqlODBC without `UseDeclareFetch` and
//! MariaDB's driver hold a whole result set, and psqlODBC 13 with `UseDeclareFetch=1` crashes the
//! process if the connection drops mid-fetch. Each window is sized to about `query_rows` rows
//! from the rows per day of the windows fetched so far.
//!
//! Up to `connections` threads fetch, each over one connection it keeps for every window it
//! takes. The source's budget counts those connections and the windows in flight across every
//! table of the update, so tables updated side by side share the source's `connections`. A
//! thread holds its connection before it takes a window: a window taken is always being
//! fetched, and a thread waiting for a connection holds nothing another waits for.
//!
//! The reader looks at the update's stop flag while it waits, so an interrupt ends the stream
//! with [`UpdateError::Interrupted`] within [`STOP_POLL`], however long the driver takes over a
//! window. Threads the driver still holds are then left to end at their next batch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};

use super::columns::ResolvedTable;
use super::stream::{fetch_window, TableRows};
use super::Source;
use crate::error::{SourceError, UpdateError};
use crate::types::ValueType;

const FIRST_WINDOW_DAYS: i64 = 7;
const MAX_WINDOW_DAYS: i64 = 3660;
/// Empty windows grow slowly and stay short: a long empty stretch may end in dense dates.
const MAX_EMPTY_GROWTH_DAYS: i64 = 366;
/// How often a thread waiting for another table's reader to free a window looks again.
const WINDOW_POLL: Duration = Duration::from_millis(20);
/// How often the reader, waiting for rows, looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(20);
/// How long an interrupted reader waits for its threads to end before leaving them to it.
const STOPPED_JOIN: Duration = Duration::from_millis(100);

/// What a fetching thread sends the reader about one window.
enum Piece {
    Rows(TableRows),
    Failed(SourceError),
    End,
}

/// One date window, and where its pieces go.
struct Window {
    from: NaiveDate,
    to: NaiveDate,
    pieces: Sender<Piece>,
}

/// What the fetching threads and the reader share, under one lock.
struct Plan {
    /// The first date no window has taken yet.
    next_from: Option<NaiveDate>,
    to: NaiveDate,
    window_days: i64,
    /// Windows made so far; the next one gets this index.
    made: usize,
    /// Windows the reader has read to their end.
    read: usize,
    /// Each made window's pieces, until the reader takes them.
    unread: BTreeMap<usize, Receiver<Piece>>,
    /// Why the fetch cannot go on: the source refused every connection.
    failure: Option<SourceError>,
    /// The reader went away or failed: every thread stops.
    cancelled: bool,
}

impl Plan {
    /// Whether no thread has more to do.
    fn over(&self) -> bool {
        self.cancelled || self.failure.is_some() || self.next_from.is_none()
    }
}

struct Shared {
    plan: Mutex<Plan>,
    changed: Condvar,
    source: Source,
    query_rows: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next window to fetch, once the source's budget has room for it; `None` when there
    /// is none left or the fetch is over.
    fn take(&self) -> Option<Window> {
        let mut plan = self.lock();
        loop {
            if plan.over() {
                return None;
            }
            let from = plan.next_from.expect("not over");
            if self.source.budget.start_window() {
                let to = from
                    .checked_add_days(Days::new(plan.window_days as u64 - 1))
                    .map_or(plan.to, |end| end.min(plan.to));
                plan.next_from = to.succ_opt().filter(|next| *next <= plan.to);
                let (pieces, receiver) = mpsc::channel();
                let index = plan.made;
                plan.unread.insert(index, receiver);
                plan.made += 1;
                self.changed.notify_all();
                return Some(Window { from, to, pieces });
            }
            // Another table's reader frees a window without this plan's condvar.
            plan = self.changed.wait_timeout(plan, WINDOW_POLL).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }

    /// Sizes the windows not yet made from one just fetched.
    fn fetched(&self, window: &Window, rows: usize) {
        let days = (window.to - window.from).num_days() + 1;
        let mut plan = self.lock();
        plan.window_days = if rows == 0 {
            (days * 2).min(MAX_EMPTY_GROWTH_DAYS.max(days))
        } else {
            (self.query_rows as f64 * days as f64 / rows as f64) as i64
        }
        .clamp(1, MAX_WINDOW_DAYS);
    }

    /// The source refused a connection while this update held no other: the fetch fails.
    fn refused(&self, error: SourceError) {
        self.lock().failure.get_or_insert(error);
        self.changed.notify_all();
    }
}

/// The rows of a table for a date range, in date order, fetched by `connections` threads of the
/// source.
pub struct WindowedRows {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    reading: Option<Receiver<Piece>>,
    finished: bool,
    table: String,
    stop: Arc<AtomicBool>,
}

impl WindowedRows {
    /// Fetches `fields` of `table` for `from..=to`, ordered by date, until `stop` is set.
    pub fn new(
        source: &Source,
        table: &ResolvedTable,
        fields: &[(String, ValueType)],
        (from, to): (NaiveDate, NaiveDate),
        stop: Arc<AtomicBool>,
    ) -> Self {
        let connections = source.config().connections;
        let shared = Arc::new(Shared {
            plan: Mutex::new(Plan {
                next_from: (from <= to).then_some(from),
                to,
                window_days: FIRST_WINDOW_DAYS,
                made: 0,
                read: 0,
                unread: BTreeMap::new(),
                failure: None,
                cancelled: false,
            }),
            changed: Condvar::new(),
            source: source.clone(),
            query_rows: source.config().query_rows,
        });
        let fields: Arc<[(String, ValueType)]> = fields.into();
        let threads = (0..connections)
            .map(|_| {
                let (shared, table, fields) = (shared.clone(), table.clone(), fields.clone());
                std::thread::spawn(move || fetch_windows(&shared, &table, &fields))
            })
            .collect();
        Self { shared, threads, reading: None, finished: false, table: table.config.name.clone(), stop }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The pieces of the next window in date order; `None` after the last one.
    fn next_window(&mut self) -> Option<Result<Receiver<Piece>, UpdateError>> {
        let mut plan = self.shared.lock();
        loop {
            let index = plan.read;
            if let Some(pieces) = plan.unread.remove(&index) {
                return Some(Ok(pieces));
            }
            if plan.next_from.is_none() && plan.made == index {
                return None;
            }
            if let Some(failure) = plan.failure.take() {
                return Some(Err(failure.into()));
            }
            if self.stopped() {
                return Some(Err(UpdateError::Interrupted));
            }
            plan =
                self.shared.changed.wait_timeout(plan, STOP_POLL).unwrap_or_else(std::sync::PoisonError::into_inner).0;
        }
    }

    /// The window's next piece; [`UpdateError::Interrupted`] once the stop flag is set.
    fn next_piece(&self, pieces: &Receiver<Piece>) -> Result<Piece, UpdateError> {
        loop {
            match pieces.recv_timeout(STOP_POLL) {
                Ok(piece) => return Ok(piece),
                Err(RecvTimeoutError::Timeout) if self.stopped() => return Err(UpdateError::Interrupted),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(SourceError::Query {
                        table: self.table.clone(),
                        doing: "fetching rows".into(),
                        message: "a fetching thread stopped unexpectedly".into(),
                    }
                    .into())
                }
            }
        }
    }

    fn fail(&mut self, error: UpdateError) -> Option<Result<TableRows, UpdateError>> {
        self.finished = true;
        self.stop();
        Some(Err(error))
    }

    fn stop(&mut self) {
        self.reading = None;
        let mut plan = self.shared.lock();
        plan.cancelled = true;
        // Dropping the receivers makes a thread's next send fail, so it stops after its batch.
        plan.unread.clear();
        // The windows made and not read leave the budget; `read` moves so they leave it once.
        self.shared.source.budget.windows_done(plan.made - plan.read);
        plan.read = plan.made;
        self.shared.changed.notify_all();
    }
}

impl Iterator for WindowedRows {
    type Item = Result<TableRows, UpdateError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.finished {
            let pieces = match self.reading.take() {
                Some(pieces) => pieces,
                None => match self.next_window() {
                    Some(Ok(pieces)) => pieces,
                    Some(Err(e)) => return self.fail(e),
                    None => {
                        self.finished = true;
                        return None;
                    }
                },
            };
            match self.next_piece(&pieces) {
                Ok(Piece::Rows(rows)) => {
                    self.reading = Some(pieces);
                    return Some(Ok(rows));
                }
                Ok(Piece::End) => {
                    let mut plan = self.shared.lock();
                    plan.read += 1;
                    self.shared.source.budget.windows_done(1);
                    self.shared.changed.notify_all();
                }
                Ok(Piece::Failed(e)) => return self.fail(e.into()),
                Err(e) => return self.fail(e),
            }
        }
        None
    }
}

impl Drop for WindowedRows {
    fn drop(&mut self) {
        self.stop();
        if self.stopped() {
            // A thread the driver holds in a long fetch ends at its next batch, when its send
            // fails; it holds only its connection, which it closes then.
            let deadline = Instant::now() + STOPPED_JOIN;
            while Instant::now() < deadline && self.threads.iter().any(|t| !t.is_finished()) {
                std::thread::sleep(Duration::from_millis(2));
            }
            // Dropping a handle detaches its thread.
            self.threads.retain(JoinHandle::is_finished);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One fetching thread: connects, then takes windows until none is left.
fn fetch_windows(shared: &Shared, table: &ResolvedTable, fields: &[(String, ValueType)]) {
    let over = || shared.lock().over();
    let counted = match shared.source.connect_counted(&over) {
        Ok(Some(counted)) => counted,
        Ok(None) => return,
        Err(e) => return shared.refused(e),
    };
    while let Some(window) = shared.take() {
        let fetched =
            fetch_window(&counted.connection, &shared.source, table, fields, (window.from, window.to), |rows| {
                window.pieces.send(Piece::Rows(rows)).is_ok()
            });
        match fetched {
            Ok(Some(rows)) => {
                shared.fetched(&window, rows);
                if window.pieces.send(Piece::End).is_err() {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                let _ = window.pieces.send(Piece::Failed(e));
                return;
            }
        }
    }
}
