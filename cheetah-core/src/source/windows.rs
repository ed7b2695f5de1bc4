//! A date range fetched as consecutive date windows over up to `connections` connections at
//! once, and read back in date order.
//!
//! Windows bound memory whatever the driver buffers: psqlODBC without `UseDeclareFetch` and
//! MariaDB's driver hold a whole result set, and psqlODBC 13 with `UseDeclareFetch=1` crashes the
//! process if the connection drops mid-fetch. Each window is sized to about `query_rows` rows
//! from the rows per day of the windows fetched so far.
//!
//! Each fetching thread keeps its one connection for every window it takes. A window may start
//! only while fewer than `connections` windows are unread ahead of the reader, so at most that
//! many are fetched or held at once. A thread whose connection the source refuses while another
//! thread has one hands its window back and stops, with a warning; the last one's refusal is the
//! fetch's error.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use chrono::{Days, NaiveDate};

use super::columns::ResolvedTable;
use super::stream::{fetch_window, TableRows};
use super::{Connection, Source};
use crate::error::SourceError;
use crate::types::ValueType;

const FIRST_WINDOW_DAYS: i64 = 7;
const MAX_WINDOW_DAYS: i64 = 3660;
/// Empty windows grow slowly and stay short: a long empty stretch may end in dense dates.
const MAX_EMPTY_GROWTH_DAYS: i64 = 366;

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
    /// Windows whose thread lost its connection, taken again first, oldest first.
    returned: Vec<Window>,
    /// Fetching threads still running.
    standing: usize,
    /// Why the last standing thread could not connect.
    failure: Option<SourceError>,
    /// The reader went away or failed: every thread stops.
    cancelled: bool,
}

struct Shared {
    plan: Mutex<Plan>,
    changed: Condvar,
    /// Windows allowed ahead of the reader: the source's `connections`.
    ahead: usize,
    query_rows: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next window to fetch, once the reader is near enough; `None` when there is none left
    /// or the fetch is over.
    fn take(&self) -> Option<Window> {
        let mut plan = self.lock();
        loop {
            if plan.cancelled || plan.failure.is_some() {
                return None;
            }
            if !plan.returned.is_empty() {
                return Some(plan.returned.remove(0));
            }
            let from = plan.next_from?;
            if plan.made < plan.read + self.ahead {
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
            plan = self.changed.wait(plan).unwrap_or_else(std::sync::PoisonError::into_inner);
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

    /// A thread could not connect: it hands `window` back while another thread stands, else
    /// the fetch fails with `error`. The thread stops either way.
    fn refused(&self, source: &Source, window: Window, error: SourceError) {
        let mut plan = self.lock();
        if plan.standing > 1 {
            tracing::warn!(
                source = %source.name(),
                "the source refused one of {} connections ({error}); fetching over {}. Lower `connections` in {} to stop this warning",
                self.ahead,
                plan.standing - 1,
                source.config().section()
            );
            let at = plan.returned.partition_point(|w| w.from < window.from);
            plan.returned.insert(at, window);
        } else {
            plan.failure = Some(error);
        }
        Self::leave(&mut plan);
        self.changed.notify_all();
    }

    /// A thread stops. Once none stands, no one will take the windows handed back: their
    /// readers see the end of their pieces, and then the failure.
    fn leave(plan: &mut Plan) {
        plan.standing -= 1;
        if plan.standing == 0 {
            plan.returned.clear();
        }
    }
}

/// Counts a fetching thread out when it stops, however it stops.
struct Leaving<'a> {
    shared: &'a Shared,
    counted: bool,
}

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        if !self.counted {
            let mut plan = self.shared.lock();
            Shared::leave(&mut plan);
            self.shared.changed.notify_all();
        }
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
}

impl WindowedRows {
    /// Fetches `fields` of `table` for `from..=to`, ordered by date.
    pub fn new(
        source: &Source,
        table: &ResolvedTable,
        fields: &[(String, ValueType)],
        from: NaiveDate,
        to: NaiveDate,
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
                returned: Vec::new(),
                standing: connections,
                failure: None,
                cancelled: false,
            }),
            changed: Condvar::new(),
            ahead: connections,
            query_rows: source.config().query_rows,
        });
        let fields: Arc<[(String, ValueType)]> = fields.into();
        let threads = (0..connections)
            .map(|_| {
                let (shared, source, table, fields) = (shared.clone(), source.clone(), table.clone(), fields.clone());
                std::thread::spawn(move || fetch_windows(&shared, &source, &table, &fields))
            })
            .collect();
        Self { shared, threads, reading: None, finished: false, table: table.config.name.clone() }
    }

    /// The pieces of the next window in date order; `None` after the last one.
    fn next_window(&mut self) -> Option<Result<Receiver<Piece>, SourceError>> {
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
                return Some(Err(failure));
            }
            plan = self.shared.changed.wait(plan).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn fail(&mut self, error: SourceError) -> Option<Result<TableRows, SourceError>> {
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
        self.shared.changed.notify_all();
    }
}

impl Iterator for WindowedRows {
    type Item = Result<TableRows, SourceError>;

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
            match pieces.recv() {
                Ok(Piece::Rows(rows)) => {
                    self.reading = Some(pieces);
                    return Some(Ok(rows));
                }
                Ok(Piece::End) => {
                    let mut plan = self.shared.lock();
                    plan.read += 1;
                    self.shared.changed.notify_all();
                }
                Ok(Piece::Failed(e)) => return self.fail(e),
                Err(mpsc::RecvError) => {
                    // Handed back by a thread the source refused, with no thread left to take it.
                    let failure = self.shared.lock().failure.take();
                    return self.fail(failure.unwrap_or_else(|| SourceError::Query {
                        table: self.table.clone(),
                        doing: "fetching rows".into(),
                        message: "a fetching thread stopped unexpectedly".into(),
                    }));
                }
            }
        }
        None
    }
}

impl Drop for WindowedRows {
    fn drop(&mut self) {
        self.stop();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One fetching thread: takes windows until none is left, over one connection of its own.
fn fetch_windows(shared: &Shared, source: &Source, table: &ResolvedTable, fields: &[(String, ValueType)]) {
    let mut leaving = Leaving { shared, counted: false };
    let mut connection: Option<Connection> = None;
    while let Some(window) = shared.take() {
        if connection.is_none() {
            match source.connect() {
                Ok(connected) => connection = Some(connected),
                Err(e) => {
                    leaving.counted = true;
                    return shared.refused(source, window, e);
                }
            }
        }
        let connected = connection.as_ref().expect("connected above");
        let fetched = fetch_window(connected, source, table, fields, (window.from, window.to), |rows| {
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
