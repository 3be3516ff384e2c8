//! `bshare serve`: flags (each with its environment variable) into a validated `ServerConfig`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use bshare::config::{
    Addressing, DatabaseConfig, EdgeConfig, ObjectConfig, S3Config, ServerConfig,
};

/// Run the share server: the API, the share pages and (on the embedded default) the upload endpoint.
///
/// With no DATABASE_URL and no S3_BUCKET it runs on its own: share metadata in SQLite and documents
/// on disk, both in the data directory. Set DATABASE_URL for PostgreSQL and S3_BUCKET (with
/// S3_ENDPOINT and keys) for an S3-compatible bucket; several servers can then share them.
#[derive(clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, env = "BSHARE_BIND", default_value = "127.0.0.1:8080")]
    bind: String,

    /// Public URL of this server, used in share links and upload URLs
    /// [default: http://<bound address>].
    #[arg(long, env = "BASE_URL")]
    base_url: Option<String>,

    /// Where the embedded default keeps its database, documents and keys
    /// [default: $XDG_DATA_HOME/bshare/server, or ~/.local/share/bshare/server].
    #[arg(long, env = "BSHARE_DATA_DIR")]
    data_dir: Option<PathBuf>,

    /// PostgreSQL URL (postgres://user:password@host:5432/db); SQLite in the data directory when unset.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// S3 bucket for session documents; local disk in the data directory when unset.
    #[arg(long, env = "S3_BUCKET")]
    s3_bucket: Option<String>,

    /// S3 endpoint URL, e.g. https://<account>.r2.cloudflarestorage.com or http://127.0.0.1:9000
    /// [default: AWS S3].
    #[arg(long, env = "S3_ENDPOINT")]
    s3_endpoint: Option<String>,

    /// S3 region (`auto` for R2).
    #[arg(long, env = "S3_REGION", default_value = "auto")]
    s3_region: String,

    /// S3 access key id.
    #[arg(long, env = "S3_ACCESS_KEY_ID", hide_env_values = true)]
    s3_access_key_id: Option<String>,

    /// S3 secret access key.
    #[arg(long, env = "S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    s3_secret_access_key: Option<String>,

    /// How to address the bucket: `path` (endpoint/bucket/key) or `virtual` (bucket.endpoint/key)
    /// [default: path with S3_ENDPOINT, virtual for AWS].
    #[arg(long, env = "S3_ADDRESSING", value_parser = ["path", "virtual"])]
    s3_addressing: Option<String>,

    /// Public read URL of the bucket; when set, GET /api/share/:id redirects there.
    #[arg(long, env = "S3_PUBLIC_URL")]
    s3_public_url: Option<String>,

    /// Worker threads (each holds one database connection).
    #[arg(long, env = "BSHARE_WORKERS", default_value_t = 8)]
    workers: usize,

    /// Largest session document accepted, in bytes: no upload URL binds more, and no stored
    /// document larger is read (its page says it is too large).
    #[arg(long, env = "BSHARE_MAX_DOCUMENT_BYTES", default_value_t = ServerConfig::DEFAULT_MAX_DOCUMENT_BYTES)]
    max_document_bytes: u64,

    /// Share creations allowed per client address per hour (counted in the database).
    #[arg(long, env = "BSHARE_CREATE_LIMIT", default_value_t = 10)]
    create_limit: u32,

    /// Other API requests allowed per client address per minute.
    #[arg(long, env = "BSHARE_REQUEST_LIMIT", default_value_t = 100)]
    request_limit: u32,

    /// Address of a reverse proxy whose X-Forwarded-For is believed (repeat or comma-separate).
    #[arg(long, env = "BSHARE_TRUST_PROXY", value_delimiter = ',')]
    trust_proxy: Vec<IpAddr>,

    /// Lifetime of upload URLs, in seconds (at most an hour). An upload URL issued before its share
    /// was deleted can put an object back until it expires; the sweep removes such objects once
    /// the last URL has expired.
    #[arg(long, env = "BSHARE_UPLOAD_URL_TTL", default_value_t = ServerConfig::DEFAULT_UPLOAD_URL_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    upload_url_ttl: u64,

    /// Memory for cached views (rendered pages, transcripts, documents), in MiB. Views larger
    /// than an eighth of it are kept on disk instead.
    #[arg(long, env = "BSHARE_PAGE_CACHE_MB", default_value_t = 16)]
    page_cache_mb: usize,

    /// Disk for large cached views, in MiB, in <data dir>/cache (files unlinked at once: nothing
    /// stays there); 0 keeps none on disk.
    #[arg(long, env = "BSHARE_PAGE_CACHE_DISK_MB", default_value_t = 1024)]
    page_cache_disk_mb: u64,

    /// Cache misses (page renders, document reads) per client address per minute; more are
    /// answered 429 with Retry-After. Repeat views are hits and do not count.
    #[arg(long, env = "BSHARE_PAGE_MISS_LIMIT", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    page_miss_limit: u32,

    /// Open connections at most (each holds a descriptor and a small thread, never a worker
    /// while it waits); beyond, a new connection is answered 503 and closed
    /// [default: the descriptor limit, raised to its hard limit at start, less 256, at most 4096].
    #[arg(long, env = "BSHARE_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: Option<u64>,

    /// Seconds a keep-alive connection may stay idle between requests before it is closed.
    #[arg(long, env = "BSHARE_IDLE_TIMEOUT", default_value_t = EdgeConfig::DEFAULT_IDLE_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    idle_timeout: u64,

    /// Seconds a request's whole head (request line and headers) may take from its first byte;
    /// later is 408.
    #[arg(long, env = "BSHARE_HEADER_TIMEOUT", default_value_t = EdgeConfig::DEFAULT_HEADER_SECS, value_parser = clap::value_parser!(u64).range(1..=600))]
    header_timeout: u64,

    /// Bytes per second a request body (and a response the client reads slowly) must keep up
    /// after a 10 s grace; slower is cut off (408).
    #[arg(long, env = "BSHARE_MIN_BODY_RATE", default_value_t = EdgeConfig::DEFAULT_MIN_BODY_RATE, value_parser = clap::value_parser!(u64).range(1..))]
    min_body_rate: u64,
    /// Lifetime of a share whose client asks for none, like 7d, 12h, 30m or 90 (seconds)
    /// [default: none, shares live until deleted; with --max-expiry, that].
    #[arg(long, env = "BSHARE_DEFAULT_EXPIRY", value_name = "DURATION", value_parser = duration)]
    default_expiry: Option<Duration>,

    /// Longest lifetime a share may be given (expiresIn), like 30d; every share then expires
    /// [default: no limit].
    #[arg(long, env = "BSHARE_MAX_EXPIRY", value_name = "DURATION", value_parser = duration)]
    max_expiry: Option<Duration>,

    /// Only holders of this token may create shares (repeat or comma-separate for several). Clients
    /// send it as `Authorization: Bearer <token>` (bshare and the plugin read BSHARE_TOKEN); stock
    /// OpenCode gets it in its URL: "enterprise": {"url": "https://<host>/t/<token>"}. Viewing,
    /// re-sync, sync and delete stay as they are (the share's secret). Tokens are kept only as
    /// hashes and never logged [default: anyone may create].
    #[arg(
        long,
        env = "BSHARE_CREATE_TOKEN",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    create_token: Vec<String>,
    /// Merge OpenCode's sync batches as they come, without removing API keys, tokens and
    /// passwords first. Those batches come from stock OpenCode, which redacts nothing; a warning
    /// is printed at start.
    #[arg(long, env = "BSHARE_NO_REDACT_SYNC", value_parser = clap::builder::FalseyValueParser::new())]
    no_redact_sync: bool,

    /// Open event streams at most: each live page (`/share/<id>/events`) holds one descriptor,
    /// but no worker and no connection thread, and does not count against --max-connections.
    /// Beyond, the stream is answered 503 and the page checks for changes every 10 s instead.
    #[arg(long, env = "BSHARE_MAX_EVENT_STREAMS", default_value_t = EdgeConfig::DEFAULT_MAX_EVENT_STREAMS as u64, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    max_event_streams: u64,

    /// Seconds between keep-alive comments on event streams (for tests).
    #[arg(long, env = "BSHARE_EVENT_KEEPALIVE", default_value_t = EdgeConfig::DEFAULT_EVENT_KEEPALIVE_SECS, value_parser = clap::value_parser!(u64).range(1..=3600), hide = true)]
    event_keepalive: u64,
}

