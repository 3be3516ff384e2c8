//! What the TUI needs from the outside world (the registry, the server, OpenCode's storage, the
//! browser, the clipboard), behind one trait so the screen logic is tested without any of them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::desktop;
use crate::model::ShareData;
use crate::opencode::{OpenCodeData, OpenCodeError};
use crate::registry::Entry;
use crate::sharing::{
    Origin, Privacy, Review, Share, Unshared, list_shares, review_session, sync_share, unshare,
};

/// Identifies a share across reloads: the same id may exist on two servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RowKey {
    pub server: String,
    pub share_id: String,
}

/// One share as the list shows it.
#[derive(Clone, PartialEq)]
pub struct ShareRow {
    pub share_id: String,
    pub session_id: String,
    pub title: String,
    pub url: String,
    pub server: String,
    /// Empty when this client does not hold the share's secret.
    pub secret: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds of the last successful upload.
    pub updated_at: i64,
    /// Made by OpenCode's own /share (which keeps it in sync itself), not by bshare.
    pub made_by_opencode: bool,
    /// When the share expires (epoch ms); `None`: never, or not known.
    pub expires_at: Option<i64>,
}

impl ShareRow {
    pub fn key(&self) -> RowKey {
        RowKey {
            server: self.server.clone(),
            share_id: self.share_id.clone(),
        }
    }
}

// Written by hand so that a stray `{:?}` never prints a secret.
impl fmt::Debug for ShareRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareRow")
            .field("share_id", &self.share_id)
            .field("session_id", &self.session_id)
            .field("title", &self.title)
            .field("url", &self.url)
            .field("server", &self.server)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("made_by_opencode", &self.made_by_opencode)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<Entry> for ShareRow {
    fn from(e: Entry) -> Self {
        Self {
            expires_at: e.expires_at(),
            share_id: e.share_id,
            session_id: e.session_id,
            title: e.title,
            url: e.url,
            server: e.server,
            secret: e.secret,
            created_at: e.created_at,
            updated_at: e.updated_at,
            made_by_opencode: false,
        }
    }
}

impl From<Share> for ShareRow {
    fn from(s: Share) -> Self {
        Self {
            made_by_opencode: s.origin == Origin::OpenCode,
            expires_at: s.expires_at,
            share_id: s.share_id,
            session_id: s.session_id,
            title: s.title,
            url: s.url,
            server: s.server,
            secret: s.secret,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// How a share's session on this machine compares with what was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalState {
    /// Changed since the last upload: a re-sync would publish something new.
    Changed,
    Same,
    /// OpenCode no longer has the session.
    Gone,
    /// Cannot tell (no OpenCode data here, or it could not be read).
    Unknown,
}

/// The TUI's view of the world. Every method may block (disk, network, child processes); the TUI
/// calls them on worker threads only, never on the thread that draws.
pub trait Backend: Send + Sync + 'static {
    /// Every share the user has made.
    fn load_shares(&self) -> Result<Vec<ShareRow>, String>;
    /// The session to preview: the local copy when there is one, else the server's.
    fn load_document(&self, row: &ShareRow) -> Result<ShareData, String>;
    /// For each row, how its local session compares with the last upload. One call for all
    /// rows, so a backend reads OpenCode's session list once, not once per share.
    fn local_states(&self, rows: &[ShareRow]) -> Vec<LocalState>;
    /// What uploading the local session again would send (size, messages, each secret that
    /// redaction would remove), without sending anything.
    fn review(&self, row: &ShareRow) -> Result<Review, String>;
    /// Upload the local session again; answers a sentence for the status line.
    fn resync(&self, row: &ShareRow) -> Result<String, String>;
    /// Delete the share on its server and from the registry; answers a sentence for the status line.
    fn unshare(&self, row: &ShareRow) -> Result<String, String>;
    /// Open the share page in the browser.
    fn open(&self, row: &ShareRow) -> Result<(), String>;
    /// Put the share's link on the clipboard; answers a sentence for the status line.
    fn copy_link(&self, row: &ShareRow) -> Result<String, String>;
}

/// The real world: the registry, OpenCode's data directory, the share servers, the browser and
/// the clipboard, through the same library calls as `bshare ls | sync | unshare | open`.
pub struct CliBackend {
    registry: PathBuf,
    /// `None`: OpenCode's default directory.
    opencode_dir: Option<PathBuf>,
    agent: ureq::Agent,
    /// The shares as last listed, with what the library needs to act on them (their origin).
    shares: Mutex<Vec<Share>>,
    /// Redaction of every upload (on unless the user opted out).
    privacy: Privacy,
}

impl CliBackend {
    /// With the user's redaction choice instead of the default (on).
    #[must_use]
    pub fn with_privacy(mut self, privacy: Privacy) -> Self {
        self.privacy = privacy;
        self
    }

