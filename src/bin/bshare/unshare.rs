//! `bshare unshare`.

use bshare::sharing::{Origin, Unshared, list_shares, resolve, unshare};

use crate::common::{self, OpenCodeArgs};

/// Take a share down: the server deletes it and the link stops working.
///
/// Works whether or not OpenCode still has the session. The share is removed from the local
/// registry too; a share the server no longer knows is simply removed from the registry. Shares
/// OpenCode made itself can be taken down as well (with the secret OpenCode recorded); OpenCode
/// keeps showing their link until /unshare is run in it.
#[derive(clap::Args)]
pub struct Args {
    /// The share: its link, its id, or an unambiguous prefix of the id
    share: String,
    /// Only forget the share here, without asking the server (for a server that is gone for
    /// good); the link keeps working if the server is still up
    #[arg(long)]
    local_only: bool,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.opencode.open_optional()?;
    let registry = common::registry_path()?;
    let shares = list_shares(&registry, data.as_ref())?;
    let share = resolve(&shares, &args.share)?;
    match unshare(&registry, share, args.local_only)? {
        Unshared::Deleted => eprintln!("Took down {}", share.url),
        Unshared::AlreadyGone => eprintln!(
            "{} was already gone from the server; removed it from your list",
            share.url
        ),
        Unshared::Forgotten => eprintln!(
            "Forgot {} without asking the server; if the server is up, the link still works",
            share.url
        ),
    }
    if share.origin == Origin::OpenCode {
        eprintln!("OpenCode still shows this link for its session until you run /unshare in it.");
    }
    Ok(())
}
