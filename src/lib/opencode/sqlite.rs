//! OpenCode's SQLite database (`opencode.db`, OpenCode 1.2 and later).
//!
//! OpenCode keeps the database in WAL mode and writes to it while it runs. This reader opens it
//! read-only, takes each snapshot in one short read transaction and closes the connection right
//! after, so it never blocks OpenCode's writers nor holds back its checkpoints.
//!
//! Messages and parts are stored as a JSON `data` column without their ids; OpenCode's own
//! `session.messages` rebuilds them as `{...data, id, sessionID}` and `{...data, id, sessionID,
//! messageID}`, messages ordered by `(time_created, id)` and parts by `id`, and so does this.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row};
use serde_json::{Map, Value, json};

use super::{OpenCodeError, OpenCodeShare, SessionContent, SessionInfo};
use crate::model::MessageWithParts;

/// How long a read waits when the database is briefly locked (WAL recovery, a checkpoint restart).
const BUSY_WAIT: Duration = Duration::from_secs(5);

fn open(db: &Path) -> Result<Connection, OpenCodeError> {
    let err = |source| OpenCodeError::Sqlite {
        path: db.to_owned(),
        source,
    };
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(err)?;
    conn.busy_timeout(BUSY_WAIT).map_err(err)?;
    Ok(conn)
}

/// Run `read` inside one read transaction: every query sees the same snapshot, so parts always
/// belong to the messages read, however busy OpenCode is.
fn snapshot<T>(
    db: &Path,
    read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
) -> Result<T, OpenCodeError> {
    let conn = open(db)?;
    let result = (|| {
        let tx = conn.unchecked_transaction()?;
        let out = read(&tx)?;
        tx.finish()?;
        Ok(out)
    })();
    result.map_err(|source| OpenCodeError::Sqlite {
        path: db.to_owned(),
        source,
    })
}

pub fn sessions(db: &Path) -> Result<Vec<SessionInfo>, OpenCodeError> {
    snapshot(db, |conn| {
        let mut stmt = conn.prepare(
            "SELECT s.id, s.title, s.directory, s.project_id, p.worktree, s.parent_id,
                    s.time_created, s.time_updated,
                    (SELECT count(*) FROM message m WHERE m.session_id = s.id)
             FROM session s LEFT JOIN project p ON p.id = s.project_id",
        )?;
        stmt.query_map([], |row| {
            Ok(SessionInfo {
                id: row.get(0)?,
                title: row.get(1)?,
                directory: row.get(2)?,
                project_id: row.get(3)?,
                project_worktree: row.get(4)?,
                parent_id: row.get(5)?,
                created: row.get(6)?,
                updated: row.get(7)?,
                messages: row.get::<_, i64>(8)? as usize,
            })
        })?
        .collect()
    })
}

pub fn load(db: &Path, session_id: &str) -> Result<Option<SessionContent>, OpenCodeError> {
    snapshot(db, |conn| {
        let Some(session) = conn
            .query_row(
                "SELECT * FROM session WHERE id = ?1",
                [session_id],
                session_from_row,
            )
            .optional()?
        else {
            return Ok(None);
        };

        let mut parts: HashMap<String, Vec<Value>> = HashMap::new();
        let mut stmt = conn.prepare(
            "SELECT id, message_id, data FROM part WHERE session_id = ?1 ORDER BY message_id, id",
        )?;
        let mut rows = stmt.query([session_id])?;
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let message_id: String = row.get(1)?;
            let mut part = data_object(row, 2)?;
            part.insert("id".into(), id.into());
            part.insert("sessionID".into(), session_id.into());
            part.insert("messageID".into(), message_id.clone().into());
            parts
                .entry(message_id)
                .or_default()
                .push(Value::Object(part));
        }

        let mut stmt = conn.prepare(
            "SELECT id, data FROM message WHERE session_id = ?1 ORDER BY time_created, id",
        )?;
        let messages = stmt
            .query_map([session_id], |row| {
                let id: String = row.get(0)?;
                let mut info = data_object(row, 1)?;
                info.insert("id".into(), id.clone().into());
                info.insert("sessionID".into(), session_id.into());
                Ok(MessageWithParts {
                    info: Value::Object(info),
                    parts: parts.remove(&id).unwrap_or_default(),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Some(SessionContent {
            session,
            messages,
            children: Vec::new(),
            children_omitted: 0,
        }))
    })
}

pub fn shares(db: &Path) -> Result<Vec<OpenCodeShare>, OpenCodeError> {
    snapshot(db, |conn| {
        // Databases from before sharing moved into its own table have no `session_share`.
        let has_table: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'session_share'",
            [],
            |row| row.get(0),
        )?;
        if !has_table {
            return Ok(Vec::new());
        }
        let mut stmt = conn.prepare(
            "SELECT session_id, id, secret, url, time_created FROM session_share ORDER BY time_created, id",
        )?;
        stmt.query_map([], |row| {
            Ok(OpenCodeShare {
                session_id: row.get(0)?,
                share_id: row.get(1)?,
                secret: row.get(2)?,
                url: row.get(3)?,
                created_at: row.get::<_, Option<i64>>(4)?.unwrap_or(0),
            })
        })?
        .collect()
    })
}

/// A JSON object stored in a text column; anything else becomes an empty object rather than
/// failing the whole session over one odd row.
fn data_object(row: &Row<'_>, index: usize) -> rusqlite::Result<Map<String, Value>> {
    let text: String = row.get(index)?;
    Ok(match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    })
}