fn duration(text: &str) -> Result<Duration, String> {
    bshare::config::parse_duration(text)
}

/// How often expired shares' documents are deleted: an expired share answers 410 at once, and its
/// object is gone within this (plus one sweep's work).
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

fn config(args: Args) -> anyhow::Result<ServerConfig> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => bshare::config::default_data_dir()
            .context("cannot find a data directory: set --data-dir or BSHARE_DATA_DIR")?,
    };
    let database = match args.database_url.filter(|u| !u.is_empty()) {
        Some(url) => DatabaseConfig::Postgres { url },
        None => DatabaseConfig::Sqlite {
            path: data_dir.join("bshare.db"),
        },
    };
    let objects = match args.s3_bucket.filter(|b| !b.is_empty()) {
        Some(bucket) => {
            let (Some(access_key_id), Some(secret_access_key)) =
                (args.s3_access_key_id, args.s3_secret_access_key)
            else {
                bail!(
                    "S3_BUCKET is set, so S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY must be set too"
                );
            };
            let endpoint = args.s3_endpoint.filter(|e| !e.is_empty());
            if let Some(e) = endpoint
                .as_ref()
                .filter(|e| !(e.starts_with("http://") || e.starts_with("https://")))
            {
                bail!("S3_ENDPOINT must be a URL starting with http:// or https://, got {e:?}");
            }
            let addressing = match args.s3_addressing.as_deref() {
                Some("path") => Addressing::Path,
                Some(_) => Addressing::VirtualHost,
                None if endpoint.is_some() => Addressing::Path,
                None => Addressing::VirtualHost,
            };
            ObjectConfig::S3(S3Config {
                bucket,
                endpoint,
                region: args.s3_region,
                access_key_id,
                secret_access_key,
                addressing,
                public_url: args
                    .s3_public_url
                    .filter(|u| !u.is_empty())
                    .map(|u| u.trim_end_matches('/').to_owned()),
            })
        }
        None => ObjectConfig::Local {
            dir: data_dir.join("objects"),
        },
    };
    // Each connection holds a descriptor: take all the process may have.
    let descriptors = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let max_connections = match args.max_connections {
        Some(n) => {
            if n + 64 > descriptors {
                eprintln!(
                    "bshare: warning: --max-connections {n} does not fit the descriptor limit of \
                     {descriptors}; accepting will pause whenever descriptors run out. Raise the \
                     limit (ulimit -n, or LimitNOFILE= in the systemd unit) or choose at most {}",
                    descriptors.saturating_sub(64)
                );
            }
            n as usize
        }
        None => EdgeConfig::default_max_connections(descriptors),
    };
    if let (Some(default), Some(max)) = (args.default_expiry, args.max_expiry)
        && default > max
    {
        bail!(
            "--default-expiry ({}) is longer than --max-expiry ({}); shorten it or raise the maximum",
            bshare::config::format_duration(default),
            bshare::config::format_duration(max)
        );
    }
    let create_token_hashes = args
        .create_token
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| {
            if t.contains(['/', '?', '#', ' ']) || !t.is_ascii() {
                bail!("a --create-token may not contain '/', '?', '#', spaces or non-ASCII characters: it is also used in URLs (/t/<token>)");
            }
            Ok(bshare::crypto::sha256(t.as_bytes()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.workers == 0 || args.workers > 512 {
        bail!("--workers must be between 1 and 512");
    }
    Ok(ServerConfig {
        bind: args.bind,
        base_url: args
            .base_url
            .filter(|u| !u.is_empty())
            .map(|u| u.trim_end_matches('/').to_owned()),
        data_dir,
        database,
        objects,
        workers: args.workers,
        max_document_bytes: args.max_document_bytes,
        max_api_body_bytes: ServerConfig::DEFAULT_MAX_API_BODY_BYTES,
        upload_url_lifetime: std::time::Duration::from_secs(args.upload_url_ttl),
        create_limit_per_hour: args.create_limit,
        request_limit_per_minute: args.request_limit,
        trusted_proxies: args.trust_proxy,
        page_cache_bytes: args.page_cache_mb.saturating_mul(1024 * 1024),
        page_cache_disk_bytes: args.page_cache_disk_mb.saturating_mul(1024 * 1024),
        page_miss_limit_per_minute: args.page_miss_limit,
        edge: EdgeConfig {
            max_connections,
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout),
            header_timeout: std::time::Duration::from_secs(args.header_timeout),
            min_body_rate: args.min_body_rate,
            max_event_streams: args.max_event_streams as usize,
            event_keepalive: std::time::Duration::from_secs(args.event_keepalive),
            ..EdgeConfig::default()
        },
        default_expiry: args.default_expiry,
        max_expiry: args.max_expiry,
        sweep_interval: SWEEP_INTERVAL,
        create_token_hashes,
        redact_sync: !args.no_redact_sync,
    })
}

enum Event {
    Signal(i32),
    AcceptFailed(String),
}

pub fn run(args: Args) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let config = config(args)?;
    // Signals are caught before the port opens, so a SIGTERM right after start drains too.
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .context("cannot catch SIGTERM and SIGINT")?;
    if !config.redact_sync {
        eprintln!(
            "bshare: warning: --no-redact-sync: OpenCode's sync batches are stored as they come, with any API keys, tokens and passwords in them"
        );
    }
    let running = bshare::http::server::start(config)
        // With its causes: "internal error" alone would not say what stopped the start.
        .map_err(|e| anyhow::anyhow!(e.chain()))?;
    eprintln!(
        "bshare: listening on {} ({} workers, at most {} connections)\nbshare: share links use {}\nbshare: metadata: {}\nbshare: documents: {}\nbshare: creating shares: {}",
        format_args!("http://{}", running.addr),
        running.app.config.workers,
        running.app.config.edge.max_connections,
        running.app.config.base_url(),
        running.app.connector.describe(),
        running.app.blobs.describe(),
        match running.app.config.create_token_hashes.len() {
            0 => "open to anyone".to_owned(),
            n => format!("needs one of {n} create token(s)"),
        },
    );
    let (events, event) = std::sync::mpsc::channel();
    let on_signal = events.clone();
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = on_signal.send(Event::Signal(signal));
        }
    });
    let server = std::sync::Arc::clone(&running.server);
    std::thread::spawn(move || {
        loop {
            if let Some(reason) = server.wait_accept_failure(std::time::Duration::from_secs(3600)) {
                let _ = events.send(Event::AcceptFailed(reason));
                return;
            }
        }
    });
    match event.recv() {
        Ok(Event::Signal(signal)) => {
            let name = if signal == SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            let drain = running.app.config.edge.drain_timeout;
            eprintln!(
                "bshare: {name}: no new connections; finishing the requests under way (at most {} s)",
                drain.as_secs()
            );
            let left = running.drain(drain);
            if left > 0 {
                eprintln!("bshare: {left} requests were still under way and are cut off");
            }
            eprintln!("bshare: stopped");
            Ok(())
        }
        Ok(Event::AcceptFailed(reason)) => bail!(
            "stopped accepting connections ({reason}); exiting so that a supervisor restarts the server"
        ),
        Err(_) => bail!("the server's watch threads ended unexpectedly"),
    }
}
