//! One module per subcommand.

pub mod diff;
pub mod drop;
pub mod fields;
pub mod get;
pub mod import;
pub mod init;
pub mod quality;
pub mod serve;
pub mod snapshot;
pub mod status;
pub mod universes;
pub mod update;
pub mod verify;
pub mod warm;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use cheetah_core::Config;

/// `--start` and `--end`, shared by the commands that take a date range.
#[derive(clap::Args)]
pub struct DateRange {
    /// First date, inclusive (YYYY-MM-DD)
    #[arg(long)]
    pub start: chrono::NaiveDate,
    /// Last date, inclusive (YYYY-MM-DD)
    #[arg(long)]
    pub end: chrono::NaiveDate,
}

/// `--start`, `--end` and `--table`, for the commands that go over each table's cached range.
#[derive(clap::Args)]
pub struct CachedRange {
    /// First date (default: each table's first cached date)
    #[arg(long)]
    pub start: Option<chrono::NaiveDate>,
    /// Last date (default: each table's watermark)
    #[arg(long)]
    pub end: Option<chrono::NaiveDate>,
    /// Only this table; repeat for several
    #[arg(long = "table", value_name = "NAME")]
    pub tables: Vec<String>,
}

impl CachedRange {
    /// The range, checked to run forwards.
    pub fn dates(&self) -> anyhow::Result<(Option<chrono::NaiveDate>, Option<chrono::NaiveDate>)> {
        if let (Some(start), Some(end)) = (self.start, self.end) {
            anyhow::ensure!(start <= end, "--start {start} is after --end {end}");
        }
        Ok((self.start, self.end))
    }
}

/// Finds and reads the config the way every command does.
pub fn load_config(explicit: Option<&Path>) -> anyhow::Result<Config> {
    Ok(Config::discover(explicit)?)
}

/// A flag set by the first SIGINT or SIGTERM, so long runs stop between dates with nothing
/// partial; a second signal ends the process at once.
pub fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the first signal left it.
        signal_hook::flag::register_conditional_shutdown(signal, 130, stop.clone())
            .and_then(|_| signal_hook::flag::register(signal, stop.clone()))
            .context("cannot install signal handlers")?;
    }
    Ok(stop)
}

/// `1234567` as `1.2 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
