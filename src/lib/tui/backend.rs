//! What the TUI needs from the outside world (the registry, the server, OpenCode's storage, the
//! browser, the clipboard), behind one trait so the screen logic is tested without any of them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::model::ShareData;
use crate::registry::{self, Entry};

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
            .finish_non_exhaustive()
    }
}

impl From<Entry> for ShareRow {
    fn from(e: Entry) -> Self {
        Self {
            share_id: e.share_id,
            session_id: e.session_id,
            title: e.title,
            url: e.url,
            server: e.server,
            secret: e.secret,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// The TUI's view of the world. Every method may block (disk, network, child processes); the TUI
/// calls them on worker threads only, never on the thread that draws.
pub trait Backend: Send + Sync + 'static {
    /// Every share the user has made.
    fn load_shares(&self) -> Result<Vec<ShareRow>, String>;
    /// The session to preview: the local copy when there is one, else the server's.
    fn load_document(&self, row: &ShareRow) -> Result<ShareData, String>;
    /// Whether the local session changed since the last upload; `None` when unknown (the
    /// session is not on this machine, or this backend cannot tell).
    fn local_changed(&self, row: &ShareRow) -> Option<bool>;
    /// Upload the local session again; answers a sentence for the status line.
    fn resync(&self, row: &ShareRow) -> Result<String, String>;
    /// Delete the share on its server and from the registry; answers a sentence for the status line.
    fn unshare(&self, row: &ShareRow) -> Result<String, String>;
    /// Open the share page in the browser.
    fn open(&self, row: &ShareRow) -> Result<(), String>;
    /// Put the share's link on the clipboard.
    fn copy_link(&self, row: &ShareRow) -> Result<(), String>;
}

/// A backend that needs nothing but the registry file and the share servers' public API: it
/// lists shares and previews them. Re-sync, unshare, open and copy need the CLI operations and
/// answer an explanation instead.
pub struct RegistryBackend {
    path: PathBuf,
    agent: ureq::Agent,
}

impl RegistryBackend {
    pub fn new(path: PathBuf) -> Self {
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
        Self { path, agent }
    }

    fn not_available(what: &str) -> String {
        format!("{what} is not available in this build of bshare")
    }
}

impl Backend for RegistryBackend {
    fn load_shares(&self) -> Result<Vec<ShareRow>, String> {
        let registry = registry::load(&self.path).map_err(|e| e.to_string())?;
        Ok(registry.shares.into_iter().map(ShareRow::from).collect())
    }

    fn load_document(&self, row: &ShareRow) -> Result<ShareData, String> {
        fetch_document(&self.agent, row)
    }

    fn local_changed(&self, _row: &ShareRow) -> Option<bool> {
        None
    }

    fn resync(&self, _row: &ShareRow) -> Result<String, String> {
        Err(Self::not_available("re-sync"))
    }

    fn unshare(&self, _row: &ShareRow) -> Result<String, String> {
        Err(Self::not_available("unshare"))
    }

    fn open(&self, _row: &ShareRow) -> Result<(), String> {
        Err(Self::not_available("opening in the browser"))
    }

    fn copy_link(&self, _row: &ShareRow) -> Result<(), String> {
        Err(Self::not_available("copying the link"))
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
        let backend = RegistryBackend::new(PathBuf::from("/nonexistent/shares.json"));
        let row = ShareRow {
            share_id: "abcdefgh".into(),
            session_id: String::new(),
            title: String::new(),
            url: String::new(),
            server: format!("https://127.0.0.1:{port}"),
            secret: String::new(),
            created_at: 0,
            updated_at: 0,
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
        };
        let err = fetch_document(&agent, &row).unwrap_err();
        assert!(err.contains("not a valid share id"), "{err}");
    }
}
