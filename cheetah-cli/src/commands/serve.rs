//! `cheetah serve`: an update every `--interval` seconds, like the original DataService.
//!
//! The daemon holds the store's writer role for its whole life; readers in other processes see
//! each committed date on their next query. Each source keeps its own schedule: when its tables
//! fail, it is retried after a wait that doubles from `--retry-min` up to `--retry-max`, so a
//! source that is down is not hammered and does not hold up the others, and its first round
//! after it returns catches up. SIGINT or SIGTERM stops it between dates. After each round it
//! brings the shared layer (`[share]`) up to the store.
//!
//! With `[flight]` it also serves reads over Arrow Flight; `--no-update` serves them without
//! taking the writer role, for a replica of the store or a box where another process updates.
//!
//! As the writer, it also takes the local writes other processes hand it through the store's
//! inbox (`Cache.write` in a notebook, `cheetah import`), within 50 ms, between and during
//! update rounds, and publishes what they changed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use cheetah_core::{Cache, SourceOutcome, UpdateError, UpdateReport};

use super::{load_config, stop_on_signals};

#[derive(clap::Args)]
pub struct Args {
    /// Seconds from the start of one round to the start of the next
    #[arg(long, default_value_t = 300.0, value_name = "SECONDS")]
    interval: f64,
    /// Seconds to wait after a failed round; the wait doubles with each failure in a row
    #[arg(long, default_value_t = 5.0, value_name = "SECONDS")]
    retry_min: f64,
    /// The longest wait after failed rounds, in seconds
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    retry_max: f64,
    /// Serve reads over Arrow Flight ([flight]) without updating or taking the writer role
    #[arg(long)]
    no_update: bool,
}

/// How long streams under way may finish once the server is asked to stop.
const FLIGHT_GRACE: Duration = Duration::from_secs(5);

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    for (name, value) in
        [("--interval", args.interval), ("--retry-min", args.retry_min), ("--retry-max", args.retry_max)]
    {
        if !(value.is_finite() && value > 0.0) {
            bail!("{name} must be a positive number of seconds, not {value}");
        }
    }
    // A server must outlive a client that hangs up: a write to its closed socket is an error to
    // handle, not a signal that ends the process.
    // SAFETY: changing a signal's disposition before the server's threads start.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let stop = stop_on_signals()?;
    let config = load_config(config)?;
    if args.no_update && config.flight.is_none() {
        bail!("--no-update serves reads over Arrow Flight only, and {} has no [flight] section; add one with listen = \"127.0.0.1:8815\"", config.path.display());
    }
    let cache = Arc::new(Cache::builder(config).writer(!args.no_update).open()?);
    let flight = match &cache.config().flight {
        Some(flight) => Some(cheetah_flight::start(cache.clone(), flight)?),
        None => None,
    };
    if args.no_update {
        tracing::info!(store = %cache.config().store.path.display(), "serving reads only; another process updates the store");
        while sleep_unless_stopped(Duration::from_secs(3600), &stop) {}
    } else {
        let writes = take_writes(cache.clone(), stop.clone());
        update_rounds(&cache, &args, &stop);
        let _ = writes.join();
    }
    if let Some(flight) = flight {
        flight.stop(FLIGHT_GRACE);
    }
    tracing::info!("stopped; every committed date is intact");
    Ok(())
}

/// When a source's tables are next updated, and how many of its rounds in a row failed.
struct Schedule {
    due: Instant,
    failures: u32,
}

