//! The connections one source may have open at once, and the date windows it may have in
//! flight, shared by every fetch of an update: the tables updated side by side and the date
//! windows of each. A window is in flight from when a fetch starts it until its reader has read
//! it, so an update holds at most `connections` windows of a source, however many tables run.
//!
//! A connection is counted from before it is opened until it is closed. A source that refuses a
//! connection while others of this budget are open has said how many it takes: the budget
//! lowers its limit to those, warns once, and the refused caller waits for one of them to close.
//! A refusal with none other open is the caller's error.
//!
//! Locks nest one way only: a fetch's plan, then the budget. The budget never calls out while
//! it holds its own.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Connection, Source};
use crate::error::SourceError;

/// How often a waiting caller asks whether it should stop waiting.
const POLL: Duration = Duration::from_millis(50);

/// The open connections of one source, and how many it may have.
#[derive(Debug)]
pub(crate) struct Budget {
    state: Mutex<State>,
    closed: Condvar,
}

#[derive(Debug)]
struct State {
    limit: usize,
    open: usize,
    /// Windows started and not yet read, at most `windows_limit`.
    windows: usize,
    windows_limit: usize,
}

/// One counted connection; dropping it frees its place.
pub(crate) struct Counted {
    /// The connection. Declared first: it closes before its place is freed.
    pub connection: Connection,
    _place: Place,
}

/// A place in the budget.
struct Place(Arc<Budget>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.lock().open -= 1;
        self.0.closed.notify_all();
    }
}

impl Budget {
    /// A budget of `limit` connections.
    pub fn new(limit: usize) -> Arc<Self> {
        let limit = limit.max(1);
        let state = State { limit, open: 0, windows: 0, windows_limit: limit };
        Arc::new(Self { state: Mutex::new(state), closed: Condvar::new() })
    }

    /// Starts a window if fewer than `connections` are in flight.
    pub fn start_window(&self) -> bool {
        let mut state = self.lock();
        let free = state.windows < state.windows_limit;
        state.windows += usize::from(free);
        free
    }

    /// `count` windows were read, or abandoned.
    pub fn windows_done(&self, count: usize) {
        let mut state = self.lock();
        debug_assert!(state.windows >= count, "more windows done than started");
        state.windows -= count;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place, once one is free; `None` once `give_up` says so.
    fn place(self: &Arc<Self>, give_up: &dyn Fn() -> bool) -> Option<Place> {
        loop {
            // Asked without the budget's lock: `give_up` takes the caller's locks, and a caller
            // holding one of them may be waiting for this lock (a fetch's plan, starting a window).
            if give_up() {
                return None;
            }
            let mut state = self.lock();
            if state.open < state.limit {
                state.open += 1;
                return Some(Place(Arc::clone(self)));
            }
            drop(self.closed.wait_timeout(state, POLL).unwrap_or_else(PoisonError::into_inner));
        }
    }

    /// A connection of `source` refused while holding a place: whether others are open, in
    /// which case the limit drops to them. Warns when the limit drops.
    fn refused(&self, source: &Source, error: &SourceError) -> bool {
        let mut state = self.lock();
        let others = state.open - 1;
        if others == 0 {
            return false;
        }
        if others < state.limit {
            tracing::warn!(
                source = %source.name(),
                "the source refused one of {} connections ({error}); reading over {others}. Lower `connections` in {} to stop this warning",
                state.limit,
                source.config().section()
            );
            state.limit = others;
        }
        true
    }

    /// Connections open now, for tests.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.lock().open
    }
}

impl Source {
    /// A connection counted in the source's budget, once a place is free; `Ok(None)` once
    /// `give_up` says so while waiting.
    ///
    /// # Errors
    /// As [`Source::connect`], when the source refuses a connection while this update holds no
    /// other.
    pub(crate) fn connect_counted(&self, give_up: &dyn Fn() -> bool) -> Result<Option<Counted>, SourceError> {
        loop {
            let Some(place) = self.budget.place(give_up) else { return Ok(None) };
            match self.connect() {
                Ok(connection) => return Ok(Some(Counted { connection, _place: place })),
                Err(e) if self.budget.refused(self, &e) => drop(place),
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_place_waits_for_one_to_close_and_windows_stay_within_the_limit() {
        let budget = Budget::new(2);
        let first = budget.place(&|| false).expect("free");
        let second = budget.place(&|| false).expect("free");
        let started = Instant::now();
        assert!(budget.place(&|| started.elapsed() > Duration::from_millis(120)).is_none(), "a third waits");
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || budget.place(&|| false).is_some())
        };
        std::thread::sleep(Duration::from_millis(80));
        drop(first);
        assert!(waiter.join().expect("joins"), "the waiter took the closed place");
        assert_eq!(budget.open(), 1);
        drop(second);
        assert_eq!(budget.open(), 0);

        assert!(budget.start_window() && budget.start_window());
        assert!(!budget.start_window(), "two windows in flight at most");
        budget.windows_done(1);
        assert!(budget.start_window());
    }

    /// A fetching thread asks its plan whether to give up while another holds the plan and
    /// starts a window: the budget's lock must not be held across `give_up`.
    #[test]
    fn giving_up_is_asked_without_the_budgets_lock() {
        let budget = Budget::new(1);
        let held = budget.place(&|| false).expect("free");
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let asked = std::sync::atomic::AtomicUsize::new(0);
                // Locks the budget from inside `give_up`, as `start_window` under a plan does.
                let give_up = || {
                    budget.windows_done(usize::from(budget.start_window()));
                    asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 3
                };
                let _ = done.send(budget.place(&give_up).is_none());
            })
        };
        let gave_up = finished.recv_timeout(Duration::from_secs(10)).expect("`place` deadlocked on its own lock");
        assert!(gave_up);
        waiter.join().expect("joins");
        drop(held);
    }
}
