//! The progress bar of an update: dates covered, rows per second and an ETA, on a terminal only.

use std::time::Instant;

use chrono::NaiveDate;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress through a date range; draws nothing unless shown on a terminal.
pub struct Progress {
    bar: ProgressBar,
    from: NaiveDate,
    started: Instant,
    rows: std::cell::Cell<u64>,
}

impl Progress {
    /// A bar over `from..=to`, labelled `label`.
    pub fn new(show: bool, label: &str, from: NaiveDate, to: NaiveDate) -> Self {
        let days = (to - from).num_days().max(0) as u64 + 1;
        let target = if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(days), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {msg} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Self { bar, from, started: Instant::now(), rows: 0.into() }
    }

    /// Records that `day` was committed with `rows` rows.
    pub fn advance(&self, day: NaiveDate, rows: usize) {
        self.rows.set(self.rows.get() + rows as u64);
        self.bar.set_position((day - self.from).num_days().max(0) as u64 + 1);
        let rate = self.rows.get() as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{day}  {} rows  {:.0} rows/s", self.rows.get(), rate));
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
