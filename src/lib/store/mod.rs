//! Share metadata: one trait, two implementations (PostgreSQL when `DATABASE_URL` is set, SQLite in
//! the data directory otherwise).
//!
//! Each HTTP worker owns one connection (`MetaStore`), made by the shared `Connector`; there is no
//! connection behind a mutex. A connection that failed is dropped and made again on the next request,
//! so the server recovers by itself when the database comes back.

pub mod postgres;
pub mod sqlite;

use std::sync::Arc;

use crate::error::{Error, Result};

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
    /// The client is over its creation limit; nothing was inserted or counted. It may try again
    /// in `retry_after` seconds.
    Limited {
        retry_after: u64,
    },
}

/// A client's creations as [`MetaStore::count_create`] found them: whether this one was counted
/// (within the limit), and the counts of the previous and the current hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateCount {
    pub allowed: bool,
    pub previous: u32,
    pub current: u32,
}

/// The sliding hour of the create limit at `now`: the current hour window's start, and how much of
/// the previous hour the last 60 minutes still cover (1.0 at the start of an hour, 0.0 at its end).
/// A creation is allowed while `previous × overlap + current + 1 ≤ limit`, so it cannot make its
/// limit at the end of one hour and again at the start of the next.
pub fn sliding_hour(now: i64) -> (i64, f64) {
    let start = hour_window(now);
    (start, 1.0 - (now - start) as f64 / HOUR_MS as f64)
}

const HOUR_MS: i64 = 3_600_000;

/// Seconds until a client refused with these counts is within the limit again (at least 1).
pub fn create_retry_after(count: CreateCount, limit: u32, now: i64) -> u64 {
    let (start, _) = sliding_hour(now);
    let (previous, current, limit) = (
        f64::from(count.previous),
        f64::from(count.current),
        f64::from(limit),
    );
    let hour = HOUR_MS as f64;
    // Allowed once `previous × overlap + current + 1 ≤ limit`: within this hour, once enough of the
    // previous one has slid out; else in the next hour, once enough of this one has.
    let at = if current + 1.0 <= limit && previous > 0.0 {
        start as f64 + hour * (1.0 - (limit - current - 1.0) / previous)
    } else if current + 1.0 > limit && current > 0.0 {
        (start + HOUR_MS) as f64 + hour * (1.0 - (limit - 1.0) / current).max(0.0)
    } else {
        now as f64
    };
    (((at - now as f64) / 1000.0).ceil() as u64).max(1)
}

/// One acknowledged sync batch, kept until it is folded into the share's document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalBatch {
    /// Its place in the order batches were acknowledged (0 before it is stored).
    pub seq: i64,
    /// When it was acknowledged (epoch ms): the document's `updated_at` once it is applied.
    pub at: i64,
    /// The server's redaction removed something from it.
    pub redacted: bool,
    /// Bytes it can add to the document at most ([`JournalBatch::new`]).
    pub weight: i64,
    /// The items, a JSON array of `{type, data}`, as they will be merged.
    pub items: Vec<u8>,
}

impl JournalBatch {
    /// A batch of `count` items to journal. Its weight bounds what it can add to the document:
    /// an item's data goes into the document as it is, in place of at most one value with the
    /// same key, and the wrapping it gets there (`{"info":…,"parts":[]}`, commas, a redaction
    /// count) is smaller than 64 bytes per item.
    pub fn new(at: i64, redacted: bool, items: Vec<u8>, count: usize) -> Self {
        Self {
            seq: 0,
            at,
            redacted,
            weight: items.len() as i64 + 64 * count as i64,
            items,
        }
    }
}

/// What a share's journal holds, as its row keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalSize {
    /// The sum of the journaled batches' weights.
    pub journal_bytes: i64,
    /// The document's size when this server last wrote it; -1 when unknown (never written by
    /// the server, or an upload URL was issued since).
    pub doc_bytes: i64,
}

/// A share's sync journal, within its lock ([`MetaStore::with_share_locked`]).
pub trait Journal {
    /// The journaled batches, oldest first.
    fn batches(&mut self) -> Result<Vec<JournalBatch>>;
    /// The document now holds every batch up to `through` (by `seq`) and is `doc_bytes` long
    /// (-1: unknown): those batches go, and their weight with them. Batches journaled meanwhile
    /// stay.
    fn folded(&mut self, through: i64, doc_bytes: i64) -> Result<()>;
    /// The journal becomes `batch` alone (every batch there, applied in order, as one: the
    /// caller built it from them under this lock, and checked the size it ends in), and its
    /// weight `batch`'s. The document's size stays as it was recorded.
    fn replace(&mut self, batch: &JournalBatch) -> Result<()>;
    /// Record a newly issued upload URL: `upload_until = max(upload_until, until)` and the
    /// document's size unknown (`doc_bytes = -1`: the client may upload any size). Within the
    /// lock, so no fold can write the object between the caller's own fold and this.
    fn upload_opened(&mut self, until: i64) -> Result<()>;
}

