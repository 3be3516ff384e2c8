//! `bshare tui`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use bshare::tui::{self, RegistryBackend};

#[derive(clap::Args)]
pub struct Args {
    /// The share registry to browse [default: $XDG_DATA_HOME/bshare/shares.json]
    #[arg(long, env = "BSHARE_REGISTRY", value_name = "PATH")]
    registry: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let path = match args.registry {
        Some(path) => path,
        None => bshare::registry::default_path()?,
    };
    tui::run(Arc::new(RegistryBackend::new(path))).context("terminal error")
}
