//! The server's validated configuration, built once by the binary and passed down.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where share metadata lives.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    Postgres { url: String },
    Sqlite { path: PathBuf },
}

/// How S3 requests address the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://endpoint/bucket/key` (MinIO, Garage, most self-hosted servers).
    Path,
    /// `https://bucket.endpoint/key` (AWS S3).
    VirtualHost,
}

#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// `None` means AWS S3 itself for `region`.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub addressing: Addressing,
    pub public_url: Option<String>,
}

impl std::fmt::Debug for S3Config {
    // Hand-written so the secret key can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("addressing", &self.addressing)
            .finish_non_exhaustive()
    }
}

/// Where session documents live.
#[derive(Debug, Clone)]
pub enum ObjectConfig {
    S3(S3Config),
    Local { dir: PathBuf },
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    /// Public URL of this server, without a trailing slash; `None` until the bound port is known.
    pub base_url: Option<String>,
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub objects: ObjectConfig,
    pub workers: usize,
    /// Largest session document accepted, in bytes.
    pub max_document_bytes: u64,
    /// Largest ordinary API request body, in bytes.
    pub max_api_body_bytes: u64,
    pub upload_url_lifetime: Duration,
    /// Share creations per client address per hour.
    pub create_limit_per_hour: u32,
    /// Other API requests per client address per minute.
    pub request_limit_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// Bytes of rendered pages kept in memory.
    pub page_cache_bytes: usize,
    /// Whether OpenCode's sync batches are redacted before they are merged (DESIGN.md §3a).
    pub redact_sync: bool,
}

impl ServerConfig {
    pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 50 * 1024 * 1024;
    pub const DEFAULT_MAX_API_BODY_BYTES: u64 = 64 * 1024;

    /// The public base URL (set once the server is bound).
    pub fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or("http://127.0.0.1:8080")
    }
}

/// The default data directory: `$XDG_DATA_HOME/bshare/server` or `~/.local/share/bshare/server`.
pub fn default_data_dir() -> Option<PathBuf> {
    xdg_dir("XDG_DATA_HOME", ".local/share").map(|dir| dir.join("bshare/server"))
}

/// An XDG base directory: `$var` when set and not empty, else `$HOME/<fallback>`; `None` when
/// neither is set.
pub fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(fallback))
}
