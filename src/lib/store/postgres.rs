//! PostgreSQL metadata store, for one or several servers sharing one database.
//!
//! Migrations run at start under an advisory lock, so servers starting together never race.
//! Changes are announced with `NOTIFY`, and every server's listener drops its cached page, so a
//! page re-synced through one server is never served stale by another.
//!
//! Failures show in seconds, not minutes: connecting gives up after [`CONNECT_TIMEOUT`], TCP
//! keepalives and `TCP_USER_TIMEOUT` find a half-open connection (a failover, a dropped route)
//! within about [`DEAD_PEER`], and every statement runs under `statement_timeout` and
//! `lock_timeout`; each of these is a 503 the client may retry. `DATABASE_URL` may override them
//! (`connect_timeout=`, `options=-c statement_timeout=...`).
//!
//! TLS follows libpq's `sslmode`: `prefer` and `require` encrypt without checking the
//! certificate; `verify-ca` checks it against `sslrootcert=<file>` (or `system`), and
//! `verify-full` also checks that it names the host.

use std::str::FromStr;
use std::time::Duration;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Config, Statement};
use postgres_native_tls::MakeTlsConnector;

use super::{
    Change, ChangeSink, Connector, CreateCount, CreateOutcome, Journal, JournalBatch, JournalSize,
    MetaStore, Migration, POSTGRES_MIGRATIONS, ShareRow,
};
use crate::error::{Dependency, Error, Result};

/// The channel every server listens on; the payload is a share id.
const CHANNEL: &str = "bshare_share_changed";
/// Arbitrary but fixed: the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x6273_6861_7265; // "bshare"

/// How long connecting may take, unless `DATABASE_URL` says `connect_timeout=`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// About how long a connection whose peer vanished takes to fail: keepalive probes after 10 s of
/// silence, every 5 s, 3 of them; unacknowledged data gives up after as long.
const DEAD_PEER: Duration = Duration::from_secs(25);
/// Per statement: bshare's statements take milliseconds; a wait this long is an outage.
const STATEMENT_TIMEOUT_MS: u32 = 10_000;
/// Waiting for a row lock (a merge of the same share, a delete): shorter than the statement's.
const LOCK_TIMEOUT_MS: u32 = 5_000;

/// libpq's `sslmode` values beyond what the driver knows (it has `disable`, `prefer`, `require`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verify {
    /// Encrypt (when the mode asks) without checking the certificate.
    Nothing,
    /// `verify-ca`: the certificate must chain to `root`.
    Ca { root: RootCert },
    /// `verify-full`: and it must name the host.
    Full { root: RootCert },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    /// `sslrootcert=system`: the system's trusted CAs.
    System,
    File(std::path::PathBuf),
}