/// A column holding JSON text, parsed; `None` when NULL or not JSON.
fn json_column(row: &Row<'_>, name: &str) -> Option<Value> {
    let text: Option<String> = row.get(name).ok().flatten();
    text.and_then(|t| serde_json::from_str(&t).ok())
}

fn column<T: rusqlite::types::FromSql>(row: &Row<'_>, name: &str) -> Option<T> {
    row.get::<_, Option<T>>(name).ok().flatten()
}

/// OpenCode's `Session.fromRow`: the `Session` object its API returns, fields in its order,
/// absent ones left out. Columns newer or older versions lack are skipped.
fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Value> {
    let mut s = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            s.insert(key.to_owned(), v);
        }
    };
    put("id", Some(row.get::<_, String>("id")?.into()));
    put("slug", column::<String>(row, "slug").map(Into::into));
    put(
        "projectID",
        column::<String>(row, "project_id").map(Into::into),
    );
    put(
        "workspaceID",
        column::<String>(row, "workspace_id").map(Into::into),
    );
    put(
        "directory",
        column::<String>(row, "directory").map(Into::into),
    );
    put("path", column::<String>(row, "path").map(Into::into));
    put(
        "parentID",
        column::<String>(row, "parent_id").map(Into::into),
    );
    put("title", column::<String>(row, "title").map(Into::into));
    put("agent", column::<String>(row, "agent").map(Into::into));
    put("model", json_column(row, "model"));
    put("version", column::<String>(row, "version").map(Into::into));
    let additions = column::<i64>(row, "summary_additions");
    let deletions = column::<i64>(row, "summary_deletions");
    let files = column::<i64>(row, "summary_files");
    if additions.is_some() || deletions.is_some() || files.is_some() {
        let mut summary = json!({
            "additions": additions.unwrap_or(0),
            "deletions": deletions.unwrap_or(0),
            "files": files.unwrap_or(0),
        });
        if let Some(diffs) = json_column(row, "summary_diffs") {
            summary["diffs"] = diffs;
        }
        put("summary", Some(summary));
    }
    put(
        "share",
        column::<String>(row, "share_url")
            .filter(|u| !u.is_empty())
            .map(|url| json!({ "url": url })),
    );
    put("cost", column::<f64>(row, "cost").map(Into::into));
    if let Some(input) = column::<i64>(row, "tokens_input") {
        let n = |name| column::<i64>(row, name).unwrap_or(0);
        put(
            "tokens",
            Some(json!({
                "input": input,
                "output": n("tokens_output"),
                "reasoning": n("tokens_reasoning"),
                "cache": { "read": n("tokens_cache_read"), "write": n("tokens_cache_write") },
            })),
        );
    }
    let mut time = Map::new();
    time.insert(
        "created".into(),
        column::<i64>(row, "time_created").unwrap_or(0).into(),
    );
    time.insert(
        "updated".into(),
        column::<i64>(row, "time_updated").unwrap_or(0).into(),
    );
    for (key, name) in [
        ("compacting", "time_compacting"),
        ("archived", "time_archived"),
    ] {
        if let Some(v) = column::<i64>(row, name) {
            time.insert(key.into(), v.into());
        }
    }
    put("time", Some(Value::Object(time)));
    put("permission", json_column(row, "permission"));
    put("revert", json_column(row, "revert"));
    put("metadata", json_column(row, "metadata"));
    Ok(Value::Object(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opencode::tests::{fixture, unpack_datadir};
    use crate::opencode::{Layout, OpenCodeData};

    const SHORT: &str = "ses_df514253affeB36ro8YNVEUXH4";
    const LONG: &str = "ses_df514140fffe4u9ZGLczLpllLo";

    /// Keys of two JSON objects whose values differ.
    fn differing_keys(a: &Value, b: &Value) -> Vec<String> {
        let (a, b) = (a.as_object().unwrap(), b.as_object().unwrap());
        let mut keys: Vec<String> = a
            .keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn lists_the_four_sessions_newest_first() {
        let (_tmp, dir) = unpack_datadir();
        let data = OpenCodeData::open(&dir).unwrap();
        assert!(matches!(data.layout(), Layout::Sqlite(_)));
        let sessions = data.sessions().unwrap();
        let rows: Vec<(&str, &str, usize, Option<&str>)> = sessions
            .iter()
            .map(|s| {
                (
                    s.id.as_str(),
                    s.title.as_str(),
                    s.messages,
                    s.parent_id.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("ses_df5117a9affeE0Q45Co64fdNOA", "Show git log", 3, None),
                (LONG, "Add multiply, tests and CLI", 26, None),
                (SHORT, "List comprehension vs map", 5, None),
                (
                    "ses_df513f00effeN6zuJLa81BZRUQ",
                    "Scan for TODO comments (@explore subagent)",
                    3,
                    Some(LONG)
                ),
            ]
        );
        assert!(sessions.iter().all(|s| s.directory == "/home/dev/calc"
            && s.project_worktree.as_deref() == Some("/home/dev/calc")));
    }

    /// The short session was shared after the fixture was taken, which set `share` and bumped
    /// `time.updated`; nothing else may differ.
    #[test]
    fn short_session_is_the_plugins_document() {
        let (_tmp, dir) = unpack_datadir();
        let expected = fixture("short");
        let doc = OpenCodeData::open(&dir)
            .unwrap()
            .load(SHORT)
            .unwrap()
            .unwrap()
            .into_share_data(&expected.share_id, expected.created_at, expected.updated_at);
        assert_eq!(doc.messages, expected.messages);
        assert_eq!(
            differing_keys(&doc.session, &expected.session),
            ["share", "time"]
        );
        assert_eq!(
            doc.session["share"]["url"],
            "http://127.0.0.1:18443/share/abcd1235"
        );
        assert_eq!(
            differing_keys(&doc.session["time"], &expected.session["time"]),
            ["updated"]
        );
    }

    /// The long session went on after the fixture was taken (three more messages while OpenCode
    /// shared it): its first 23 messages are the fixture's, and only the running totals and the
    /// share differ in the session.
    #[test]
    fn long_session_is_the_plugins_document_plus_later_messages() {
        let (_tmp, dir) = unpack_datadir();
        let expected = fixture("long");
        let doc = OpenCodeData::open(&dir)
            .unwrap()
            .load(LONG)
            .unwrap()
            .unwrap()
            .into_share_data("x", 0, 0);
        let n = expected.messages.len();
        assert_eq!(n, 23);
        assert_eq!(doc.messages[..n], expected.messages[..]);
        assert_eq!(doc.messages.len(), 26);
        for later in &doc.messages[n..] {
            let created = later.info["time"]["created"].as_i64().unwrap();
            assert!(created > expected.updated_at, "message after the fixture");
        }
        assert_eq!(
            differing_keys(&doc.session, &expected.session),
            ["cost", "share", "time", "tokens"]
        );
    }

    #[test]
    fn rebuilt_objects_carry_their_ids() {
        let (_tmp, dir) = unpack_datadir();
        let content = OpenCodeData::open(&dir)
            .unwrap()
            .load(LONG)
            .unwrap()
            .unwrap();
        for m in &content.messages {
            assert_eq!(m.info["sessionID"], LONG);
            let mid = m.info["id"].as_str().unwrap();
            let ids: Vec<&str> = m.parts.iter().map(|p| p["id"].as_str().unwrap()).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            assert_eq!(ids, sorted, "parts by id");
            assert!(
                m.parts
                    .iter()
                    .all(|p| p["messageID"] == mid && p["sessionID"] == LONG)
            );
        }
    }

    #[test]
    fn missing_session_is_none() {
        let (_tmp, dir) = unpack_datadir();
        assert!(
            OpenCodeData::open(&dir)
                .unwrap()
                .load("ses_gone")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn reads_opencodes_own_shares() {
        let (_tmp, dir) = unpack_datadir();
        let shares = OpenCodeData::open(&dir).unwrap().shares().unwrap();
        assert_eq!(
            shares,
            [
                OpenCodeShare {
                    session_id: SHORT.into(),
                    share_id: "abcd1235".into(),
                    secret: "s3cr3t".into(),
                    url: "http://127.0.0.1:18443/share/abcd1235".into(),
                    created_at: 1_795_479_703_884,
                },
                OpenCodeShare {
                    session_id: "ses_df5117a9affeE0Q45Co64fdNOA".into(),
                    share_id: "abcd1236".into(),
                    secret: "s3cr3t".into(),
                    url: "http://127.0.0.1:18443/share/abcd1236".into(),
                    created_at: 1_795_479_733_666,
                },
            ]
        );
    }

    #[test]
    fn database_without_share_table_has_no_shares() {
        let (_tmp, dir) = unpack_datadir();
        let conn = Connection::open(dir.join("opencode.db")).unwrap();
        conn.execute_batch("DROP TABLE session_share").unwrap();
        drop(conn);
        assert!(
            OpenCodeData::open(&dir)
                .unwrap()
                .shares()
                .unwrap()
                .is_empty()
        );
    }

    /// OpenCode writes while bshare reads: every read must succeed and see whole transactions
    /// (a message is written together with its parts), and the writer must never be blocked.
    #[test]
    fn reads_consistently_while_opencode_writes() {
        let (_tmp, dir) = unpack_datadir();
        let db = dir.join("opencode.db");
        let writer = Connection::open(&db).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        let data = OpenCodeData::open(&dir).unwrap();
        let before = data.load(SHORT).unwrap().unwrap().messages.len();
        const ROUNDS: usize = 200;
        let done = &std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 0..ROUNDS {
                    let tx = writer.unchecked_transaction().unwrap();
                    let mid = format!("msg_zz{i:06}");
                    tx.execute(
                        "INSERT INTO message (id, session_id, time_created, time_updated, data)
                         VALUES (?1, ?2, 1900000000000 + ?3, 0, '{\"role\":\"user\"}')",
                        rusqlite::params![mid, SHORT, i as i64],
                    )
                    .unwrap();
                    for p in 0..3 {
                        tx.execute(
                            "INSERT INTO part (id, message_id, session_id, time_created, time_updated, data)
                             VALUES (?1, ?2, ?3, 0, 0, '{\"type\":\"text\",\"text\":\"x\"}')",
                            rusqlite::params![format!("prt_zz{i:06}{p}"), mid, SHORT],
                        )
                        .unwrap();
                    }
                    tx.commit().unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut last = before;
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) || reads == 0 {
                let content = data.load(SHORT).unwrap().unwrap();
                assert!(content.messages.len() >= last, "never goes back in time");
                last = content.messages.len();
                for m in &content.messages[before..] {
                    assert_eq!(m.parts.len(), 3, "a message comes with all its parts");
                }
                assert!(data.sessions().unwrap().len() == 4);
                reads += 1;
            }
        });
        let content = data.load(SHORT).unwrap().unwrap();
        assert_eq!(content.messages.len(), before + ROUNDS);
    }
}
