//! The `bshare` command: parses arguments, calls into the library, turns errors into exit codes.

mod common;
mod ls;
mod open;
mod plugin;
mod serve;
mod sessions;
mod share;
mod sync;
mod tui;
mod unshare;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Share OpenCode sessions from your own server.
#[derive(Parser)]
#[command(name = "bshare", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per run; the size of the `serve` flags does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the share server (API and share pages).
    Serve(serve::Args),
    // The help of each subcommand is the doc comment of its `Args`.
    Sessions(sessions::Args),
    Share(share::Args),
    Ls(ls::Args),
    Sync(sync::Args),
    Unshare(unshare::Args),
    Open(open::Args),
    Tui(tui::Args),
    Plugin(plugin::Args),
}

/// jemalloc rather than glibc's malloc. A fill of a large session's page, or a sync of a whole
/// session, allocates and frees tens of megabytes; glibc kept them resident (a heap is given back
/// only from its top, and each thread's arena keeps its own peak), so the server stayed at the
/// sum of its threads' largest peaks. jemalloc, as `.cargo/config.toml` builds it, gives freed
/// pages back from a background thread within a second.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Sessions(args) => sessions::run(args),
        Command::Share(args) => share::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Unshare(args) => unshare::run(args),
        Command::Open(args) => open::run(args),
        Command::Tui(args) => tui::run(args),
        Command::Plugin(args) => plugin::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // `bshare ls | head` closing the pipe early is not a failure.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("bshare: {err:#}");
            ExitCode::FAILURE
        }
    }
}