/// Take `sslmode=verify-ca|verify-full` and `sslrootcert=` out of a `DATABASE_URL` (URL or
/// `key=value` form), which the driver would refuse, and return the rest with `sslmode=require`.
fn split_tls(url: &str) -> Result<(String, Verify)> {
    let mut mode: Option<String> = None;
    let mut root: Option<String> = None;
    let rest = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        match url.split_once('?') {
            None => url.to_owned(),
            Some((base, query)) => {
                let mut kept = Vec::new();
                for pair in query.split('&') {
                    match pair.split_once('=') {
                        Some(("sslmode", v)) if v.starts_with("verify-") => {
                            mode = Some(percent_decode(v));
                        }
                        Some(("sslrootcert", v)) => root = Some(percent_decode(v)),
                        _ => kept.push(pair),
                    }
                }
                if mode.is_some() {
                    kept.push("sslmode=require");
                }
                if kept.is_empty() {
                    base.to_owned()
                } else {
                    format!("{base}?{}", kept.join("&"))
                }
            }
        }
    } else {
        let mut kept = Vec::new();
        for word in url.split_whitespace() {
            match word.split_once('=') {
                Some(("sslmode", v)) if v.trim_matches('\'').starts_with("verify-") => {
                    mode = Some(v.trim_matches('\'').to_owned());
                }
                Some(("sslrootcert", v)) => root = Some(v.trim_matches('\'').to_owned()),
                _ => kept.push(word),
            }
        }
        if mode.is_some() {
            kept.push("sslmode=require");
        }
        kept.join(" ")
    };
    let root = || -> Result<RootCert> {
        match root.as_deref() {
            Some("system") => Ok(RootCert::System),
            Some(path) if !path.is_empty() => Ok(RootCert::File(path.into())),
            _ => Err(Error::Config(
                "sslmode=verify-ca and verify-full need the CA that signed the database's certificate: add sslrootcert=<PEM file> to DATABASE_URL (or sslrootcert=system for the system's CAs)".into(),
            )),
        }
    };
    let verify = match mode.as_deref() {
        None => Verify::Nothing,
        Some("verify-ca") => Verify::Ca { root: root()? },
        Some("verify-full") => Verify::Full { root: root()? },
        Some(other) => {
            return Err(Error::Config(format!(
                "DATABASE_URL has sslmode={other}; use disable, prefer, require, verify-ca or verify-full"
            )));
        }
    };
    Ok((rest, verify))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tls_connector(verify: &Verify) -> Result<MakeTlsConnector> {
    let mut builder = native_tls::TlsConnector::builder();
    let root = match verify {
        // Like libpq's `prefer` and `require`: encrypted, but the certificate is not checked.
        Verify::Nothing => {
            builder
                .danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
            None
        }
        Verify::Ca { root } => {
            builder.danger_accept_invalid_hostnames(true);
            Some(root)
        }
        Verify::Full { root } => Some(root),
    };
    if let Some(RootCert::File(path)) = root {
        let pem = std::fs::read(path).map_err(|e| {
            Error::Config(format!(
                "cannot read sslrootcert={} from DATABASE_URL: {e}",
                path.display()
            ))
        })?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
            Error::Config(format!(
                "sslrootcert={} in DATABASE_URL is not a PEM certificate: {e}",
                path.display()
            ))
        })?;
        // As libpq: with a CA file, that file alone is trusted.
        builder
            .disable_built_in_roots(true)
            .add_root_certificate(cert);
    }
    builder
        .build()
        .map(MakeTlsConnector::new)
        .map_err(|e| Error::internal(format!("cannot set up TLS for PostgreSQL: {e}")))
}

/// `options` with bshare's timeouts first, so that ones given in `DATABASE_URL` (later) win.
fn with_timeouts(options: Option<&str>) -> String {
    let ours =
        format!("-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}");
    match options {
        Some(theirs) if !theirs.trim().is_empty() => format!("{ours} {theirs}"),
        _ => ours,
    }
}

pub struct PostgresConnector {
    config: Config,
    tls: MakeTlsConnector,
    described: String,
    /// How many times the change listener's connection has broken. A connection made before the
    /// last break is stale: the database most likely dropped it too (a restart, a failover), and
    /// it would fail the first request that used it.
    breaks: Arc<AtomicU64>,
}

