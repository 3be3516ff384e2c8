//! SQLite metadata store: the embedded default, a file in the data directory.
//!
//! One server process owns the file. Workers each open their own connection; WAL mode lets readers
//! run beside the single writer, and a busy timeout queues writers instead of failing them.
//!
//! A share's lock (`with_share_locked`) is a file lock of its own, not a SQLite transaction:
//! SQLite's write lock covers the whole database, and holding it across the object read, merge and
//! write of a sync batch would stop every other write (creates, deletes) of every share meanwhile.
//! Turning a share into a tombstone takes the same lock, so a merge or upload that saw the share
//! live finishes its write before the tombstone is set, and every later one sees it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::{
    ChangeSink, Connector, CreateCount, Journal, JournalBatch, JournalSize, MetaStore,
    SQLITE_MIGRATIONS, ShareRow,
};
use crate::error::{Dependency, Error, Result};

pub struct SqliteConnector {
    path: PathBuf,
    locks: Arc<ShareLocks>,
}

/// A share's lock: an exclusive `flock` on its own file in `<database>.locks/`, so it holds
/// between connections, between servers in one process and between processes on one data
/// directory alike. The file stays (empty) after the lock is released.
struct ShareLocks {
    dir: PathBuf,
}

impl ShareLocks {
    fn with<T>(&self, id: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        if !crate::model::is_valid_share_id(id) {
            return Err(Error::ShareNotFound);
        }
        let path = self
            .dir
            .join(format!("{}.lock", crate::model::case_safe_stem(id)));
        let unavailable = |e: std::io::Error| {
            Error::unavailable(
                Dependency::Database,
                format!("cannot lock {}: {e}", path.display()),
            )
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(unavailable)?;
        file.lock().map_err(unavailable)?;
        let out = f();
        // Closing the file releases the lock; an explicit unlock says so.
        let _ = file.unlock();
        out
    }
}

impl SqliteConnector {
    /// Open (creating if needed) the database file and apply migrations.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Config(format!(
                    "cannot create the data directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut locks = path.as_os_str().to_owned();
        locks.push(".locks");
        let locks = PathBuf::from(locks);
        std::fs::create_dir_all(&locks).map_err(|e| {
            Error::Config(format!(
                "cannot create the lock directory {}: {e}",
                locks.display()
            ))
        })?;
        let connector = Self {
            path: path.to_owned(),
            locks: Arc::new(ShareLocks { dir: locks }),
        };
        let mut conn = connector.open_connection()?;
        migrate(&mut conn, &format!("SQLite database at {}", path.display()))?;
        Ok(connector)
    }

    fn open_connection(&self) -> Result<Connection> {
        let conn = Connection::open(&self.path).map_err(|e| {
            Error::unavailable(
                Dependency::Database,
                format!("cannot open {}: {e}", self.path.display()),
            )
        })?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(db_err)?;
        Ok(conn)
    }
}

fn migrate(conn: &mut Connection, database: &str) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db_err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(db_err)?;
    for m in SQLITE_MIGRATIONS {
        let done: bool = tx
            .query_row(
                "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [m.version],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if !done {
            tx.execute_batch(m.sql)
                .and_then(|()| {
                    tx.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                        params![m.version, m.name, crate::model::now_millis()],
                    )
                })
                .map_err(|e| m.failed(database, &db_err(e)))?;
        }
    }
    tx.commit().map_err(db_err)
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::unavailable(Dependency::Database, e)
}

impl Connector for SqliteConnector {
    fn connect(&self) -> Result<Box<dyn MetaStore>> {
        Ok(Box::new(SqliteStore {
            conn: self.open_connection()?,
            locks: Arc::clone(&self.locks),
        }))
    }

    fn describe(&self) -> String {
        format!("SQLite at {}", self.path.display())
    }

    fn listen(&self, sink: ChangeSink) {
        // One process owns the file, so every change is seen in-process: nothing can go unheard.
        sink(super::Change::All);
    }
}

pub struct SqliteStore {
    conn: Connection,
    locks: Arc<ShareLocks>,
}

const SHARE_COLUMNS: &str =
    "id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at";