/// Updates each source's tables every `--interval`, until `stop`. A source whose tables fail
/// backs off alone: the others keep their interval.
fn update_rounds(cache: &Cache, args: &Args, stop: &Arc<AtomicBool>) {
    let config = cache.config();
    let sources: Vec<String> = config.sources.values().map(|s| format!("{} ({})", s.name, s.redacted())).collect();
    tracing::info!(store = %config.store.path.display(), sources = %sources.join(", "), interval = args.interval, "serving");
    let mut schedules: BTreeMap<String, Schedule> =
        config.sources.keys().map(|name| (name.clone(), Schedule { due: Instant::now(), failures: 0 })).collect();
    for round in 1u64.. {
        let started = Instant::now();
        let due: BTreeSet<String> =
            schedules.iter().filter(|(_, s)| s.due <= started).map(|(name, _)| name.clone()).collect();
        let (failed, interrupted): (BTreeSet<String>, BTreeSet<String>) =
            match cache.update_with(stop, None, Some(due.clone())) {
                Ok(report) => {
                    log_round(round, &report, started.elapsed());
                    let names = |keep: fn(&SourceOutcome) -> bool| {
                        report.sources.iter().filter(|(_, o)| keep(o)).map(|(name, _)| name.clone()).collect()
                    };
                    (names(|o| o.failed > 0), names(|o| o.interrupted > 0))
                }
                Err(e) => {
                    tracing::error!(round, "round failed: {e}");
                    (due.clone(), BTreeSet::new())
                }
            };
        publish(cache, Some(round));
        for name in &due {
            let schedule = schedules.get_mut(name).expect("scheduled");
            if failed.contains(name) {
                schedule.failures += 1;
                let wait = (args.retry_min * 2f64.powi(schedule.failures as i32 - 1)).min(args.retry_max);
                tracing::warn!(round, source = %name, failures = schedule.failures, "source `{name}` failed: backing off, its next round in {wait:.1} s");
                schedule.due = Instant::now() + Duration::from_secs_f64(wait);
            } else if !interrupted.contains(name) {
                if schedule.failures > 0 {
                    tracing::info!(round, source = %name, "source `{name}` is back after {} failed rounds", schedule.failures);
                    schedule.failures = 0;
                }
                schedule.due = started + Duration::from_secs_f64(args.interval);
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let next = schedules.values().map(|s| s.due).min().unwrap_or(started + Duration::from_secs_f64(args.interval));
        if !sleep_unless_stopped(next.saturating_duration_since(Instant::now()), stop) {
            break;
        }
    }
}

/// Logs the round's totals (the updater logs each table).
fn log_round(round: u64, report: &UpdateReport, took: Duration) {
    let done: Vec<_> = report.tables.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let failed = report.failures().filter(|(_, e)| !matches!(e, UpdateError::Interrupted)).count();
    tracing::info!(
        round,
        sources = %report.sources.keys().cloned().collect::<Vec<_>>().join(","),
        tables = report.tables.len(),
        failed,
        dates = done.iter().map(|r| r.dates).sum::<usize>(),
        rows = done.iter().map(|r| r.rows).sum::<u64>(),
        seconds = format!("{:.2}", took.as_secs_f64()),
        "round finished"
    );
}

/// Held while the shared layer is brought up to the store: by the rounds and by the writes.
static PUBLISHING: Mutex<()> = Mutex::new(());

/// Takes the writes other processes hand over through the inbox, until `stop`, and brings the
/// shared layer up to each. A write waits while an update round writes a table.
fn take_writes(cache: Arc<Cache>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match cache.take_inbox() {
                Ok(0) => {}
                Ok(taken) => {
                    tracing::info!(requests = taken, "took local writes");
                    publish(cache.as_ref(), None);
                }
                Err(e) => {
                    tracing::error!("taking local writes failed: {e}");
                    sleep_unless_stopped(Duration::from_secs(1), &stop);
                }
            }
            sleep_unless_stopped(Duration::from_millis(50), &stop);
        }
    })
}

/// Brings the shared layer up to what the round committed. A failure (a full tmpfs) is logged
/// and leaves readers on what was published before and on the store; it does not make the
/// source back off.
fn publish(cache: &Cache, round: Option<u64>) {
    let _turn = PUBLISHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match cache.refresh_share() {
        Ok(report) if report.generation.is_some() => {
            tracing::info!(
                ?round,
                generation = report.generation,
                segments = report.written.len(),
                blocks = report.blocks,
                rows = report.rows,
                bytes = report.bytes,
                evicted = report.evicted.len(),
                "shared layer refreshed"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(?round, "the shared layer was not refreshed: {e}"),
    }
}

/// Sleeps for `wait`, waking early when `stop` is set; returns false if it was.
fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    false
}
