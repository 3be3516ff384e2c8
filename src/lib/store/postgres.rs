//! PostgreSQL metadata store, for one or several servers sharing one database.
//!
//! Migrations run at start under an advisory lock, so servers starting together never race.
//! Changes are announced with `NOTIFY`, and every server's listener drops its cached page, so a
//! page re-synced through one server is never served stale by another.

use std::str::FromStr;
use std::time::Duration;

use std::collections::HashMap;

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, Config, Statement};
use postgres_native_tls::MakeTlsConnector;

use super::{
    Change, ChangeSink, Connector, CreateOutcome, MetaStore, POSTGRES_MIGRATIONS, ShareRow,
};
use crate::error::{Dependency, Error, Result};

/// The channel every server listens on; the payload is a share id.
const CHANNEL: &str = "bshare_share_changed";
/// Arbitrary but fixed: the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x6273_6861_7265; // "bshare"

pub struct PostgresConnector {
    config: Config,
    tls: MakeTlsConnector,
    described: String,
}

impl PostgresConnector {
    pub fn open(url: &str) -> Result<Self> {
        let mut config = Config::from_str(url).map_err(|e| {
            Error::Config(format!(
                "DATABASE_URL is not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            // Fail fast while the database is down instead of holding a worker for minutes.
            config.connect_timeout(Duration::from_secs(3));
        }
        config.keepalives(true);
        config.application_name("bshare");
        // Like libpq's `sslmode=prefer` and `require` (the only modes this driver has), TLS encrypts
        // but does not verify the server's certificate.
        let tls = native_tls::TlsConnector::builder()
            .danger_accept_invalid_certs(true)
            .danger_accept_invalid_hostnames(true)
            .build()
            .map(MakeTlsConnector::new)
            .map_err(|e| Error::internal(format!("cannot set up TLS for PostgreSQL: {e}")))?;
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
        };
        let mut client = connector.client().map_err(|e| {
            Error::Config(format!(
                "cannot connect to the PostgreSQL database in DATABASE_URL: {}",
                e.chain()
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
            tx.commit().map_err(pg_err)?;
        }
        Ok(())
    })();
    let unlock = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .map_err(pg_err);
    result.and(unlock.map(|_| ()))
}

/// Connection trouble and server shutdowns are 503 (the caller reconnects); anything else is a bug.
fn pg_err(e: postgres::Error) -> Error {
    let transient = e.is_closed()
        || e.code().is_none()
        || e.code().is_some_and(|c| {
            let class = &c.code()[..2];
            matches!(class, "08" | "53" | "57" | "58")
        });
    if transient {
        Error::unavailable(Dependency::Database, e)
    } else {
        Error::internal(e)
    }
}

impl Connector for PostgresConnector {
    fn connect(&self) -> Result<Box<dyn MetaStore>> {
        Ok(Box::new(PostgresStore {
            client: self.client()?,
            statements: HashMap::new(),
        }))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }

    fn listen(&self, sink: ChangeSink) {
        let config = self.config.clone();
        let tls = self.tls.clone();
        let spawned = std::thread::Builder::new()
            .name("pg-listen".into())
            .spawn(move || listen_forever(&config, &tls, &sink));
        if let Err(e) = spawned {
            eprintln!("bshare: cannot start the change listener: {e}");
        }
    }
}

fn listen_forever(config: &Config, tls: &MakeTlsConnector, sink: &ChangeSink) {
    let mut first = true;
    loop {
        if let Ok(mut client) = config.connect(tls.clone()) {
            if client.batch_execute(&format!("LISTEN {CHANNEL}")).is_ok() {
                if !first {
                    // Whatever was announced while we were away is lost: start afresh.
                    sink(Change::All);
                }
                first = false;
                pump_notifications(&mut client, sink);
            }
        } else {
            first = false;
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
        window_start: i64,
        limit: u32,
    ) -> Result<CreateOutcome> {
        // One round trip: count the attempt, and insert only within the limit.
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let result = self.query_one(
            "WITH counted AS (
                 INSERT INTO create_counts (client_hash, window_start, count) VALUES ($1, $2, 1)
                 ON CONFLICT (client_hash, window_start) DO UPDATE SET count = create_counts.count + 1
                 RETURNING count
             ), inserted AS (
                 INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at)
                 SELECT $4, $5, $6, $7, $8, NULL, $9, $10 WHERE (SELECT count FROM counted) <= $3
                 ON CONFLICT (id) DO NOTHING
                 RETURNING 1
             )
             SELECT (SELECT count FROM counted), EXISTS (SELECT 1 FROM inserted)",
            &[
                &client_hash,
                &window_start,
                &limit,
                &row.id,
                &row.session_id,
                &row.secret_hash,
                &row.created_at,
                &row.updated_at,
                &row.upload_until,
                &row.expires_at,
            ],
        )?;
        let count: i32 = result.get(0);
        let inserted: bool = result.get(1);
        Ok(if count > limit {
            CreateOutcome::Limited
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

    fn note_upload(&mut self, id: &str, until: i64, now: i64) -> Result<()> {
        self.execute(
            "UPDATE shares SET upload_until = GREATEST(upload_until, $2), updated_at = $3 WHERE id = $1",
            &[&id, &until, &now],
        )?;
        Ok(())
    }

    fn touch_share(&mut self, id: &str, now: i64) -> Result<()> {
        self.execute(
            "UPDATE shares SET updated_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn mark_deleted(&mut self, id: &str, now: i64) -> Result<bool> {
        let n = self.execute(
            "UPDATE shares SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
            &[&id, &now],
        )?;
        Ok(n == 1)
    }

    fn count_create(&mut self, client_hash: &[u8], window_start: i64) -> Result<u32> {
        let row = self.query_one(
            "INSERT INTO create_counts (client_hash, window_start, count) VALUES ($1, $2, 1)
             ON CONFLICT (client_hash, window_start) DO UPDATE SET count = create_counts.count + 1
             RETURNING count",
            &[&client_hash, &window_start],
        )?;
        Ok(row.get::<_, i32>(0) as u32)
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
        f: &mut dyn FnMut(&ShareRow) -> Result<()>,
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
        f(&row)?;
        tx.commit().map_err(pg_err)
    }

    fn notify_change(&mut self, id: &str) -> Result<()> {
        self.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])?;
        Ok(())
    }

    fn expired_shares(&mut self, now: i64, limit: u32) -> Result<Vec<String>> {
        let limit = i64::from(limit);
        let statement = self.prepared(
            "SELECT id FROM shares WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2",
        )?;
        let rows = self
            .client
            .query(&statement, &[&now, &limit])
            .map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn prune(&mut self, now: i64) -> Result<()> {
        self.client
            .execute(
                "DELETE FROM create_counts WHERE window_start < $1",
                &[&(super::hour_window(now))],
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
}
