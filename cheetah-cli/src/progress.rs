//! The terminal progress bars of an update, drawn from the library's progress events: per table,
//! dates covered, rows per second and an ETA; one line per table fetching, as tables run side by
//! side.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cheetah_core::{ProgressEvent, ProgressFn, ProgressTask};
use chrono::NaiveDate;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

struct Bar {
    bar: ProgressBar,
    from: NaiveDate,
    started: Instant,
    rows: u64,
}

/// A callback drawing one bar per running fetch on stderr.
pub fn terminal_bars() -> ProgressFn {
    let bars: Mutex<HashMap<(String, ProgressTask), Bar>> = Mutex::new(HashMap::new());
    let lines = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    Arc::new(move |event: &ProgressEvent| {
        let mut bars = bars.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            ProgressEvent::Started { table, task, from, to } => {
                let days = (*to - *from).num_days().max(0) as u64 + 1;
                let bar = lines.add(ProgressBar::new(days));
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:30}] {msg} eta {eta}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(match task {
                    ProgressTask::AddedFields => format!("{table} (added fields)"),
                    _ => table.clone(),
                });
                bars.insert((table.clone(), *task), Bar { bar, from: *from, started: Instant::now(), rows: 0 });
            }
            ProgressEvent::Committed { table, task, date, rows } => {
                if let Some(b) = bars.get_mut(&(table.clone(), *task)) {
                    b.rows += *rows as u64;
                    b.bar.set_position((*date - b.from).num_days().max(0) as u64 + 1);
                    let rate = b.rows as f64 / b.started.elapsed().as_secs_f64().max(1e-3);
                    b.bar.set_message(format!("{date}  {} rows  {rate:.0} rows/s", b.rows));
                }
            }
            ProgressEvent::Finished { table, task } => {
                if let Some(b) = bars.remove(&(table.clone(), *task)) {
                    b.bar.finish_and_clear();
                }
            }
            _ => {}
        }
    })
}
