//! `cheetah universes`: the cached universes, or one universe's members on a date.

use std::path::Path;

use cheetah_core::Cache;

use super::load_config;

#[derive(clap::Args)]
pub struct Args {
    /// A universe: print its members on --date, one per line
    name: Option<String>,
    /// The date to list members on (YYYY-MM-DD)
    #[arg(long, requires = "name")]
    date: Option<chrono::NaiveDate>,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let cache = Cache::builder(load_config(config)?).open()?;
    if let Some(name) = &args.name {
        let Some(date) = args.date else {
            anyhow::bail!("pass --date YYYY-MM-DD to list the members of `{name}` on that date");
        };
        let members = cache.members(name, date)?;
        for symbol in &members {
            println!("{symbol}");
        }
        eprintln!("{} members of {name} on {date}", members.len());
        return Ok(());
    }
    let universes = cache.universes()?;
    if universes.is_empty() {
        println!("no universes configured; add a [[universe]] block to the config");
        return Ok(());
    }
    println!("{:<16} {:>9} {:>8}  {:<10}  {:<10}  updated", "universe", "intervals", "symbols", "first", "last");
    for (name, universe) in universes {
        match universe {
            None => println!("{name:<16} not cached yet: run `cheetah update`"),
            Some(u) => {
                let (first, last) = u.span().map_or(("-".into(), "-".into()), |(first, last)| {
                    (first.to_string(), last.map_or("open".into(), |l| l.to_string()))
                });
                let updated = chrono::DateTime::from_timestamp(u.updated, 0)
                    .map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string());
                println!("{name:<16} {:>9} {:>8}  {first:<10}  {last:<10}  {updated}", u.intervals.len(), u.symbols());
            }
        }
    }
    Ok(())
}
