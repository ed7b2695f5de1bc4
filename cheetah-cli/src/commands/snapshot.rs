//! `cheetah snapshot`: name the current store version, list the names, delete one.

use std::path::Path;

use cheetah_core::Cache;

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Name the current store version; it stays readable past retention and any correction
    Create {
        /// Its name: letters, digits, `.`, `-` or `_`
        name: String,
        /// What it is for
        #[arg(long)]
        note: Option<String>,
    },
    /// List the snapshots: name, version, when made, note
    List {
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Delete a snapshot; the history only it kept goes with the next update's retention
    Delete {
        /// Its name
        name: String,
    },
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let config = load_config(config)?;
    // A reader: snapshots are files beside the store, made while `serve` holds the writer role.
    let cache = Cache::builder(config).share(false).open()?;
    match args.action {
        Action::Create { name, note } => {
            let snapshot = cache.snapshot(&name, note.as_deref())?;
            println!(
                "snapshot {} pins version {} ({})",
                snapshot.name,
                snapshot.version,
                snapshot.created.to_rfc3339()
            );
        }
        Action::List { json } => {
            let snapshots = cache.snapshots()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snapshots)?);
                return Ok(());
            }
            if snapshots.is_empty() {
                println!("no snapshots; `cheetah snapshot create NAME` names the current version");
                return Ok(());
            }
            println!("{:<24} {:>9}  {:<25}  note", "name", "version", "created");
            for s in snapshots {
                println!(
                    "{:<24} {:>9}  {:<25}  {}",
                    s.name,
                    s.version,
                    s.created.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    s.note.unwrap_or_default()
                );
            }
        }
        Action::Delete { name } => {
            let snapshot = cache.delete_snapshot(&name)?;
            println!("deleted snapshot {} (version {})", snapshot.name, snapshot.version);
        }
    }
    Ok(())
}