fn row_to_share(r: &rusqlite::Row<'_>) -> rusqlite::Result<ShareRow> {
    Ok(ShareRow {
        id: r.get(0)?,
        session_id: r.get(1)?,
        secret_hash: r.get(2)?,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
        deleted_at: r.get(5)?,
        upload_until: r.get(6)?,
        expires_at: r.get(7)?,
    })
}

fn journal_batches(conn: &Connection, id: &str) -> Result<Vec<JournalBatch>> {
    conn.prepare_cached(
        "SELECT seq, at, redacted, weight, items FROM sync_journal WHERE share_id = ?1 ORDER BY seq",
    )
    .and_then(|mut s| {
        s.query_map([id], |r| {
            Ok(JournalBatch {
                seq: r.get(0)?,
                at: r.get(1)?,
                redacted: r.get(2)?,
                weight: r.get(3)?,
                items: r.get(4)?,
            })
        })
        .and_then(Iterator::collect)
    })
    .map_err(db_err)
}

/// A share's journal while its lock is held.
struct SqliteJournal<'a> {
    conn: &'a Connection,
    id: &'a str,
}

impl Journal for SqliteJournal<'_> {
    fn batches(&mut self) -> Result<Vec<JournalBatch>> {
        journal_batches(self.conn, self.id)
    }

    fn folded(&mut self, through: i64, doc_bytes: i64) -> Result<()> {
        // One transaction: the weight leaves `journal_bytes` with the batches. Batches journaled
        // meanwhile (after `through`) stay, and so does their weight.
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
        let result = (|| {
            let gone: i64 = self.conn.query_row(
                "SELECT COALESCE(sum(weight), 0) FROM sync_journal WHERE share_id = ?1 AND seq <= ?2",
                params![self.id, through],
                |r| r.get(0),
            )?;
            self.conn.execute(
                "DELETE FROM sync_journal WHERE share_id = ?1 AND seq <= ?2",
                params![self.id, through],
            )?;
            self.conn.execute(
                "UPDATE shares SET doc_bytes = ?2, journal_bytes = MAX(0, journal_bytes - ?3) WHERE id = ?1",
                params![self.id, doc_bytes, gone],
            )?;
            Ok(())
        })();
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.conn.execute_batch(end);
        result.and(ended).map_err(db_err)
    }

    fn replace(&mut self, batch: &JournalBatch) -> Result<()> {
        let tx = self.conn.unchecked_transaction().map_err(db_err)?;
        tx.execute(
            "DELETE FROM sync_journal WHERE share_id = ?1",
            params![self.id],
        )
        .and_then(|_| {
            tx.execute(
                "INSERT INTO sync_journal (share_id, at, redacted, weight, items) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![self.id, batch.at, batch.redacted, batch.weight, batch.items],
            )
        })
        .and_then(|_| {
            tx.execute(
                "UPDATE shares SET journal_bytes = ?2 WHERE id = ?1",
                params![self.id, batch.weight],
            )
        })
        .map_err(db_err)?;
        tx.commit().map_err(db_err)
    }

    fn upload_opened(&mut self, until: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE shares SET upload_until = MAX(upload_until, ?2), doc_bytes = -1 WHERE id = ?1",
                params![self.id, until],
            )
            .map_err(db_err)?;
        Ok(())
    }
}

impl SqliteStore {
    /// The share ids a query selects (its first column).
    fn ids(&mut self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params, |r| r.get(0))
                    .and_then(Iterator::collect)
            })
            .map_err(db_err)
    }
}