impl PostgresConnector {
    pub fn open(url: &str) -> Result<Self> {
        let (url, verify) = split_tls(url)?;
        let mut config = Config::from_str(&url).map_err(|e| {
            Error::Config(format!(
                "DATABASE_URL is not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            // Fail fast while the database is down instead of holding a worker for minutes.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .tcp_user_timeout(DEAD_PEER);
        let options = with_timeouts(config.get_options());
        config.options(&options);
        config.application_name("bshare");
        let tls = tls_connector(&verify)?;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(h) => h.clone(),
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let described = format!(
            "PostgreSQL database {:?} on {}",
            config.get_dbname().unwrap_or("(default)"),
            hosts.join(",")
        );
        let connector = Self {
            config,
            tls,
            described,
            breaks: Arc::default(),
        };
        let mut client = connector.client().map_err(|e| {
            let chain = e.chain();
            let hint = match &verify {
                Verify::Nothing => String::new(),
                _ if !chain.contains("TLS") => String::new(),
                Verify::Ca { .. } => ". The database's certificate was not accepted: sslmode=verify-ca checks that it is signed by the CA in sslrootcert".into(),
                Verify::Full { .. } => ". The database's certificate was not accepted: sslmode=verify-full checks that it is signed by the CA in sslrootcert and names the host in DATABASE_URL; check both".into(),
            };
            Error::Config(format!(
                "cannot connect to the PostgreSQL database in DATABASE_URL: {chain}{hint}"
            ))
        })?;
        migrate(&mut client)?;
        Ok(connector)
    }

    fn client(&self) -> Result<Client> {
        self.config.connect(self.tls.clone()).map_err(pg_err)
    }
}

fn migrate(client: &mut Client) -> Result<()> {
    // A migration may take long, and waiting for another server's is expected: no timeouts here.
    client
        .batch_execute("SET statement_timeout = 0; SET lock_timeout = 0")
        .map_err(pg_err)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_err)?;
    let result = (|| {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
            )
            .map_err(pg_err)?;
        for m in POSTGRES_MIGRATIONS {
            apply(client, m).map_err(|e| m.failed("PostgreSQL database in DATABASE_URL", &e))?;
        }
        Ok(())
    })();
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_err);
    result.and(unlock.map(|_| ()))
}

/// One migration and its record, in one transaction, unless it is recorded already.
fn apply(client: &mut Client, m: &Migration) -> Result<()> {
    let mut tx = client.transaction().map_err(pg_err)?;
    let done: bool = tx
        .query_one(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = $1)",
            &[&m.version],
        )
        .map_err(pg_err)?
        .get(0);
    if !done {
        tx.batch_execute(m.sql).map_err(pg_err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &crate::model::now_millis()],
        )
        .map_err(pg_err)?;
    }
    tx.commit().map_err(pg_err)
}

/// Connection trouble, server shutdowns and timeouts (`statement_timeout` is 57014, `lock_timeout`
/// 55P03) are 503 (the caller reconnects or retries); anything else is a bug.
fn pg_err(e: postgres::Error) -> Error {
    let transient = e.is_closed()
        || e.code().is_none()
        || e.code().is_some_and(|c| {
            let class = &c.code()[..2];
            matches!(class, "08" | "53" | "57" | "58") || c.code() == "55P03"
        });
    if transient {
        Error::unavailable(Dependency::Database, e)
    } else {
        Error::internal(e)
    }
}

impl Connector for PostgresConnector {
    fn connect(&self) -> Result<Box<dyn MetaStore>> {
        // Read before connecting: a break seen while this connects may have dropped it too.
        let born = self.breaks.load(Ordering::SeqCst);
        Ok(Box::new(PostgresStore {
            client: self.client()?,
            statements: HashMap::new(),
            born,
            breaks: Arc::clone(&self.breaks),
        }))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn listen(&self, sink: ChangeSink) {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let breaks = Arc::clone(&self.breaks);
        let spawned = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen_forever(&config, &tls, &sink, &breaks));
        if let Err(e) = spawned {
            eprintln!("bshare: cannot start the change listener: {e}");
        }
    }
}