    pub fn new(registry: PathBuf, opencode_dir: Option<PathBuf>) -> Self {
        // The crate builds ureq with native-tls only, which must be asked for by name, with the
        // platform's root certificates.
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            registry,
            opencode_dir,
            agent,
            shares: Mutex::new(Vec::new()),
            privacy: Privacy::default(),
        }
    }

    /// OpenCode's data, or `None` when this machine has none (shares stay listable without it).
    fn opencode(&self) -> Result<Option<OpenCodeData>, String> {
        match OpenCodeData::locate(self.opencode_dir.as_deref()) {
            Ok(data) => Ok(Some(data)),
            Err(OpenCodeError::NoData { .. } | OpenCodeError::NoHome) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn list(&self) -> Result<Vec<Share>, String> {
        let data = self.opencode()?;
        let shares = list_shares(&self.registry, data.as_ref()).map_err(|e| e.to_string())?;
        shares.clone_into(&mut self.shares.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(shares)
    }

    /// The library's view of a row, listing again if the row is newer than the last list.
    fn share(&self, row: &ShareRow) -> Result<Share, String> {
        let same = |s: &Share| s.server == row.server && s.share_id == row.share_id;
        let cached = self
            .shares
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|s| same(s))
            .cloned();
        if let Some(share) = cached {
            return Ok(share);
        }
        self.list()?
            .into_iter()
            .find(same)
            .ok_or_else(|| format!("{} is no longer in your list of shares", row.share_id))
    }
}

impl Backend for CliBackend {
    fn load_shares(&self) -> Result<Vec<ShareRow>, String> {
        Ok(self.list()?.into_iter().map(ShareRow::from).collect())
    }

    fn load_document(&self, row: &ShareRow) -> Result<ShareData, String> {
        // The local session is what a re-sync would publish, and needs no network.
        if let Some(data) = self.opencode()?
            && let Some(content) = data
                .load_with_children(&row.session_id, crate::sharing::DOCUMENT_LIMIT)
                .map_err(|e| e.to_string())?
        {
            return Ok(content.into_share_data(&row.share_id, row.created_at, row.updated_at));
        }
        fetch_document(&self.agent, row)
    }

    fn local_states(&self, rows: &[ShareRow]) -> Vec<LocalState> {
        let sessions = match self.opencode() {
            Ok(Some(data)) => data.sessions().ok(),
            _ => None,
        };
        let Some(sessions) = sessions else {
            return vec![LocalState::Unknown; rows.len()];
        };
        let updated: HashMap<&str, i64> = sessions
            .iter()
            .map(|s| (s.id.as_str(), s.updated))
            .collect();
        rows.iter()
            .map(|row| match updated.get(row.session_id.as_str()) {
                None => LocalState::Gone,
                Some(&t) if t > row.updated_at => LocalState::Changed,
                Some(_) => LocalState::Same,
            })
            .collect()
    }

    fn review(&self, row: &ShareRow) -> Result<Review, String> {
        let share = self.share(row)?;
        let data = self.opencode()?.ok_or_else(|| {
            "OpenCode's data is not on this machine, so there is nothing to upload".to_owned()
        })?;
        review_session(
            &share.server,
            &self.registry,
            &data,
            &share.session_id,
            &self.privacy,
        )
        .map_err(|e| e.to_string())
    }

    fn resync(&self, row: &ShareRow) -> Result<String, String> {
        let share = self.share(row)?;
        let data = self.opencode()?.ok_or_else(|| {
            "OpenCode's data is not on this machine, so there is nothing to upload".to_owned()
        })?;
        let synced = sync_share(&self.registry, &data, &share, &self.privacy, &mut |_, _| {})
            .map_err(|e| e.to_string())?;
        let removed = match synced.report.total() {
            0 => None,
            1 => Some("1 secret removed".to_owned()),
            n => Some(format!("{n} secrets removed")),
        };
        let notes: Vec<String> = synced.subagents_note().into_iter().chain(removed).collect();
        let note = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        let s = &synced.share;
        Ok(format!("Synced {} “{}”{note}.", s.share_id, s.title))
    }

    fn unshare(&self, row: &ShareRow) -> Result<String, String> {
        let share = self.share(row)?;
        let outcome = unshare(&self.registry, &share, false).map_err(|e| e.to_string())?;
        let mut msg = match outcome {
            Unshared::Deleted | Unshared::Forgotten => format!("Took down {}.", share.url),
            Unshared::AlreadyGone => format!(
                "{} was already gone from the server; removed it from your list.",
                share.url
            ),
        };
        if share.origin == Origin::OpenCode {
            msg.push_str(" OpenCode shows the link until you run /unshare in it.");
        }
        Ok(msg)
    }

    fn open(&self, row: &ShareRow) -> Result<(), String> {
        match desktop::open_url(&row.url) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!(
                "Found no browser to open it; the link is {}",
                row.url
            )),
            Err(e) => Err(format!(
                "Could not open the browser ({e}); the link is {}",
                row.url
            )),
        }
    }

