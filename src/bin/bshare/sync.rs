//! `bshare sync`.

use bshare::sharing::{Origin, list_shares, resolve, sync_share};

use crate::common::{self, OpenCodeArgs, PrivacyArgs};

/// Upload the current state of shared sessions again.
///
/// A share's link stays the same; the page shows the session as it is now in OpenCode. Each
/// share goes to the server it was made on, with the secret recorded in the registry. Shares
/// OpenCode made itself are kept up to date by OpenCode and are left alone. Secrets are
/// removed before upload, as with `bshare share`.
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("which").required(true))]
pub struct Args {
    /// The share: its link, its id, or an unambiguous prefix of the id
    #[arg(group = "which")]
    share: Option<String>,
    /// Re-sync every share in the registry whose session OpenCode still has
    #[arg(long, group = "which")]
    all: bool,
    #[command(flatten)]
    privacy: PrivacyArgs,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.opencode.open()?;
    let registry = common::registry_path()?;
    let shares = list_shares(&registry, Some(&data))?;
    let targets: Vec<_> = match &args.share {
        Some(arg) => vec![resolve(&shares, arg)?.clone()],
        None => shares
            .into_iter()
            .filter(|s| s.origin == Origin::Bshare)
            .collect(),
    };
    let privacy = args.privacy.privacy();
    let mut failed = 0;
    for share in &targets {
        if args.all && share.session_exists == Some(false) {
            eprintln!(
                "skipped {}: OpenCode no longer has its session (`bshare unshare {}` takes it down)",
                share.share_id, share.share_id
            );
            continue;
        }
        match sync_share(&registry, &data, share, &privacy, &mut common::progress()) {
            Ok(synced) => {
                let note = synced
                    .subagents_note()
                    .map_or(String::new(), |n| format!(" ({n})"));
                let s = &synced.share;
                eprintln!("synced {} \"{}\": {}{note}", s.share_id, s.title, s.url);
                common::report_removed(&synced.report);
            }
            Err(e) if !args.all => return Err(e.into()),
            Err(e) => {
                failed += 1;
                eprintln!("failed {}: {e}", share.share_id);
            }
        }
    }
    if args.all && targets.is_empty() {
        eprintln!("No shares to sync; `bshare share` makes one.");
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} shares could not be synced, see above",
            targets.len()
        );
    }
    Ok(())
}
