//! `bshare share`.

use anyhow::Context as _;
use bshare::client::Client;
use bshare::desktop::{self, Copied};
use bshare::opencode::find_session;
use bshare::sharing::{default_session, share_session};

use crate::common::{self, OpenCodeArgs, ServerArgs};

/// Share an OpenCode session and print its link.
///
/// Reads the session from OpenCode's data, uploads it to the bshare server and records the
/// share (with the secret that can update or delete it) in the local registry,
/// $XDG_DATA_HOME/bshare/shares.json. Without SESSION it shares the most recently updated
/// session of the project the current directory belongs to. A session already shared on that
/// server is uploaded again instead of shared twice, and keeps its link.
#[derive(clap::Args)]
pub struct Args {
    /// Session id, or an unambiguous prefix of one (`bshare sessions` lists them)
    session: Option<String>,
    /// Also put the link on the clipboard (wl-copy, xclip, xsel, pbcopy, clip.exe, or the
    /// terminal's OSC 52)
    #[arg(long)]
    copy: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.server.server)?;
    let data = args.opencode.open()?;
    let sessions = data.sessions()?;
    let session = match &args.session {
        Some(arg) => find_session(&sessions, arg)?,
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            default_session(&sessions, &cwd).with_context(|| {
                format!(
                    "OpenCode has no session in the project of {}; name one (`bshare sessions` lists them)",
                    cwd.display()
                )
            })?
        }
    };
    let registry = common::registry_path()?;
    let shared = share_session(
        &client,
        &registry,
        &data,
        &session.id,
        &mut common::progress(),
    )?;
    let verb = if shared.created {
        "Shared"
    } else {
        "Already shared; updated"
    };
    let note = shared
        .subagents_note()
        .map_or(String::new(), |n| format!(", {n}"));
    eprintln!(
        "{verb} \"{}\" ({} messages, {} KiB{note})",
        session.title,
        session.messages,
        shared.bytes.div_ceil(1024)
    );
    println!("{}", shared.share.url);
    if args.copy {
        match desktop::copy_to_clipboard(&shared.share.url) {
            Ok(Copied::Program(p)) => eprintln!("Link copied to the clipboard ({p})."),
            Ok(Copied::Osc52) => eprintln!("Link sent to the terminal's clipboard (OSC 52)."),
            Err(e) => eprintln!("Could not copy the link: {e}"),
        }
    }
    Ok(())
}