    fn copy_link(&self, row: &ShareRow) -> Result<String, String> {
        match desktop::copy_to_clipboard(&row.url) {
            Ok(desktop::Copied::Program(_)) => Ok(format!("Copied {}", row.url)),
            // Written straight to the terminal, which may or may not honour it.
            Ok(desktop::Copied::Osc52) => Ok(format!(
                "Asked the terminal to copy {} (some terminals ignore that)",
                row.url
            )),
            Err(e) => Err(format!("Could not copy ({e}); the link is {}", row.url)),
        }
    }
}

/// `GET {server}/api/share/{id}`: the published document.
pub fn fetch_document(agent: &ureq::Agent, row: &ShareRow) -> Result<ShareData, String> {
    // The id goes into a URL path; a registry edited by hand must not be able to point elsewhere.
    if !crate::model::is_valid_share_id(&row.share_id) {
        return Err(format!("{:?} is not a valid share id", row.share_id));
    }
    let url = format!(
        "{}/api/share/{}",
        row.server.trim_end_matches('/'),
        row.share_id
    );
    let mut response = agent
        .get(&url)
        .call()
        .map_err(|e| format!("could not reach {}: {e}", row.server))?;
    let status = response.status();
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .map_err(|e| format!("could not read the answer from {}: {e}", row.server))?;
    if !status.is_success() {
        // The API answers `{"error": "..."}`; anything else is reported by its status alone.
        let reason = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| status.to_string());
        return Err(format!(
            "{} answered {}: {reason}",
            row.server,
            status.as_u16()
        ));
    }
    serde_json::from_slice(&body)
        .map_err(|e| format!("{} sent a document bshare cannot read: {e}", row.server))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let row = ShareRow {
            share_id: "abcdefgh".into(),
            session_id: "ses_1".into(),
            title: "t".into(),
            url: "u".into(),
            server: "s".into(),
            secret: "top-secret-value".into(),
            created_at: 0,
            updated_at: 0,
            made_by_opencode: false,
            expires_at: None,
        };
        assert!(!format!("{row:?}").contains("top-secret-value"));
    }

    #[test]
    fn https_servers_fail_with_a_sentence_not_a_panic() {
        // A server that accepts and hangs up: the TLS handshake fails.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(1) {
                drop(stream);
            }
        });
        let backend = CliBackend::new(
            PathBuf::from("/nonexistent/shares.json"),
            Some(PathBuf::from("/nonexistent/opencode")),
        );
        let row = ShareRow {
            share_id: "abcdefgh".into(),
            session_id: String::new(),
            title: String::new(),
            url: String::new(),
            server: format!("https://127.0.0.1:{port}"),
            secret: String::new(),
            created_at: 0,
            updated_at: 0,
            made_by_opencode: false,
            expires_at: None,
        };
        let err = backend.load_document(&row).unwrap_err();
        assert!(
            err.starts_with("could not reach https://127.0.0.1:"),
            "{err}"
        );
        assert!(
            backend.load_shares().unwrap().is_empty(),
            "no registry is no shares"
        );
    }

    #[test]
    fn invalid_ids_never_reach_a_url() {
        let agent = ureq::Agent::new_with_defaults();
        let row = ShareRow {
            share_id: "../../admin".into(),
            session_id: String::new(),
            title: String::new(),
            url: String::new(),
            server: "http://127.0.0.1:9".into(),
            secret: String::new(),
            created_at: 0,
            updated_at: 0,
            made_by_opencode: false,
            expires_at: None,
        };
        let err = fetch_document(&agent, &row).unwrap_err();
        assert!(err.contains("not a valid share id"), "{err}");
    }
}
