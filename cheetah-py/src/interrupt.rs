//! Long calls that Ctrl-C stops. The work runs on a thread of its own while the calling thread
//! waits for it with the GIL released, and every [`TICK`] runs Python's signal handlers, so a
//! `KeyboardInterrupt` raised by one reaches the caller within a second.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cheetah_core::{ProgressEvent, ProgressFn, ProgressTask};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::to_py;

/// How often the waiting thread looks at Python's signals.
const TICK: Duration = Duration::from_millis(50);

/// Runs a read-only `work`. On an interrupt the call returns at once and the work is left to
/// finish on its thread, its result dropped: it holds nothing a later call waits for.
pub fn abandonable<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce() -> Result<T, cheetah_core::Error> + Send + 'static,
) -> PyResult<T> {
    abandonable_ahead(py, move |_: &dyn Fn(())| work(), |()| Ok(()))
}

/// [`abandonable`], where the work may send values ahead of its result, each passed to `ahead`
/// on the calling thread while the work goes on: the caller's own share of the call then runs
/// beside the work instead of after it. An error from `ahead` (a `KeyboardInterrupt` raised in
/// it, say) ends the call at once, as an interrupt does.
pub fn abandonable_ahead<A: Send + 'static, T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce(&dyn Fn(A)) -> Result<T, cheetah_core::Error> + Send + 'static,
    mut ahead: impl FnMut(A) -> PyResult<()>,
) -> PyResult<T> {
    let (sender, messages) = mpsc::channel();
    let messages = Mutex::new(messages);
    spawn(move || {
        // The caller may have gone on; nobody is left to tell.
        let send_ahead = |value: A| drop(sender.send(Message::Ahead(value)));
        let result = work(&send_ahead);
        let _ = sender.send(Message::Done(result));
    })?;
    loop {
        match next(py, &messages) {
            Ok(Message::Done(result)) => return result.map_err(to_py),
            Ok(Message::Ahead(value)) => ahead(value)?,
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
            Err(RecvTimeoutError::Disconnected) => return Err(worker_died()),
        }
    }
}

/// What the work of [`abandonable_ahead`] or [`stoppable`] sends its waiting caller: values
/// ahead of its result (a read's symbols, an update's progress), then the result.
enum Message<A, T> {
    Ahead(A),
    Done(Result<T, cheetah_core::Error>),
}

/// Runs `work`, which stops between dates once the flag it is given is set. The caller's
/// thread passes each progress event to `on_progress`. An interrupt, or an exception from
/// `on_progress`, sets the flag; the call then waits for the work to stop, which leaves the
/// store as an interrupted `cheetah update` does, and raises that exception.
pub fn stoppable<T: Send + 'static>(
    py: Python<'_>,
    on_progress: Option<Bound<'_, PyAny>>,
    work: impl FnOnce(Arc<AtomicBool>, Option<ProgressFn>) -> Result<T, cheetah_core::Error> + Send + 'static,
) -> PyResult<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let (sender, messages) = mpsc::channel();
    let messages = Mutex::new(messages);
    let progress: Option<ProgressFn> = on_progress.is_some().then(|| {
        let sender = sender.clone();
        Arc::new(move |event: &ProgressEvent| {
            let _ = sender.send(Message::Ahead(event.clone()));
        }) as ProgressFn
    });
    let flag = stop.clone();
    spawn(move || {
        let _ = sender.send(Message::Done(work(flag, progress)));
    })?;
    let mut raised: Option<PyErr> = None;
    loop {
        let error = match next(py, &messages) {
            Ok(Message::Done(result)) => {
                return match raised {
                    Some(error) => Err(error),
                    None => result.map_err(to_py),
                }
            }
            Ok(Message::Ahead(event)) => match &on_progress {
                Some(callback) if raised.is_none() => callback.call1((event_dict(py, &event)?,)).err(),
                _ => None,
            },
            Err(RecvTimeoutError::Timeout) => py.check_signals().err(),
            Err(RecvTimeoutError::Disconnected) => return Err(worker_died()),
        };
        if let Some(error) = error {
            stop.store(true, Ordering::Relaxed);
            raised.get_or_insert(error);
        }
    }
}

/// The next message, waited for with the GIL released for at most [`TICK`]. (A receiver is not
/// `Sync`; the mutex, only ever taken here, lets the GIL-free closure borrow it.)
fn next<M: Send>(py: Python<'_>, messages: &Mutex<mpsc::Receiver<M>>) -> Result<M, RecvTimeoutError> {
    py.detach(|| messages.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv_timeout(TICK))
}

fn spawn(work: impl FnOnce() + Send + 'static) -> PyResult<()> {
    std::thread::Builder::new()
        .name("cheetah-call".into())
        .spawn(work)
        .map(drop)
        .map_err(|e| pyo3::exceptions::PyOSError::new_err(format!("cannot start a thread for the call: {e}")))
}

fn worker_died() -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err("the call's thread panicked; its message is on stderr")
}

/// An event as Python sees it: `{"event": "started" | "committed" | "finished", "table",
/// "task": "new dates" | "added fields", ...}` with `from`/`to` or `date`/`rows`.
fn event_dict<'py>(py: Python<'py>, event: &ProgressEvent) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let task = |task: &ProgressTask| match task {
        ProgressTask::AddedFields => "added fields",
        _ => "new dates",
    };
    match event {
        ProgressEvent::Started { table, task: t, from, to } => {
            dict.set_item("event", "started")?;
            dict.set_item("table", table)?;
            dict.set_item("task", task(t))?;
            dict.set_item("from", from.to_string())?;
            dict.set_item("to", to.to_string())?;
        }
        ProgressEvent::Committed { table, task: t, date, rows } => {
            dict.set_item("event", "committed")?;
            dict.set_item("table", table)?;
            dict.set_item("task", task(t))?;
            dict.set_item("date", date.to_string())?;
            dict.set_item("rows", rows)?;
        }
        ProgressEvent::Finished { table, task: t } => {
            dict.set_item("event", "finished")?;
            dict.set_item("table", table)?;
            dict.set_item("task", task(t))?;
        }
        _ => dict.set_item("event", "other")?,
    }
    Ok(dict)
}
