//! `bshare serve`: flags (each with its environment variable) into a validated `ServerConfig`.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use bshare::config::{Addressing, DatabaseConfig, ObjectConfig, S3Config, ServerConfig};

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

    /// Largest session document accepted, in bytes.
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

    /// Lifetime of upload URLs, in seconds.
    #[arg(long, env = "BSHARE_UPLOAD_URL_TTL", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    upload_url_ttl: u64,

    /// Memory for rendered pages, in MiB.
    #[arg(long, env = "BSHARE_PAGE_CACHE_MB", default_value_t = 16)]
    page_cache_mb: usize,

    /// Merge OpenCode's sync batches as they come, without removing API keys, tokens and
    /// passwords first. Those batches come from stock OpenCode, which redacts nothing; a warning
    /// is printed at start.
    #[arg(long, env = "BSHARE_NO_REDACT_SYNC", value_parser = clap::builder::FalseyValueParser::new())]
    no_redact_sync: bool,
}

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
        redact_sync: !args.no_redact_sync,
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = config(args)?;
    if !config.redact_sync {
        eprintln!(
            "bshare: warning: --no-redact-sync: OpenCode's sync batches are stored as they come, with any API keys, tokens and passwords in them"
        );
    }
    let running = bshare::http::server::start(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "bshare: listening on {} ({} workers)\nbshare: share links use {}\nbshare: metadata: {}\nbshare: documents: {}",
        format_args!("http://{}", running.addr),
        running.app.config.workers,
        running.app.config.base_url(),
        running.app.connector.describe(),
        running.app.blobs.describe(),
    );
    running.join();
    Ok(())
}