fn listen_forever(config: &Config, tls: &MakeTlsConnector, sink: &ChangeSink, breaks: &AtomicU64) {
    loop {
        // Until LISTEN is in place, another server's change would go unheard.
        sink(Change::Lost);
        if let Ok(mut client) = config.connect(tls.clone())
            && client.batch_execute(&format!("LISTEN {CHANNEL}")).is_ok()
        {
            // Whatever was announced while we were away is lost: start afresh.
            sink(Change::All);
            pump_notifications(&mut client, sink);
            // The workers' connections of this time are most likely gone as well; each makes a
            // new one before its next use instead of failing a request on it.
            breaks.fetch_add(1, Ordering::SeqCst);
            // Deaf from this moment: at once, not after the pause below.
            sink(Change::Lost);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Deliver notifications until the connection breaks.
fn pump_notifications(client: &mut Client, sink: &ChangeSink) {
    loop {
        let quiet = {
            let mut notifications = client.notifications();
            let mut iter = notifications.timeout_iter(Duration::from_secs(30));
            loop {
                match iter.next() {
                    Ok(Some(n)) => sink(Change::Share(n.payload().to_owned())),
                    Ok(None) => break true,
                    Err(_) => break false,
                }
            }
        };
        // After a quiet period, check that the connection is still there.
        if !quiet || client.is_closed() || client.simple_query("SELECT 1").is_err() {
            return;
        }
    }
}

pub struct PostgresStore {
    client: Client,
    /// Statements prepared on this connection: each query is then one round trip, not two.
    statements: HashMap<&'static str, Statement>,
    /// The listener's count of breaks when this connection was made (`PostgresConnector::breaks`).
    born: u64,
    breaks: Arc<AtomicU64>,
}

impl PostgresStore {
    fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(pg_err)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// The share ids a query selects (its first column).
    fn ids(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<String>> {
        let statement = self.prepared(sql)?;
        let rows = self.client.query(&statement, params).map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn execute(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.prepared(sql)?;
        self.client.execute(&statement, params).map_err(pg_err)
    }

    fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<postgres::Row>> {
        let statement = self.prepared(sql)?;
        self.client.query_opt(&statement, params).map_err(pg_err)
    }

    fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<postgres::Row> {
        let statement = self.prepared(sql)?;
        self.client.query_one(&statement, params).map_err(pg_err)
    }
}

const SHARE_COLUMNS: &str =
    "id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at";

fn row_to_share(r: &postgres::Row) -> ShareRow {
    ShareRow {
        id: r.get(0),
        session_id: r.get(1),
        secret_hash: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
        deleted_at: r.get(5),
        upload_until: r.get(6),
        expires_at: r.get(7),
    }
}

const JOURNAL_BATCHES: &str =
    "SELECT seq, at, redacted, weight, items FROM sync_journal WHERE share_id = $1 ORDER BY seq";

fn row_to_batch(r: &postgres::Row) -> JournalBatch {
    JournalBatch {
        seq: r.get(0),
        at: r.get(1),
        redacted: r.get(2),
        weight: r.get(3),
        items: r.get(4),
    }
}

/// A share's journal within the transaction that holds its row lock.
struct PgJournal<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    id: &'a str,
}

impl Journal for PgJournal<'_, '_> {
    fn batches(&mut self) -> Result<Vec<JournalBatch>> {
        let rows = self
            .tx
            .query(JOURNAL_BATCHES, &[&self.id])
            .map_err(pg_err)?;
        Ok(rows.iter().map(row_to_batch).collect())
    }

    fn folded(&mut self, through: i64, doc_bytes: i64) -> Result<()> {
        self.tx
            .execute(
                "WITH gone AS (
                     DELETE FROM sync_journal WHERE share_id = $1 AND seq <= $2 RETURNING weight
                 )
                 UPDATE shares SET doc_bytes = $3,
                     journal_bytes = GREATEST(0, journal_bytes - COALESCE((SELECT sum(weight) FROM gone), 0)::bigint)
                 WHERE id = $1",
                &[&self.id, &through, &doc_bytes],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn replace(&mut self, batch: &JournalBatch) -> Result<()> {
        self.tx
            .execute(
                "WITH gone AS (
                     DELETE FROM sync_journal WHERE share_id = $1
                 ), added AS (
                     INSERT INTO sync_journal (share_id, at, redacted, weight, items)
                     VALUES ($1, $2, $3, $4, $5)
                 )
                 UPDATE shares SET journal_bytes = $4 WHERE id = $1",
                &[
                    &self.id,
                    &batch.at,
                    &batch.redacted,
                    &batch.weight,
                    &batch.items,
                ],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn upload_opened(&mut self, until: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE shares SET upload_until = GREATEST(upload_until, $2), doc_bytes = -1
                 WHERE id = $1",
                &[&self.id, &until],
            )
            .map_err(pg_err)?;
        Ok(())
    }
}

impl MetaStore for PostgresStore {
    fn insert_share(&mut self, row: &ShareRow) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7) ON CONFLICT (id) DO NOTHING",
            &[&row.id, &row.session_id, &row.secret_hash, &row.created_at, &row.updated_at, &row.upload_until, &row.expires_at],
        )?;
        Ok(n == 1)
    }

    fn create_share(
        &mut self,
        row: &ShareRow,
        client_hash: &[u8],
        now: i64,
        limit: u32,
    ) -> Result<CreateOutcome> {
        // One round trip: check and count the attempt (the upsert's WHERE sees the locked row, so
        // concurrent creates cannot both pass), and insert only when it was counted.
        let (window, overlap) = super::sliding_hour(now);
        let result = self.query_one(
            "WITH previous AS (
                 SELECT COALESCE((SELECT count FROM create_counts WHERE client_hash = $1::bytea AND window_start = $2::bigint - 3600000), 0) AS n
             ), counted AS (
                 INSERT INTO create_counts (client_hash, window_start, count)
                 SELECT $1, $2, 1 WHERE $3::float8 - (SELECT n FROM previous) * $10::float8 >= 1
                 ON CONFLICT (client_hash, window_start) DO UPDATE SET count = create_counts.count + 1
                 WHERE create_counts.count + 1 <= $3::float8 - (SELECT n FROM previous) * $10::float8
                 RETURNING count
             ), inserted AS (
                 INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at)
                 SELECT $4, $5, $6, $7, $8, NULL, $9, $11 WHERE EXISTS (SELECT 1 FROM counted)
                 ON CONFLICT (id) DO NOTHING
                 RETURNING 1
             )
             SELECT EXISTS (SELECT 1 FROM counted), EXISTS (SELECT 1 FROM inserted), (SELECT n FROM previous),
                    COALESCE((SELECT count FROM create_counts WHERE client_hash = $1 AND window_start = $2), 0)",
            &[
                &client_hash,
                &window,
                &f64::from(limit),
                &row.id,
                &row.session_id,
                &row.secret_hash,
                &row.created_at,
                &row.updated_at,
                &row.upload_until,
                &overlap,
                &row.expires_at,
            ],
        )?;
        let counted: bool = result.get(0);
        let inserted: bool = result.get(1);
        Ok(if !counted {
            let count = CreateCount {
                allowed: false,
                previous: result.get::<_, i32>(2) as u32,
                current: result.get::<_, i32>(3) as u32,
            };
            CreateOutcome::Limited {
                retry_after: super::create_retry_after(count, limit, now),
            }
        } else if inserted {
            CreateOutcome::Created
        } else {
            CreateOutcome::Exists
        })
    }

    fn get_share(&mut self, id: &str) -> Result<Option<ShareRow>> {
        Ok(self
            .query_opt(
                "SELECT id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at
                 FROM shares WHERE id = $1",
                &[&id],
            )?
            .as_ref()
            .map(row_to_share))
    }

    fn mark_deleted(&mut self, id: &str, now: i64) -> Result<bool> {
        let mut tx = self.client.transaction().map_err(pg_err)?;
        let n = tx
            .execute(
                "WITH deleted AS (
                     UPDATE shares SET deleted_at = $2, updated_at = $2, journal_bytes = 0
                     WHERE id = $1 AND deleted_at IS NULL RETURNING id
                 )
                 SELECT pg_notify($3, id) FROM deleted",
                &[&id, &now, &CHANNEL],
            )
            .map_err(pg_err)?;
        // A statement of its own, after the row lock is held: it sees every batch committed
        // before the tombstone, and none can be journaled after it.
        tx.execute("DELETE FROM sync_journal WHERE share_id = $1", &[&id])
            .map_err(pg_err)?;
        tx.commit().map_err(pg_err)?;
        Ok(n == 1)
    }

    fn count_create(&mut self, client_hash: &[u8], now: i64, limit: u32) -> Result<CreateCount> {
        let (window, overlap) = super::sliding_hour(now);
        let row = self.query_one(
            "WITH previous AS (
                 SELECT COALESCE((SELECT count FROM create_counts WHERE client_hash = $1::bytea AND window_start = $2::bigint - 3600000), 0) AS n
             ), counted AS (
                 INSERT INTO create_counts (client_hash, window_start, count)
                 SELECT $1, $2, 1 WHERE $3::float8 - (SELECT n FROM previous) * $4::float8 >= 1
                 ON CONFLICT (client_hash, window_start) DO UPDATE SET count = create_counts.count + 1
                 WHERE create_counts.count + 1 <= $3::float8 - (SELECT n FROM previous) * $4::float8
                 RETURNING count
             )
             SELECT EXISTS (SELECT 1 FROM counted), (SELECT n FROM previous),
                    COALESCE((SELECT count FROM counted),
                             (SELECT count FROM create_counts WHERE client_hash = $1 AND window_start = $2), 0)",
            &[&client_hash, &window, &f64::from(limit), &overlap],
        )?;
        Ok(CreateCount {
            allowed: row.get(0),
            previous: row.get::<_, i32>(1) as u32,
            current: row.get::<_, i32>(2) as u32,
        })
    }

    fn consume_nonce(&mut self, nonce: &str, expires_at: i64) -> Result<bool> {
        let n = self.execute(
            "INSERT INTO used_upload_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
            &[&nonce, &expires_at],
        )?;
        Ok(n == 1)
    }

    fn server_key(&mut self, name: &str) -> Result<Vec<u8>> {
        let fresh = crate::crypto::random_bytes::<32>();
        self.execute(
            "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &fresh.as_slice()],
        )?;
        Ok(self
            .query_one("SELECT value FROM server_keys WHERE name = $1", &[&name])?
            .get(0))
    }

    fn with_share_locked(
        &mut self,
        id: &str,
        now: Option<i64>,
        f: &mut dyn FnMut(&ShareRow, &mut dyn Journal) -> Result<()>,
    ) -> Result<()> {
        let mut tx = self.client.transaction().map_err(pg_err)?;
        let row = tx
            .query_opt(
                &format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = $1 FOR UPDATE"),
                &[&id],
            )
            .map_err(pg_err)?
            .as_ref()
            .map(row_to_share)
            .ok_or(Error::ShareNotFound)?;
        f(&row, &mut PgJournal { tx: &mut tx, id })?;
        if let Some(now) = now {
            tx.execute(
                "UPDATE shares SET updated_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .map_err(pg_err)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])
                .map_err(pg_err)?;
        }
        tx.commit().map_err(pg_err)
    }

    fn append_sync(
        &mut self,
        id: &str,
        batch: &JournalBatch,
        limit: u64,
    ) -> Result<Option<JournalSize>> {
        // One statement, so one round trip and one transaction: the row lock the UPDATE takes
        // orders this batch after any merge or fold of the share in progress, and NOTIFY goes out
        // when the batch commits.
        let row = self.query_opt(
            "WITH share AS (
                 UPDATE shares SET journal_bytes = journal_bytes + $3, updated_at = $2
                 WHERE id = $1 AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > $2)
                   AND doc_bytes >= 0 AND doc_bytes + journal_bytes + $3 <= $5
                 RETURNING id, journal_bytes, doc_bytes
             ), added AS (
                 INSERT INTO sync_journal (share_id, at, redacted, weight, items)
                 SELECT id, $2, $4, $3, $6 FROM share RETURNING share_id
             )
             SELECT journal_bytes, doc_bytes, pg_notify($7, added.share_id)::text
             FROM share, added",
            &[
                &id,
                &batch.at,
                &batch.weight,
                &batch.redacted,
                &i64::try_from(limit).unwrap_or(i64::MAX),
                &batch.items,
                &CHANNEL,
            ],
        )?;
        Ok(row.map(|r| JournalSize {
            journal_bytes: r.get(0),
            doc_bytes: r.get(1),
        }))
    }

    fn journal_head(&mut self, id: &str) -> Result<i64> {
        let row = self.query_one(
            "SELECT COALESCE(max(seq), 0) FROM sync_journal WHERE share_id = $1",
            &[&id],
        )?;
        Ok(row.get(0))
    }

    fn quiet_journals(
        &mut self,
        quiet_since: i64,
        uploads_until: i64,
        limit: u32,
    ) -> Result<Vec<String>> {
        self.ids(
            "SELECT j.share_id FROM sync_journal j JOIN shares s ON s.id = j.share_id
             WHERE s.upload_until <= $2
             GROUP BY j.share_id HAVING max(j.at) <= $1
             ORDER BY max(j.at) LIMIT $3",
            &[&quiet_since, &uploads_until, &i64::from(limit)],
        )
    }

    fn notify_change(&mut self, id: &str) -> Result<()> {
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])?;
        Ok(())
    }

    fn expired_shares(&mut self, now: i64, limit: u32) -> Result<Vec<String>> {
        self.ids(
            "SELECT id FROM shares WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2",
            &[&now, &i64::from(limit)],
        )
    }

    fn unpurged_shares(&mut self, until: i64, limit: u32) -> Result<Vec<String>> {
        self.ids(
            "SELECT id FROM shares WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND upload_until <= $1
             ORDER BY upload_until LIMIT $2",
            &[&until, &i64::from(limit)],
        )
    }

    fn mark_purged(&mut self, id: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE shares SET purged_at = $2 WHERE id = $1 AND deleted_at IS NOT NULL",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn prune(&mut self, now: i64) -> Result<()> {
        self.client
            .execute(
                "DELETE FROM create_counts WHERE window_start < $1",
                &[&(super::oldest_needed_window(now))],
            )
            .map_err(pg_err)?;
        self.client
            .execute(
                "DELETE FROM used_upload_nonces WHERE expires_at < $1",
                &[&now],
            )
            .map_err(pg_err)?;
        Ok(())
    }

    fn ping(&mut self) -> Result<()> {
        self.client.simple_query("SELECT 1").map_err(pg_err)?;
        Ok(())
    }

    fn is_stale(&self) -> bool {
        self.client.is_closed() || self.breaks.load(Ordering::SeqCst) != self.born
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_taken_out_of_the_url() {
        let (rest, verify) =
            split_tls("postgres://u:p@db.example:5432/bshare?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x").unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/bshare?application_name=x&sslmode=require"
        );
        assert_eq!(
            verify,
            Verify::Full {
                root: RootCert::File("/etc/ca.pem".into())
            }
        );
        let (rest, verify) =
            split_tls("host=db sslmode=verify-ca sslrootcert=system user=u").unwrap();
        assert_eq!(rest, "host=db user=u sslmode=require");
        assert_eq!(
            verify,
            Verify::Ca {
                root: RootCert::System
            }
        );
        let (rest, verify) = split_tls("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!(
            (rest.as_str(), verify),
            ("postgres://u@h/db?sslmode=require", Verify::Nothing)
        );
        let err = split_tls("postgres://u@h/db?sslmode=verify-full").unwrap_err();
        assert!(err.to_string().contains("sslrootcert="), "{err}");
        assert!(split_tls("postgres://u@h/db?sslmode=verify-what&sslrootcert=x").is_err());
    }

    #[test]
    fn timeouts_come_first_so_the_url_can_override_them() {
        assert_eq!(
            with_timeouts(None),
            "-c statement_timeout=10000 -c lock_timeout=5000"
        );
        assert_eq!(
            with_timeouts(Some("-c statement_timeout=60s")),
            "-c statement_timeout=10000 -c lock_timeout=5000 -c statement_timeout=60s"
        );
    }
}
