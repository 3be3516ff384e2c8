//! `bshare share`.

use anyhow::Context as _;
use bshare::client::Client;
use bshare::desktop::{self, Copied};
use bshare::opencode::find_session;
use bshare::sharing::{Review, default_session, review_session, share_session};

use crate::common::{self, OpenCodeArgs, PrivacyArgs, ServerArgs};

/// Share an OpenCode session and print its link.
///
/// Reads the session from OpenCode's data, uploads it to the bshare server and records the
/// share (with the secret that can update or delete it) in the local registry,
/// $XDG_DATA_HOME/bshare/shares.json. Without SESSION it shares the most recently updated
/// session of the project the current directory belongs to. A session already shared on that
/// server is uploaded again instead of shared twice, and keeps its link.
///
/// API keys, tokens, passwords, private keys and URLs with passwords are replaced by
/// [REDACTED:<rule>] before anything is uploaded; --dry-run shows what would be sent.
#[derive(clap::Args)]
pub struct Args {
    /// Session id, or an unambiguous prefix of one (`bshare sessions` lists them)
    session: Option<String>,
    /// Also put the link on the clipboard (wl-copy, xclip, xsel, pbcopy, clip.exe, or the
    /// terminal's OSC 52)
    #[arg(long)]
    copy: bool,
    /// Let the share expire after this long, like 7d, 12h or 30m (the server may cap it, and may
    /// set a default of its own); the page is then gone and the server deletes the session.
    /// Applies when the share is made, not to a session already shared
    #[arg(long, value_name = "DURATION", value_parser = expiry)]
    expires: Option<std::time::Duration>,
    /// Create token, for a server that lets only holders of one create shares
    /// (`bshare serve --create-token`)
    #[arg(
        long,
        env = "BSHARE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Print what would be uploaded and where (size, messages, each secret that would be removed,
    /// masked), and upload nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    privacy: PrivacyArgs,
    #[command(flatten)]
    server: ServerArgs,
    #[command(flatten)]
    opencode: OpenCodeArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let client = Client::new(&args.server.server)?
        .with_expiry(args.expires.map(|d| d.as_secs()))
        .with_token(args.token);
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
    let privacy = args.privacy.privacy();
    if args.dry_run {
        let review = review_session(client.server(), &registry, &data, &session.id, &privacy)?;
        print_review(&review);
        return Ok(());
    }
    let shared = share_session(
        &client,
        &registry,
        &data,
        &session.id,
        &privacy,
        &mut common::progress(),
    )?;
    common::report_removed(&shared.report);
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
    if !shared.created && args.expires.is_some() {
        eprintln!(
            "Note: --expires applies to new shares; this one keeps the expiry it was made with."
        );
    }
    if let Some(at) = shared.share.expires_at {
        eprintln!(
            "Expires {} ({} UTC).",
            bshare::listing::expires(Some(at), bshare::model::now_millis()),
            bshare::calendar::utc_date(at)
        );
    }
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

fn expiry(text: &str) -> Result<std::time::Duration, String> {
    bshare::config::parse_duration(text)
}

/// The review `--dry-run` prints: where, how much, and each secret that would be removed.
fn print_review(review: &Review) {
    let target = match &review.share_id {
        Some(id) => format!("{} (share {id}, updated in place)", review.server),
        None => format!("{} (a new share)", review.server),
    };
    println!("Would upload \"{}\" to {target}", review.title);
    let subagents = match review.subagents {
        0 => String::new(),
        1 => ", with 1 subagent session".to_owned(),
        n => format!(", with {n} subagent sessions"),
    };
    println!(
        "  {} messages{subagents}, {} KiB ({} bytes)",
        review.messages,
        review.bytes.div_ceil(1024),
        review.bytes
    );
    if !review.redact {
        println!("  Redaction is off: nothing would be removed.");
    } else if review.report.findings.is_empty() {
        println!("  No secrets found.");
    } else {
        println!(
            "  {} secret{} would be removed:",
            review.report.total(),
            if review.report.total() == 1 { "" } else { "s" }
        );
        for f in &review.report.findings {
            let place = f
                .message
                .map_or_else(|| "session".to_owned(), |n| format!("message {n}"));
            println!("    {:<24} {:<12} {}", f.rule, place, f.excerpt);
        }
    }
    println!("Nothing was uploaded (--dry-run).");
}
