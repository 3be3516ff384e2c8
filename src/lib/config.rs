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
    /// The bounds of the HTTP edge.
    pub edge: EdgeConfig,
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

/// The bounds of the HTTP edge: what one client can hold of the server (see `bshare serve
/// --help`). Each connection holds one descriptor and one small thread, never a worker while
/// its request or its response is on the wire.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Open connections at most; beyond, a new connection gets a fast 503.
    pub max_connections: usize,
    /// A keep-alive connection with no request under way is closed after this long.
    pub idle_timeout: Duration,
    /// A request's head must arrive within this long of its first byte.
    pub header_timeout: Duration,
    /// After a 10 s grace, a body (or a response read slowly) must move this many bytes a
    /// second.
    pub min_body_rate: u64,
    /// On SIGTERM, requests under way get this long to finish.
    pub drain_timeout: Duration,
    /// Open event streams (live pages) at most; they hold no worker and no connection thread,
    /// only a descriptor each. Beyond, `/events` answers 503 and the page polls instead.
    pub max_event_streams: usize,
    /// A keep-alive comment goes to every event stream this often.
    pub event_keepalive: Duration,
}

impl EdgeConfig {
    pub const DEFAULT_IDLE_SECS: u64 = 15;
    pub const DEFAULT_HEADER_SECS: u64 = 10;
    pub const DEFAULT_MIN_BODY_RATE: u64 = 16 * 1024;
    pub const DEFAULT_MAX_EVENT_STREAMS: usize = 1000;
    pub const DEFAULT_EVENT_KEEPALIVE_SECS: u64 = 25;
    /// Connections allowed by default: what the descriptor limit leaves after the stores'
    /// own descriptors, at most 4,096.
    pub fn default_max_connections(descriptor_limit: u64) -> usize {
        descriptor_limit.saturating_sub(256).clamp(16, 4096) as usize
    }
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(Self::DEFAULT_IDLE_SECS),
            header_timeout: Duration::from_secs(Self::DEFAULT_HEADER_SECS),
            min_body_rate: Self::DEFAULT_MIN_BODY_RATE,
            drain_timeout: Duration::from_secs(10),
            max_event_streams: Self::DEFAULT_MAX_EVENT_STREAMS,
            event_keepalive: Duration::from_secs(Self::DEFAULT_EVENT_KEEPALIVE_SECS),
        }
    }
}