/// What changed, as told to every server's page cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// One share's content or state may have changed.
    Share(String),
    /// The listener is connected (again): what was announced while it was not may have been
    /// missed, so forget everything, and trust what it hears from now on.
    All,
    /// The listener is not connected: changes of other servers may go unheard until `All`.
    Lost,
}

/// A receiver of change notifications from other servers.
pub type ChangeSink = Arc<dyn Fn(Change) + Send + Sync>;

/// One connection to the metadata store.
pub trait MetaStore: Send {
    /// Insert a new share; `false` when the id exists or existed (tombstone).
    fn insert_share(&mut self, row: &ShareRow) -> Result<bool>;
    /// Within the client's creation limit (sliding hour, [`sliding_hour`]), count one creation and
    /// insert the share. Stores that can do both in one round trip override this.
    fn create_share(
        &mut self,
        row: &ShareRow,
        client_hash: &[u8],
        now: i64,
        limit: u32,
    ) -> Result<CreateOutcome> {
        let count = self.count_create(client_hash, now, limit)?;
        if !count.allowed {
            return Ok(CreateOutcome::Limited {
                retry_after: create_retry_after(count, limit, now),
            });
        }
        Ok(if self.insert_share(row)? {
            CreateOutcome::Created
        } else {
            CreateOutcome::Exists
        })
    }
    fn get_share(&mut self, id: &str) -> Result<Option<ShareRow>>;
    /// Turn a live share into a tombstone and drop its sync journal; `false` when it was not
    /// live. Announced to every server in the same transaction.
    fn mark_deleted(&mut self, id: &str, now: i64) -> Result<bool>;
    /// Count one more creation for this client when it is within `limit` over the sliding hour;
    /// the check and the count are one atomic step, so concurrent creates cannot both slip in.
    fn count_create(&mut self, client_hash: &[u8], now: i64, limit: u32) -> Result<CreateCount>;
    /// Use a local upload URL's nonce; `false` when it was used before.
    fn consume_nonce(&mut self, nonce: &str, expires_at: i64) -> Result<bool>;
    /// The named server-wide key, created with random bytes the first time.
    fn server_key(&mut self, name: &str) -> Result<Vec<u8>>;
    /// Run `f` while holding this share's lock, so read-modify-write of its document is serialized
    /// across servers; `mark_deleted` waits for it. `f` sees the row as it is under the lock, and
    /// the share's sync journal. The lock is the share's alone (PostgreSQL: its row lock; SQLite:
    /// a file lock of its own), so `f` may do object-store I/O without holding up other shares.
    /// When `f` succeeds and `now` is given (the content changed), the share's `updated_at`
    /// becomes `now` and every server is told, in the transaction that holds the lock; `None`
    /// (a fold, which changes how the content is kept, not what it is) records nothing more.
    fn with_share_locked(
        &mut self,
        id: &str,
        now: Option<i64>,
        f: &mut dyn FnMut(&ShareRow, &mut dyn Journal) -> Result<()>,
    ) -> Result<()>;
    /// Journal one sync batch of a live share, without its lock's read-modify-write: the batch is
    /// admitted only when the share is live at `batch.at` and the document it ends in is known to
    /// stay within `limit` bytes (`doc_bytes + journal_bytes + weight`, [`JournalBatch::new`]).
    /// Sets `updated_at` and tells every server, in one transaction. `None`: not admitted (the
    /// caller merges under the lock, which says why).
    fn append_sync(
        &mut self,
        id: &str,
        batch: &JournalBatch,
        limit: u64,
    ) -> Result<Option<JournalSize>>;
    /// The `seq` of the share's newest journaled batch; 0 when it has none.
    fn journal_head(&mut self, id: &str) -> Result<i64>;
    /// Up to `limit` shares with batches journaled, none of them since `quiet_since`, whose last
    /// upload URL expired at or before `uploads_until`, for the sweeper to fold.
    fn quiet_journals(
        &mut self,
        quiet_since: i64,
        uploads_until: i64,
        limit: u32,
    ) -> Result<Vec<String>>;
    /// Tell every server that a share changed (a no-op where only one server can exist).
    fn notify_change(&mut self, id: &str) -> Result<()>;
    /// Up to `limit` live shares whose expiry has passed at `now`, for the sweeper.
    fn expired_shares(&mut self, now: i64, limit: u32) -> Result<Vec<String>>;
    /// Up to `limit` deleted or expired shares whose object may still exist and whose last upload
    /// URL expired at or before `until`, for the sweeper.
    fn unpurged_shares(&mut self, until: i64, limit: u32) -> Result<Vec<String>>;
    /// Record that the object of tombstone `id` is gone for good.
    fn mark_purged(&mut self, id: &str, now: i64) -> Result<()>;
    /// Drop what no longer serves a purpose at `now`: creation counts of past windows (the
    /// create limit counts only the current one, so a client's address hash is gone within the
    /// hour) and nonces of expired upload URLs.
    fn prune(&mut self, now: i64) -> Result<()>;
    fn ping(&mut self) -> Result<()>;
    /// Whether this connection is known to be gone: closed, or made before the database dropped
    /// the connections of its time (a restart, which the change listener sees as it happens).
    /// Its holder makes a new one instead of failing a request on it ([`connection`]).
    fn is_stale(&self) -> bool {
        false
    }
}

