//! `bshare plugin install`: puts the OpenCode plugin where OpenCode loads it.

use std::path::PathBuf;

use anyhow::Context;
use bshare::plugin_install::{self, Target};

/// Install the OpenCode plugin where OpenCode loads it.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Install the plugin into OpenCode's config directory (~/.config/opencode), or into a
    /// project's .opencode/ with --project.
    Install(InstallArgs),
}

#[derive(clap::Args)]
struct InstallArgs {
    /// Install into <DIR>/.opencode/ (default: the current directory) instead of the user's
    /// OpenCode config directory.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    project: Option<PathBuf>,
    /// Overwrite plugin files that bshare did not write.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Install(args) => install(args),
    }
}

fn install(args: InstallArgs) -> anyhow::Result<()> {
    let target = match args.project {
        Some(dir) => Target::Project(
            std::path::absolute(&dir)
                .with_context(|| format!("cannot resolve {}", dir.display()))?,
        ),
        None => Target::global_from_env()?,
    };
    let report = plugin_install::install(&target, args.force)?;
    print!("{report}");
    Ok(())
}
