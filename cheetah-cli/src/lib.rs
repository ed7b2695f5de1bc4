//! The `cheetah` command: glue over `cheetah-core`. The `cheetah` binary and the Python
//! package's console script both call [`run`], so a pip install has the same command.

mod commands;
mod progress;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Cheetah: an embedded cache of (date, symbol) tables from SQL databases.
#[derive(Parser)]
#[command(name = "cheetah", version, about, long_about = None)]
struct Cli {
    /// The config file [default: $CHEETAH_CONFIG, else ~/.config/cheetah/cheetah.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a commented starter config
    Init(commands::init::Args),
    /// Search the sources' catalogs: tables, columns and types
    Fields(commands::fields::Args),
    /// Bring every table (or those of --source) up to the newest date in its source
    Update(commands::update::Args),
    /// Update on an interval until stopped (SIGINT or SIGTERM), keeping the shared layer current,
    /// and serve reads over Arrow Flight when the config has [flight]
    Serve(commands::serve::Args),
    /// Per table and field: dates, rows, bytes, watermark, last update; the shared layer
    Status(commands::status::Args),
    /// Read fields over a date range from the cache
    Get(commands::get::Args),
    /// Make sure a range is cached, then publish it into the shared layer ([share]), or
    /// without one pull its chunks into the OS page cache
    Warm(commands::warm::Args),
    /// Compare the cache with the source date by date; re-fetch what differs with --repair
    Verify(commands::verify::Args),
    /// List the cached universes, or a universe's members on a date
    Universes(commands::universes::Args),
    /// Whether the source looks right: coverage, missing, stale values, outliers and late
    /// events per table, field and date, from the cache; --html writes a page with heatmaps
    Quality(commands::quality::Args),
    /// Name the current store version, list the names, or delete one
    Snapshot(commands::snapshot::Args),
    /// Every cell that changed between two store versions: snapshots, version numbers or moments
    Diff(commands::diff::Args),
    /// Load a Parquet or CSV file into a local table, read like a source table by everyone
    Import(commands::import::Args),
    /// Remove a local table, with every date and field of it
    Drop(commands::drop::Args),
}

/// The log level unless `CHEETAH_LOG` says otherwise.
const DEFAULT_LOG: &str = "info";
/// The driver manager warns on every connect that drivers speak ODBC 3.0 rather than 3.8, and
/// arrow-odbc logs buffer sizes at info; neither helps a user unless asked for by name.
const QUIET: [(&str, &str); 2] = [("odbc_api", "odbc_api=error"), ("arrow_odbc", "arrow_odbc=warn")];

fn log_filter() -> String {
    let mut filter = std::env::var("CHEETAH_LOG").unwrap_or_else(|_| DEFAULT_LOG.into());
    for (target, directive) in QUIET {
        if !filter.contains(target) {
            filter.push(',');
            filter.push_str(directive);
        }
    }
    filter
}

/// Runs the command `args` names (the first being the program's name, as in `std::env::args_os`)
/// and returns the process's exit status. It owns the process as a command does: it restores
/// SIGPIPE's default, installs the log subscriber, and exits on `--help` or a usage error.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    // Rust (and Python) ignore SIGPIPE, which turns `cheetah status | head` into a panic on the
    // next print; a command-line tool should end quietly, as `cat` does.
    // SAFETY: restoring a signal's default disposition, before this command starts threads.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse_from(args);
    // A host process (Python) may have installed one already; its output is then the log.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(log_filter()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .compact()
        .try_init();
    let config = cli.config.as_deref();
    let outcome = match cli.command {
        Command::Init(args) => commands::init::run(config, args),
        Command::Fields(args) => commands::fields::run(config, args),
        Command::Update(args) => commands::update::run(config, args),
        Command::Serve(args) => commands::serve::run(config, args),
        Command::Status(args) => commands::status::run(config, args),
        Command::Get(args) => commands::get::run(config, args),
        Command::Warm(args) => commands::warm::run(config, args),
        Command::Verify(args) => commands::verify::run(config, args),
        Command::Universes(args) => commands::universes::run(config, args),
        Command::Quality(args) => commands::quality::run(config, args),
        Command::Snapshot(args) => commands::snapshot::run(config, args),
        Command::Diff(args) => commands::diff::run(config, args),
        Command::Import(args) => commands::import::run(config, args),
        Command::Drop(args) => commands::drop::run(config, args),
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("cheetah: {e:#}");
            1
        }
    }
}
