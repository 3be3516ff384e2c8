//! `bshare tui`.

use std::sync::Arc;

use anyhow::Context;
use bshare::tui::{self, CliBackend};

use crate::common::{self, OpenCodeArgs, PrivacyArgs};

/// Browse your shares in the terminal: filter, preview, re-sync, unshare, open, copy the link.
///
/// Lists the shares in the local registry and those OpenCode made itself, shows whether each
/// session changed since its last upload, and previews a session (from OpenCode's data when it is
/// on this machine, else from its server). The first re-sync of a share shows what would be
/// uploaded (size, messages, each secret that redaction removes) and asks first. Press ? inside
/// for the keys.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    privacy: PrivacyArgs,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let backend = CliBackend::new(common::registry_path()?, args.opencode.opencode_dir)
        .with_privacy(args.privacy.privacy());
    tui::run(Arc::new(backend)).context("terminal error")
}
