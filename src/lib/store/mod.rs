//! Share metadata: one trait, two implementations (PostgreSQL when `DATABASE_URL` is set, SQLite in
//! the data directory otherwise).
//!
//! Each HTTP worker owns one connection (`MetaStore`), made by the shared `Connector`; there is no
//! connection behind a mutex. A connection that failed is dropped and made again on the next request,
//! so the server recovers by itself when the database comes back.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use crate::error::Result;

/// A share as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRow {
    pub id: String,
    pub session_id: String,
    pub secret_hash: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// Expiry (epoch ms) of the newest upload URL issued for this share: until then, the object may
    /// change without this server seeing it.
    pub upload_until: i64,
    /// When the share expires (epoch ms); `None`: it lives until deleted.
    pub expires_at: Option<i64>,
}

/// Whether a share can be read and changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareState {
    Live,
    /// Deleted by its owner.
    Deleted,
    /// Past its expiry (whether or not the sweeper has removed its object yet).
    Expired,
}

impl ShareRow {
    /// The share's state at `now` (epoch ms). A tombstone set at or after the expiry is the
    /// sweeper's: the share expired.
    pub fn state(&self, now: i64) -> ShareState {
        match (self.deleted_at, self.expires_at) {
            (Some(deleted), Some(expires)) if deleted >= expires => ShareState::Expired,
            (Some(_), _) => ShareState::Deleted,
            (None, Some(expires)) if now >= expires => ShareState::Expired,
            (None, _) => ShareState::Live,
        }
    }
}

/// The result of [`MetaStore::create_share`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The id exists or existed (tombstone).
    Exists,
    /// The client is over its creation limit for this window; nothing was inserted.
    Limited,
}

/// What changed, as told to every server's page cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One share's content or state may have changed.
    Share(String),
    /// Notifications may have been missed (the listener reconnected): forget everything.
    All,
}

/// A receiver of change notifications from other servers.
pub type ChangeSink = Arc<dyn Fn(Change) + Send + Sync>;

/// One connection to the metadata store.
pub trait MetaStore: Send {
    /// Insert a new share; `false` when the id exists or existed (tombstone).
    fn insert_share(&mut self, row: &ShareRow) -> Result<bool>;
    /// Count one creation for this client in this window and, within `limit`, insert the share.
    /// Stores that can do both in one round trip override this.
    fn create_share(
        &mut self,
        row: &ShareRow,
        client_hash: &[u8],
        window_start: i64,
        limit: u32,
    ) -> Result<CreateOutcome> {
        if self.count_create(client_hash, window_start)? > limit {
            return Ok(CreateOutcome::Limited);
        }
        Ok(if self.insert_share(row)? {
            CreateOutcome::Created
        } else {
            CreateOutcome::Exists
        })
    }
    fn get_share(&mut self, id: &str) -> Result<Option<ShareRow>>;
    /// Record a newly issued upload URL: `upload_until = max(upload_until, until)`, `updated_at = now`.
    fn note_upload(&mut self, id: &str, until: i64, now: i64) -> Result<()>;
    /// Set `updated_at`, for content the server wrote itself.
    fn touch_share(&mut self, id: &str, now: i64) -> Result<()>;
    /// Turn a live share into a tombstone; `false` when it was not live.
    fn mark_deleted(&mut self, id: &str, now: i64) -> Result<bool>;
    /// Count one more creation for this client in this window and return the new count.
    fn count_create(&mut self, client_hash: &[u8], window_start: i64) -> Result<u32>;
    /// Use a local upload URL's nonce; `false` when it was used before.
    fn consume_nonce(&mut self, nonce: &str, expires_at: i64) -> Result<bool>;
    /// The named server-wide key, created with random bytes the first time.
    fn server_key(&mut self, name: &str) -> Result<Vec<u8>>;
    /// Run `f` while holding this share's row lock, so read-modify-write of its document is serialized
    /// across servers. `f` sees the row as it is under the lock.
    fn with_share_locked(
        &mut self,
        id: &str,
        f: &mut dyn FnMut(&ShareRow) -> Result<()>,
    ) -> Result<()>;
    /// Tell every server that a share changed (a no-op where only one server can exist).
    fn notify_change(&mut self, id: &str) -> Result<()>;
    /// Up to `limit` live shares whose expiry has passed at `now`, for the sweeper.
    fn expired_shares(&mut self, now: i64, limit: u32) -> Result<Vec<String>>;
    /// Drop what no longer serves a purpose at `now`: creation counts of past windows (the
    /// create limit counts only the current one, so a client's address hash is gone within the
    /// hour) and nonces of expired upload URLs.
    fn prune(&mut self, now: i64) -> Result<()>;
    fn ping(&mut self) -> Result<()>;
}

/// Makes connections and, where several servers can share the store, listens for their changes.
pub trait Connector: Send + Sync {
    fn connect(&self) -> Result<Box<dyn MetaStore>>;
    /// A sentence for the startup line, without credentials.
    fn describe(&self) -> String;
    /// Start a background listener for other servers' changes; a no-op for a single-server store.
    fn listen(&self, sink: ChangeSink);
}

/// Build the connector for the configuration, applying migrations. Fails with a sentence that says
/// what is wrong when the database cannot be reached or used.
pub fn open(config: &crate::config::DatabaseConfig) -> Result<Arc<dyn Connector>> {
    match config {
        crate::config::DatabaseConfig::Postgres { url } => {
            Ok(Arc::new(postgres::PostgresConnector::open(url)?))
        }
        crate::config::DatabaseConfig::Sqlite { path } => {
            Ok(Arc::new(sqlite::SqliteConnector::open(path)?))
        }
    }
}

/// A migration: its number and SQL, embedded in the binary.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Append-only: a new migration is a new file and a new line here (a test checks that every file
/// in `migrations/` is listed).
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_expiry.sql",
        sql: include_str!("../../../migrations/postgres/0002_expiry.sql"),
    },
];

pub const SQLITE_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init.sql",
        sql: include_str!("../../../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_expiry.sql",
        sql: include_str!("../../../migrations/sqlite/0002_expiry.sql"),
    },
];

/// Start of the hour window containing `now` (epoch ms).
pub fn hour_window(now: i64) -> i64 {
    now - now.rem_euclid(3_600_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_listed() {
        for (dir, list) in [
            ("postgres", POSTGRES_MIGRATIONS),
            ("sqlite", SQLITE_MIGRATIONS),
        ] {
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    std::path::Path::new(n)
                        .extension()
                        .is_some_and(|e| e.eq_ignore_ascii_case("sql"))
                })
                .collect();
            files.sort();
            let listed: Vec<String> = list.iter().map(|m| m.name.to_owned()).collect();
            assert_eq!(
                files, listed,
                "migrations/{dir} and the embedded list differ"
            );
            for (i, m) in list.iter().enumerate() {
                assert_eq!(m.version, i as i64 + 1, "versions are 1, 2, 3... in order");
                assert!(m.name.starts_with(&format!("{:04}_", m.version)));
            }
        }
    }
}
