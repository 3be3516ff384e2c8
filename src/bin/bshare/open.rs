//! `bshare open`.

use bshare::desktop;
use bshare::sharing::{list_shares, resolve};

use crate::common::{self, OpenCodeArgs};

/// Open a share's page in the browser.
///
/// Uses xdg-open, wslview or open (or the program in BSHARE_OPENER); when none works, prints
/// the link instead so it can be opened by hand.
#[derive(clap::Args)]
pub struct Args {
    /// The share: its link, its id, or an unambiguous prefix of the id
    share: String,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let data = args.opencode.open_optional()?;
    let shares = list_shares(&common::registry_path()?, data.as_ref())?;
    let share = resolve(&shares, &args.share)?;
    if desktop::open_url(&share.url)? {
        eprintln!("Opened {}", share.url);
    } else {
        println!("{}", share.url);
    }
    Ok(())
}