/// The connection in `slot`, made when there is none or the one there is stale. Every holder of
/// a long-lived connection takes it through here, so a connection the database dropped while it
/// sat unused is replaced before a request would fail on it, however long after the outage.
pub fn connection<'a>(
    slot: &'a mut Option<Box<dyn MetaStore>>,
    connector: &dyn Connector,
) -> Result<&'a mut dyn MetaStore> {
    if slot.as_deref().is_some_and(MetaStore::is_stale) {
        *slot = None;
    }
    if slot.is_none() {
        *slot = Some(connector.connect()?);
    }
    match slot.as_deref_mut() {
        Some(store) => Ok(store),
        None => Err(crate::error::Error::internal("no database connection")),
    }
}

/// Makes connections and, where several servers can share the store, listens for their changes.
pub trait Connector: Send + Sync {
    fn connect(&self) -> Result<Box<dyn MetaStore>>;
    /// A sentence for the startup line, without credentials.
    fn describe(&self) -> String;
    /// Start a background listener for other servers' changes, telling `sink` `Change::All` once it
    /// listens (at once for a single-server store, which has nothing to listen to).
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

impl Migration {
    /// A migration that could not be applied, as a startup error that says which one, why, and
    /// what to do: the usual cause is a database that already holds tables bshare did not make.
    pub(crate) fn failed(&self, database: &str, e: &Error) -> Error {
        let cause = e.chain();
        // The database's own message, without the label a 500 would carry.
        let cause = match e {
            Error::Internal(_) => cause.strip_prefix(&format!("{e}: ")).unwrap_or(&cause),
            _ => &cause,
        };
        Error::Config(format!(
            "cannot bring the {database} up to this version's schema: migration {} failed: {}. \
             If it holds tables that are not bshare's, give bshare a database of its own; if a \
             bshare server is running on it, let its start finish and try again",
            self.name, cause
        ))
    }
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
    Migration {
        version: 3,
        name: "0003_purge.sql",
        sql: include_str!("../../../migrations/postgres/0003_purge.sql"),
    },
    Migration {
        version: 4,
        name: "0004_sync_journal.sql",
        sql: include_str!("../../../migrations/postgres/0004_sync_journal.sql"),
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
    Migration {
        version: 3,
        name: "0003_purge.sql",
        sql: include_str!("../../../migrations/sqlite/0003_purge.sql"),
    },
    Migration {
        version: 4,
        name: "0004_sync_journal.sql",
        sql: include_str!("../../../migrations/sqlite/0004_sync_journal.sql"),
    },
];

/// Start of the hour window containing `now` (epoch ms).
pub fn hour_window(now: i64) -> i64 {
    now - now.rem_euclid(HOUR_MS)
}

/// The oldest create-count window still needed at `now`: the sliding limit weighs the previous
/// hour's count, so it and the current one are kept; older counts (and the address hashes they
/// hold) are deleted.
pub fn oldest_needed_window(now: i64) -> i64 {
    hour_window(now) - HOUR_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_retry_after_follows_the_sliding_hour() {
        let hour = 3_600_000;
        let count = |previous, current| CreateCount {
            allowed: false,
            previous,
            current,
        };
        // 10 of 10 made this hour, at its start: wait for the next hour and then a tenth of it.
        assert_eq!(create_retry_after(count(0, 10), 10, hour), 3600 + 360);
        // 10 made last hour, none yet this one, right at the boundary: a tenth of an hour.
        assert_eq!(create_retry_after(count(10, 0), 10, hour), 360);
        assert_eq!(create_retry_after(count(10, 5), 10, hour), 2160);
        assert_eq!(sliding_hour(hour + hour / 4), (hour, 0.75));
    }

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
