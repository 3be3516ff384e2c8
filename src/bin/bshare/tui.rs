//! `bshare tui`.

use std::sync::Arc;

use anyhow::Context;
use bshare::tui::{self, CliBackend};

use crate::common::{self, OpenCodeArgs};

/// Browse your shares in the terminal: filter, preview, re-sync, unshare, open, copy the link.
///
/// Lists the shares in the local registry and those OpenCode made itself, shows whether each
/// session changed since its last upload, and previews a session (from OpenCode's data when it is
/// on this machine, else from its server). Press ? inside for the keys.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let backend = CliBackend::new(common::registry_path()?, args.opencode.opencode_dir);
    tui::run(Arc::new(backend)).context("terminal error")
}
