//! `cheetah init`: write a commented starter config.

use std::path::Path;

use anyhow::{bail, Context};

/// The example config, commented line by line.
const STARTER: &str = include_str!("../../../config/example.toml");

#[derive(clap::Args)]
pub struct Args {
    /// Overwrite an existing file
    #[arg(long)]
    force: bool,
}

pub fn run(config: Option<&Path>, args: Args) -> anyhow::Result<()> {
    let path = match config {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os("CHEETAH_CONFIG") {
            Some(p) if !p.is_empty() => p.into(),
            _ => cheetah_core::Config::default_path(),
        },
    };
    if path.exists() && !args.force {
        bail!("{} already exists; pass --force to overwrite it", path.display());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, STARTER).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}; edit [source] and the [[table]] blocks, then run `cheetah update`", path.display());
    Ok(())
}
