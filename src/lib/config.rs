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
    /// Bytes of cached views (pages, transcripts, documents) kept in memory.
    pub page_cache_bytes: usize,
    /// Bytes of large cached views kept in files under `<data dir>/cache`; 0: none kept on disk.
    pub page_cache_disk_bytes: u64,
    /// Cache misses (renders) per client address per minute.
    pub page_miss_limit_per_minute: u32,
    /// The bounds of the HTTP edge.
    pub edge: EdgeConfig,
    /// Lifetime of a share created without `expiresIn`; `None`: it lives until deleted (or for
    /// `max_expiry`, when that is set).
    pub default_expiry: Option<Duration>,
    /// Longest lifetime a share may have; `None`: no bound.
    pub max_expiry: Option<Duration>,
    /// How often expired shares' documents are deleted.
    pub sweep_interval: Duration,
    /// SHA-256 of each accepted create token; empty: anyone may create shares.
    pub create_token_hashes: Vec<[u8; 32]>,
    /// Whether OpenCode's sync batches are redacted before they are merged (DESIGN.md §3a).
    pub redact_sync: bool,
}

impl ServerConfig {
    pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 50 * 1024 * 1024;
    pub const DEFAULT_MAX_API_BODY_BYTES: u64 = 64 * 1024;
    /// Upload URLs live 10 minutes: a client uploads at once, and a URL issued before a delete
    /// can recreate an object only that long (the sweep then removes it again).
    pub const DEFAULT_UPLOAD_URL_SECS: u64 = 600;

    /// The lifetime bound used when a share asks for none and no bound is set at all: long enough
    /// to mean "forever", short enough that epoch milliseconds cannot overflow.
    pub const UNBOUNDED_EXPIRY: Duration = Duration::from_secs(100 * 365 * 86_400);

    /// The lifetime of a new share that asked for `requested` seconds: within 1..=`max_expiry`,
    /// else a sentence saying what is allowed. `None`: the share does not expire.
    pub fn share_lifetime(&self, requested: Option<u64>) -> Result<Option<Duration>, String> {
        let max = self.max_expiry.unwrap_or(Self::UNBOUNDED_EXPIRY);
        match requested {
            Some(0) => Err("expiresIn must be at least 1 second".into()),
            Some(secs) if secs > max.as_secs() => Err(format!(
                "expiresIn is {secs} seconds, over this server's maximum of {} seconds ({})",
                max.as_secs(),
                format_duration(max)
            )),
            Some(secs) => Ok(Some(Duration::from_secs(secs))),
            None => Ok(self.default_expiry.or(self.max_expiry)),
        }
    }

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

impl ServerConfig {
    /// The embedded default (SQLite and local disk under `dir`) with the built-in limits, bound
    /// to a free loopback port: for tests and fuzzing. `bshare serve` builds its own from flags.
    pub fn embedded(dir: &std::path::Path) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            base_url: None,
            data_dir: dir.to_owned(),
            database: DatabaseConfig::Sqlite {
                path: dir.join("bshare.db"),
            },
            objects: ObjectConfig::Local {
                dir: dir.join("objects"),
            },
            workers: 8,
            max_document_bytes: Self::DEFAULT_MAX_DOCUMENT_BYTES,
            max_api_body_bytes: Self::DEFAULT_MAX_API_BODY_BYTES,
            upload_url_lifetime: Duration::from_secs(Self::DEFAULT_UPLOAD_URL_SECS),
            create_limit_per_hour: 10,
            request_limit_per_minute: 100,
            trusted_proxies: Vec::new(),
            page_cache_bytes: 16 << 20,
            page_cache_disk_bytes: 1 << 30,
            page_miss_limit_per_minute: 60,
            edge: EdgeConfig::default(),
            redact_sync: true,
            default_expiry: None,
            max_expiry: None,
            sweep_interval: Duration::from_secs(10),
            create_token_hashes: Vec::new(),
        }
    }
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

/// A duration as people write it: a whole number with an optional unit, `s` (the default), `m`,
/// `h`, `d` or `w`: `90`, `30m`, `12h`, `7d`, `2w`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    let n: u64 = digits.parse().map_err(|_| {
        format!(
            "{text:?} is not a duration; write a whole number with s, m, h, d or w, like 12h or 7d"
        )
    })?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?}; use s, m, h, d or w, like 12h or 7d"
            ));
        }
    };
    let secs = n
        .checked_mul(scale)
        .filter(|&s| s > 0 && s <= ServerConfig::UNBOUNDED_EXPIRY.as_secs())
        .ok_or_else(|| format!("{text:?} must be between 1 second and 100 years"))?;
    Ok(Duration::from_secs(secs))
}

/// A duration in its largest whole unit: `7d`, `12h`, `90s`.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, scale) in [("w", 7 * 86_400), ("d", 86_400), ("h", 3600), ("m", 60)] {
        if secs >= scale && secs.is_multiple_of(scale) {
            return format!("{}{unit}", secs / scale);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_format() {
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("7y").is_err());
        assert!(parse_duration("d").is_err());
        assert!(parse_duration("99999999999999d").is_err());
        assert_eq!(format_duration(Duration::from_secs(7 * 86_400)), "1w");
        assert_eq!(format_duration(Duration::from_secs(43_200)), "12h");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
    }
}