impl MetaStore for SqliteStore {
    fn insert_share(&mut self, row: &ShareRow) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?7) ON CONFLICT (id) DO NOTHING",
                params![row.id, row.session_id, row.secret_hash, row.created_at, row.updated_at, row.upload_until, row.expires_at],
            )
            .map_err(db_err)?;
        Ok(n == 1)
    }

    fn get_share(&mut self, id: &str) -> Result<Option<ShareRow>> {
        self.conn
            .prepare_cached(&format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = ?1"))
            .and_then(|mut s| s.query_row([id], row_to_share).optional())
            .map_err(db_err)
    }

    fn mark_deleted(&mut self, id: &str, now: i64) -> Result<bool> {
        // Under the share's lock: a write of its document in progress ends before the tombstone.
        // The journal goes in the same transaction, so no batch outlives the tombstone.
        let conn = &mut self.conn;
        let n = self.locks.with(id, || {
            let tx = conn.transaction().map_err(db_err)?;
            let n = tx
                .execute(
                    "UPDATE shares SET deleted_at = ?2, updated_at = ?2, journal_bytes = 0
                     WHERE id = ?1 AND deleted_at IS NULL",
                    params![id, now],
                )
                .map_err(db_err)?;
            tx.execute("DELETE FROM sync_journal WHERE share_id = ?1", [id])
                .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(n)
        })?;
        Ok(n == 1)
    }

    fn count_create(&mut self, client_hash: &[u8], now: i64, limit: u32) -> Result<CreateCount> {
        let (window, overlap) = super::sliding_hour(now);
        let previous: u32 = self
            .conn
            .prepare_cached(
                "SELECT count FROM create_counts WHERE client_hash = ?1 AND window_start = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![client_hash, window - 3_600_000], |r| r.get(0))
                    .optional()
            })
            .map_err(db_err)?
            .unwrap_or(0);
        // The check sits in the upsert itself (its WHERE sees the row as it is when written), so
        // two creates at once cannot both pass on the same count.
        let budget = f64::from(limit) - f64::from(previous) * overlap;
        let counted: Option<u32> = self
            .conn
            .prepare_cached(
                "INSERT INTO create_counts (client_hash, window_start, count) SELECT ?1, ?2, 1 WHERE ?3 >= 1
                 ON CONFLICT (client_hash, window_start) DO UPDATE SET count = count + 1
                 WHERE create_counts.count + 1 <= ?3
                 RETURNING count",
            )
            .and_then(|mut s| {
                s.query_row(params![client_hash, window, budget], |r| r.get(0))
                    .optional()
            })
            .map_err(db_err)?;
        let current = match counted {
            Some(n) => n,
            None => self
                .conn
                .query_row(
                    "SELECT count FROM create_counts WHERE client_hash = ?1 AND window_start = ?2",
                    params![client_hash, window],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db_err)?
                .unwrap_or(0),
        };
        Ok(CreateCount {
            allowed: counted.is_some(),
            previous,
            current,
        })
    }

    fn consume_nonce(&mut self, nonce: &str, expires_at: i64) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "INSERT INTO used_upload_nonces (nonce, expires_at) VALUES (?1, ?2) ON CONFLICT (nonce) DO NOTHING",
                params![nonce, expires_at],
            )
            .map_err(db_err)?;
        Ok(n == 1)
    }

    fn server_key(&mut self, name: &str) -> Result<Vec<u8>> {
        let fresh = crate::crypto::random_bytes::<32>();
        self.conn
            .execute(
                "INSERT INTO server_keys (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                params![name, fresh.as_slice()],
            )
            .map_err(db_err)?;
        self.conn
            .query_row(
                "SELECT value FROM server_keys WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(db_err)
    }

    fn with_share_locked(
        &mut self,
        id: &str,
        now: Option<i64>,
        f: &mut dyn FnMut(&ShareRow, &mut dyn Journal) -> Result<()>,
    ) -> Result<()> {
        // The share's own lock, not a transaction: `f` reads and writes the object store, and
        // SQLite's write lock would stop every other share's writes for as long.
        let conn = &self.conn;
        self.locks.with(id, || {
            let row = conn
                .prepare_cached(&format!("SELECT {SHARE_COLUMNS} FROM shares WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], row_to_share).optional())
                .map_err(db_err)?
                .ok_or(Error::ShareNotFound)?;
            f(&row, &mut SqliteJournal { conn, id })?;
            if let Some(now) = now {
                conn.execute(
                    "UPDATE shares SET updated_at = ?2 WHERE id = ?1",
                    params![id, now],
                )
                .map_err(db_err)?;
            }
            Ok(())
        })
    }

    fn append_sync(
        &mut self,
        id: &str,
        batch: &JournalBatch,
        limit: u64,
    ) -> Result<Option<JournalSize>> {
        // Under the share's lock, as PostgreSQL's row lock orders an append after a fold or
        // merge in progress: the size it is checked against is current, and a batch
        // acknowledged before a merged one is never applied after it.
        let conn = &mut self.conn;
        self.locks.with(id, || {
            let tx = conn.transaction().map_err(db_err)?;
            let size = tx
                .prepare_cached(
                    "UPDATE shares SET journal_bytes = journal_bytes + ?3, updated_at = ?2
                     WHERE id = ?1 AND deleted_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)
                       AND doc_bytes >= 0 AND doc_bytes + journal_bytes + ?3 <= ?4
                     RETURNING journal_bytes, doc_bytes",
                )
                .and_then(|mut s| {
                    s.query_row(
                        params![
                            id,
                            batch.at,
                            batch.weight,
                            i64::try_from(limit).unwrap_or(i64::MAX)
                        ],
                        |r| {
                            Ok(JournalSize {
                                journal_bytes: r.get(0)?,
                                doc_bytes: r.get(1)?,
                            })
                        },
                    )
                    .optional()
                })
                .map_err(db_err)?;
            if size.is_some() {
                tx.prepare_cached(
                    "INSERT INTO sync_journal (share_id, at, redacted, weight, items) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        id,
                        batch.at,
                        batch.redacted,
                        batch.weight,
                        batch.items
                    ])
                })
                .map_err(db_err)?;
                tx.commit().map_err(db_err)?;
            }
            Ok(size)
        })
    }

    fn journal_head(&mut self, id: &str) -> Result<i64> {
        self.conn
            .prepare_cached("SELECT COALESCE(max(seq), 0) FROM sync_journal WHERE share_id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .map_err(db_err)
    }

    fn quiet_journals(
        &mut self,
        quiet_since: i64,
        uploads_until: i64,
        limit: u32,
    ) -> Result<Vec<String>> {
        self.ids(
            "SELECT j.share_id FROM sync_journal j JOIN shares s ON s.id = j.share_id
             WHERE s.upload_until <= ?2
             GROUP BY j.share_id HAVING max(j.at) <= ?1
             ORDER BY max(j.at) LIMIT ?3",
            params![quiet_since, uploads_until, limit],
        )
    }

    fn notify_change(&mut self, _id: &str) -> Result<()> {
        Ok(())
    }

    fn expired_shares(&mut self, now: i64, limit: u32) -> Result<Vec<String>> {
        self.ids(
            "SELECT id FROM shares WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= ?1
             ORDER BY expires_at LIMIT ?2",
            params![now, limit],
        )
    }

    fn unpurged_shares(&mut self, until: i64, limit: u32) -> Result<Vec<String>> {
        self.ids(
            "SELECT id FROM shares WHERE deleted_at IS NOT NULL AND purged_at IS NULL AND upload_until <= ?1
             ORDER BY upload_until LIMIT ?2",
            params![until, limit],
        )
    }

    fn mark_purged(&mut self, id: &str, now: i64) -> Result<()> {
        self.conn
            .execute(
                "UPDATE shares SET purged_at = ?2 WHERE id = ?1 AND deleted_at IS NOT NULL",
                params![id, now],
            )
            .map_err(db_err)?;
        Ok(())
    }

    fn prune(&mut self, now: i64) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM create_counts WHERE window_start < ?1",
                [super::oldest_needed_window(now)],
            )
            .map_err(db_err)?;
        self.conn
            .execute(
                "DELETE FROM used_upload_nonces WHERE expires_at < ?1",
                [now],
            )
            .map_err(db_err)?;
        Ok(())
    }

    fn ping(&mut self) -> Result<()> {
        self.conn
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ShareRow {
        ShareRow {
            id: id.into(),
            session_id: "ses_1".into(),
            secret_hash: crate::crypto::secret_hash("s"),
            created_at: 1,
            updated_at: 1,
            deleted_at: None,
            upload_until: 5,
            expires_at: None,
        }
    }

    #[test]
    fn life_cycle_and_tombstone() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteConnector::open(&dir.path().join("meta.db")).unwrap();
        let mut s = c.connect().unwrap();
        assert!(s.insert_share(&row("abcdefgh")).unwrap());
        assert!(!s.insert_share(&row("abcdefgh")).unwrap());
        s.with_share_locked("abcdefgh", Some(7), &mut |_, journal| {
            journal.upload_opened(3)
        })
        .unwrap();
        let got = s.get_share("abcdefgh").unwrap().unwrap();
        assert_eq!((got.upload_until, got.updated_at), (5, 7));
        assert!(s.mark_deleted("abcdefgh", 9).unwrap());
        assert!(!s.mark_deleted("abcdefgh", 10).unwrap());
        assert_eq!(
            s.get_share("abcdefgh").unwrap().unwrap().deleted_at,
            Some(9)
        );
        assert!(
            !s.insert_share(&row("abcdefgh")).unwrap(),
            "tombstone keeps the id"
        );
    }

    #[test]
    fn a_share_lock_holds_up_that_share_alone() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteConnector::open(&dir.path().join("meta.db")).unwrap();
        let mut s = c.connect().unwrap();
        assert!(s.insert_share(&row("lockedshare")).unwrap());
        assert!(s.insert_share(&row("othershare")).unwrap());
        let (entered, release) = (std::sync::Barrier::new(2), std::sync::Barrier::new(2));
        std::thread::scope(|scope| {
            let holder = scope.spawn(|| {
                let mut s = c.connect().unwrap();
                s.with_share_locked("lockedshare", Some(1), &mut |row, _| {
                    assert!(row.deleted_at.is_none());
                    entered.wait();
                    release.wait();
                    Ok(())
                })
                .unwrap();
            });
            entered.wait();
            // While the lock is held: other shares are written and deleted at once (SQLite's
            // write lock is not held), and a second server in this process is no exception.
            let started = std::time::Instant::now();
            let mut other = SqliteConnector::open(&dir.path().join("meta.db"))
                .unwrap()
                .connect()
                .unwrap();
            assert!(other.mark_deleted("othershare", 5).unwrap());
            assert!(s.insert_share(&row("newshare1")).unwrap());
            assert!(started.elapsed() < Duration::from_secs(2));
            // The locked share's delete waits for the holder.
            let deleter = scope.spawn(move || {
                let t = std::time::Instant::now();
                assert!(other.mark_deleted("lockedshare", 6).unwrap());
                t.elapsed()
            });
            std::thread::sleep(Duration::from_millis(300));
            release.wait();
            holder.join().unwrap();
            assert!(deleter.join().unwrap() >= Duration::from_millis(250));
        });
    }

    #[test]
    fn migrations_all_applied_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.db");
        SqliteConnector::open(&path).unwrap();
        SqliteConnector::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, SQLITE_MIGRATIONS.len() as i64);
    }

    #[test]
    fn counters_nonces_and_keys() {
        let dir = tempfile::tempdir().unwrap();
        let c = SqliteConnector::open(&dir.path().join("meta.db")).unwrap();
        let mut s = c.connect().unwrap();
        let hour = 3_600_000;
        let allowed = |c: CreateCount| c.allowed;
        // Two of two at the end of one hour...
        assert!(allowed(s.count_create(b"h", hour - 1000, 2).unwrap()));
        assert!(allowed(s.count_create(b"h", hour - 1000, 2).unwrap()));
        let refused = s.count_create(b"h", hour - 1000, 2).unwrap();
        assert_eq!(
            (refused.allowed, refused.previous, refused.current),
            (false, 0, 2)
        );
        // ...and none at the start of the next (a fixed window would allow two more)...
        assert!(!allowed(s.count_create(b"h", hour + 1000, 2).unwrap()));
        // ...until half of the previous hour has slid out: then one.
        assert!(allowed(
            s.count_create(b"h", hour + hour / 2 + 1000, 2).unwrap()
        ));
        assert!(!allowed(
            s.count_create(b"h", hour + hour / 2 + 1000, 2).unwrap()
        ));
        assert!(allowed(s.count_create(b"other", hour, 2).unwrap()));
        assert!(s.consume_nonce("n1", 10).unwrap());
        assert!(!s.consume_nonce("n1", 10).unwrap());
        let k = s.server_key("k").unwrap();
        assert_eq!(k.len(), 32);
        assert_eq!(c.connect().unwrap().server_key("k").unwrap(), k);
        s.prune(2 * hour + 5).unwrap();
        assert!(s.consume_nonce("n1", 10).unwrap(), "expired nonces pruned");
        // The current and the previous window's counts are kept (the sliding limit weighs the
        // previous hour); older ones go, and a client's hash with them.
        let conn = Connection::open(dir.path().join("meta.db")).unwrap();
        let mut st = conn
            .prepare("SELECT window_start FROM create_counts ORDER BY window_start")
            .unwrap();
        let kept: Vec<i64> = st
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(kept, [hour, hour]);
    }
}
