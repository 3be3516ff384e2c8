//! Flags several subcommands share, and the upload progress line.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use bshare::client::DEFAULT_SERVER;
use bshare::opencode::{OpenCodeData, OpenCodeError};

#[derive(clap::Args)]
pub struct OpenCodeArgs {
    /// OpenCode's data directory, the one holding opencode.db (OpenCode 1.2 and later) or
    /// storage/ (older versions) [default: $XDG_DATA_HOME/opencode]
    #[arg(long, env = "BSHARE_OPENCODE_DIR", value_name = "DIR")]
    pub opencode_dir: Option<PathBuf>,
}

impl OpenCodeArgs {
    pub fn open(&self) -> anyhow::Result<OpenCodeData> {
        Ok(OpenCodeData::locate(self.opencode_dir.as_deref())?)
    }

    /// `None` when there is no OpenCode data at all: shares stay listable, openable and
    /// removable without it.
    pub fn open_optional(&self) -> anyhow::Result<Option<OpenCodeData>> {
        match OpenCodeData::locate(self.opencode_dir.as_deref()) {
            Ok(data) => Ok(Some(data)),
            Err(OpenCodeError::NoData { .. } | OpenCodeError::NoHome) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[derive(clap::Args)]
pub struct ServerArgs {
    /// The bshare server to share on
    #[arg(long, env = "BETTER_SHARE_BASE_URL", default_value = DEFAULT_SERVER, value_name = "URL")]
    pub server: String,
}

/// Uploads smaller than this finish before a progress line would be worth reading.
const PROGRESS_FROM: u64 = 512 * 1024;

/// A progress callback drawing one line on stderr, only when stderr is a terminal.
pub fn progress() -> impl FnMut(u64, u64) {
    let show = std::io::stderr().is_terminal();
    let mut last_percent = u64::MAX;
    move |sent, total| {
        if !show || total < PROGRESS_FROM {
            return;
        }
        let percent = sent * 100 / total.max(1);
        if percent == last_percent {
            return;
        }
        last_percent = percent;
        let mib = |n: u64| n as f64 / (1024.0 * 1024.0);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[Kuploading {:.1} / {:.1} MiB ({percent}%)",
            mib(sent),
            mib(total)
        );
        if sent >= total {
            let _ = write!(err, "\r\x1b[K");
        }
        let _ = err.flush();
    }
}

pub fn registry_path() -> anyhow::Result<PathBuf> {
    Ok(bshare::registry::default_path()?)
}

/// Redaction before upload (on by default; see the README's Privacy section).
#[derive(clap::Args)]
pub struct PrivacyArgs {
    /// Upload the session as it is, without removing API keys, tokens, passwords and private
    /// keys first. Only for sessions you have checked yourself; a warning is printed.
    #[arg(long, env = "BSHARE_NO_REDACT", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_redact: bool,
    /// Also write paths under your home directory as ~/… (hides your user name)
    #[arg(long, env = "BSHARE_REDACT_HOME", value_parser = clap::builder::FalseyValueParser::new())]
    pub redact_home: bool,
}

impl PrivacyArgs {
    /// The policy, warning on stderr when redaction is off.
    pub fn privacy(&self) -> bshare::sharing::Privacy {
        if self.no_redact {
            eprintln!(
                "warning: --no-redact: the session is uploaded as it is, with any API keys, tokens and passwords it holds"
            );
        }
        bshare::sharing::Privacy {
            redact: !self.no_redact,
            home: self
                .redact_home
                .then(std::env::home_dir)
                .flatten()
                .and_then(|h| h.to_str().map(str::to_owned)),
        }
    }
}

/// One line per kind of secret removed, for the summary after an upload.
pub fn report_removed(report: &bshare::redact::Report) {
    let total = report.total();
    if total == 0 {
        return;
    }
    let kinds: Vec<String> = report
        .counts
        .iter()
        .map(|(rule, n)| format!("{n} {rule}"))
        .collect();
    eprintln!(
        "Removed {total} secret{} before upload: {}",
        if total == 1 { "" } else { "s" },
        kinds.join(", ")
    );
}
