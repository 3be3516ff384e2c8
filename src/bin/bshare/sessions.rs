//! `bshare sessions`.

use std::io::Write;

use bshare::listing::sessions_table;
use bshare::model::now_millis;

use crate::common::OpenCodeArgs;

/// List OpenCode's sessions, newest first.
///
/// Reads OpenCode's data directly (the database opencode.db, or the storage/ tree of versions
/// before 1.2), so OpenCode need not be running. Shows each session's id, when it was last
/// updated, how many messages it has, its title and the directory OpenCode ran in. Any of the
/// ids, or an unambiguous prefix of one, can be given to `bshare share`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    opencode: OpenCodeArgs,
    /// Also list the sessions of subagents (marked ↳), which belong to another session
    #[arg(long)]
    all: bool,
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.opencode.open()?;
    let mut sessions = data.sessions()?;
    if !args.all {
        sessions.retain(|s| s.parent_id.is_none());
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &sessions)?;
        writeln!(out)?;
    } else if sessions.is_empty() {
        eprintln!("OpenCode has no sessions in {}", data.dir().display());
    } else {
        out.write_all(sessions_table(&sessions, now_millis()).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
