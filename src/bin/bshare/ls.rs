//! `bshare ls`.

use std::io::Write;

use bshare::listing::shares_table;
use bshare::model::now_millis;
use bshare::sharing::list_shares;

use crate::common::{self, OpenCodeArgs};

/// List your shares, newest first.
///
/// Shows the shares in the local registry (made by `bshare share`, the TUI or the OpenCode
/// plugin) and the shares OpenCode made itself with /share on a server set as `enterprise.url`
/// (marked "made by OpenCode"). Notes say when OpenCode no longer has a share's session.
/// Secrets are never printed.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.opencode.open_optional()?;
    let shares = list_shares(&common::registry_path()?, data.as_ref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &shares)?;
        writeln!(out)?;
    } else if shares.is_empty() {
        eprintln!("No shares yet; `bshare share` shares the newest session of this project.");
    } else {
        out.write_all(shares_table(&shares, now_millis()).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
