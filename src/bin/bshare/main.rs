//! The `bshare` command: parses arguments, calls into the library, turns errors into exit codes.

mod serve;
mod tui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Share OpenCode sessions from your own server.
#[derive(Parser)]
#[command(name = "bshare", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at startup: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the share server (API and share pages).
    Serve(serve::Args),
    /// Browse, preview and manage your shares in the terminal.
    Tui(tui::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Tui(args) => tui::run(args),
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
