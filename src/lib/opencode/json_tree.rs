//! OpenCode's JSON storage tree (`storage/`, before OpenCode 1.2).
//!
//! Layout, as OpenCode's `Storage` wrote it and its SQLite migration reads it:
//! `project/<projectID>.json`, `session/<projectID>/<sessionID>.json`,
//! `message/<sessionID>/<messageID>.json`, `part/<messageID>/<partID>.json`, and the share
//! records `session_share/<sessionID>.json` (`{id, secret, url}`) or, in older versions,
//! `share/<sessionID>.json` (`{secret, url}`). Each file is the whole object; OpenCode listed
//! messages and parts sorted by id, and so does this.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{OpenCodeError, OpenCodeShare, SessionContent, SessionInfo};
use crate::model::MessageWithParts;

fn read_json(path: &Path) -> Result<Value, OpenCodeError> {
    let bytes = fs::read(path).map_err(|source| OpenCodeError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| OpenCodeError::Json {
        path: path.to_owned(),
        source,
    })
}

/// The `*.json` files of a directory, sorted by name; a missing directory has none.
fn json_files(dir: &Path) -> Result<Vec<PathBuf>, OpenCodeError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OpenCodeError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| OpenCodeError::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, OpenCodeError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(OpenCodeError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn session_files(storage: &Path) -> Result<Vec<PathBuf>, OpenCodeError> {
    let mut files = Vec::new();
    for project in subdirs(&storage.join("session"))? {
        files.extend(json_files(&project)?);
    }
    Ok(files)
}

pub fn sessions(storage: &Path) -> Result<Vec<SessionInfo>, OpenCodeError> {
    let mut out = Vec::new();
    for file in session_files(storage)? {
        // One damaged file must not hide every other session from the listing.
        let Ok(s) = read_json(&file) else {
            continue;
        };
        let id = s["id"].as_str().map_or_else(|| stem(&file), str::to_owned);
        let project_id = text(&s["projectID"]);
        let project_worktree =
            read_json(&storage.join("project").join(format!("{project_id}.json")))
                .ok()
                .and_then(|p| p["worktree"].as_str().map(str::to_owned));
        let messages = json_files(&storage.join("message").join(&id))?.len();
        out.push(SessionInfo {
            title: text(&s["title"]),
            directory: text(&s["directory"]),
            project_id,
            project_worktree,
            parent_id: s["parentID"].as_str().map(str::to_owned),
            created: s["time"]["created"].as_i64().unwrap_or(0),
            updated: s["time"]["updated"].as_i64().unwrap_or(0),
            messages,
            id,
        });
    }
    Ok(out)
}

pub fn load(storage: &Path, session_id: &str) -> Result<Option<SessionContent>, OpenCodeError> {
    // Only ids that cannot leave the storage tree become file names.
    if !is_plain_id(session_id) {
        return Ok(None);
    }
    let file_name = format!("{session_id}.json");
    let Some(file) = subdirs(&storage.join("session"))?
        .into_iter()
        .map(|project| project.join(&file_name))
        .find(|f| f.is_file())
    else {
        return Ok(None);
    };
    let session = read_json(&file)?;
    let mut messages = Vec::new();
    for file in json_files(&storage.join("message").join(session_id))? {
        let mut info = read_json(&file)?;
        let message_id = info["id"]
            .as_str()
            .map_or_else(|| stem(&file), str::to_owned);
        set_missing(&mut info, "id", &message_id);
        set_missing(&mut info, "sessionID", session_id);
        let mut parts = Vec::new();
        if is_plain_id(&message_id) {
            for file in json_files(&storage.join("part").join(&message_id))? {
                let mut part = read_json(&file)?;
                let part_id = stem(&file);
                set_missing(&mut part, "id", &part_id);
                set_missing(&mut part, "sessionID", session_id);
                set_missing(&mut part, "messageID", &message_id);
                parts.push(part);
            }
        }
        parts.sort_by(|a, b| text(&a["id"]).cmp(&text(&b["id"])));
        messages.push(MessageWithParts { info, parts });
    }
    messages.sort_by(|a, b| text(&a.info["id"]).cmp(&text(&b.info["id"])));
    Ok(Some(SessionContent {
        session,
        messages,
        children: Vec::new(),
        children_omitted: 0,
    }))
}

pub fn shares(storage: &Path) -> Result<Vec<OpenCodeShare>, OpenCodeError> {
    let mut out: Vec<OpenCodeShare> = Vec::new();
    for dir in ["session_share", "share"] {
        for file in json_files(&storage.join(dir))? {
            let session_id = stem(&file);
            if out.iter().any(|s| s.session_id == session_id) {
                continue;
            }
            // `share/` later held downloaded shares of other people; only records with a secret
            // are shares this OpenCode made.
            let Ok(record) = read_json(&file) else {
                continue;
            };
            let (Some(secret), Some(url)) = (record["secret"].as_str(), record["url"].as_str())
            else {
                continue;
            };
            let share_id = record["id"].as_str().map_or_else(
                || {
                    url.trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                },
                str::to_owned,
            );
            out.push(OpenCodeShare {
                session_id,
                share_id,
                secret: secret.to_owned(),
                url: url.to_owned(),
                created_at: record["time"]["created"].as_i64().unwrap_or(0),
            });
        }
    }
    Ok(out)
}

fn set_missing(object: &mut Value, key: &str, value: &str) {
    if let Some(map) = object.as_object_mut() {
        map.entry(key).or_insert_with(|| value.into());
    }
}

fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Write a session into a storage tree the way OpenCode did; used to build test data directories
/// from ShareData documents.
#[doc(hidden)]
pub fn write_session(
    storage: &Path,
    session: &Value,
    messages: &[MessageWithParts],
) -> io::Result<()> {
    let write = |path: PathBuf, value: &Value| -> io::Result<()> {
        fs::create_dir_all(path.parent().unwrap_or(storage))?;
        fs::write(path, serde_json::to_vec(value)?)
    };
    let session_id = text(&session["id"]);
    let project_id = text(&session["projectID"]);
    write(
        storage.join("project").join(format!("{project_id}.json")),
        &serde_json::json!({ "id": project_id, "worktree": session["directory"], "vcs": "git" }),
    )?;
    write(
        storage
            .join("session")
            .join(&project_id)
            .join(format!("{session_id}.json")),
        session,
    )?;
    for m in messages {
        let message_id = text(&m.info["id"]);
        write(
            storage
                .join("message")
                .join(&session_id)
                .join(format!("{message_id}.json")),
            &m.info,
        )?;
        for p in &m.parts {
            write(
                storage
                    .join("part")
                    .join(&message_id)
                    .join(format!("{}.json", text(&p["id"]))),
                p,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::opencode::tests::fixture;
    use crate::opencode::{Layout, OpenCodeData};

    /// A data directory in the pre-1.2 layout holding both fixture sessions.
    fn tree() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("opencode");
        for name in ["short", "long"] {
            let doc = fixture(name);
            write_session(&dir.join("storage"), &doc.session, &doc.messages).unwrap();
        }
        (tmp, dir)
    }

    #[test]
    fn lists_sessions_from_the_tree() {
        let (_tmp, dir) = tree();
        let data = OpenCodeData::open(&dir).unwrap();
        assert!(matches!(data.layout(), Layout::JsonTree(_)));
        let sessions = data.sessions().unwrap();
        let rows: Vec<(&str, usize, Option<&str>)> = sessions
            .iter()
            .map(|s| (s.title.as_str(), s.messages, s.project_worktree.as_deref()))
            .collect();
        assert_eq!(
            rows,
            [
                ("Add multiply, tests and CLI", 23, Some("/home/dev/calc")),
                ("List comprehension vs map", 5, Some("/home/dev/calc")),
            ]
        );
    }

    #[test]
    fn rebuilds_the_fixture_documents_exactly() {
        let (_tmp, dir) = tree();
        let data = OpenCodeData::open(&dir).unwrap();
        for name in ["short", "long"] {
            let expected = fixture(name);
            let doc = data
                .load(&expected.session_id)
                .unwrap()
                .unwrap()
                .into_share_data(&expected.share_id, expected.created_at, expected.updated_at);
            assert_eq!(doc, expected, "{name}");
        }
    }

    #[test]
    fn messages_and_parts_come_in_id_order_whatever_the_directory_order() {
        let (_tmp, dir) = tree();
        let expected = fixture("short");
        // Rename files so that name order and id order disagree; the ids inside decide.
        let msg_dir = dir.join("storage/message").join(&expected.session_id);
        for (i, f) in json_files(&msg_dir).unwrap().into_iter().enumerate() {
            fs::rename(&f, msg_dir.join(format!("{}.json", 9 - i))).unwrap();
        }
        let doc = OpenCodeData::open(&dir)
            .unwrap()
            .load(&expected.session_id)
            .unwrap()
            .unwrap();
        assert_eq!(doc.messages, expected.messages);
    }

    #[test]
    fn reads_share_records_of_both_eras() {
        let (_tmp, dir) = tree();
        let storage = dir.join("storage");
        fs::create_dir_all(storage.join("session_share")).unwrap();
        fs::create_dir_all(storage.join("share")).unwrap();
        fs::write(
            storage.join("session_share/ses_a.json"),
            r#"{"id":"abcd0001","secret":"s1","url":"https://s.example/share/abcd0001"}"#,
        )
        .unwrap();
        fs::write(
            storage.join("share/ses_b.json"),
            r#"{"secret":"s2","url":"https://s.example/share/abcd0002"}"#,
        )
        .unwrap();
        // A downloaded share of somebody else: no secret, not ours.
        fs::write(storage.join("share/ses_c.json"), r#"{"data":[]}"#).unwrap();
        let shares = OpenCodeData::open(&dir).unwrap().shares().unwrap();
        let got: Vec<(&str, &str, &str)> = shares
            .iter()
            .map(|s| {
                (
                    s.session_id.as_str(),
                    s.share_id.as_str(),
                    s.secret.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [("ses_a", "abcd0001", "s1"), ("ses_b", "abcd0002", "s2")]
        );
    }

    #[test]
    fn ids_never_escape_the_tree() {
        let (_tmp, dir) = tree();
        let data = OpenCodeData::open(&dir).unwrap();
        assert!(data.load("../../etc/passwd").unwrap().is_none());
        assert!(data.load("ses_missing").unwrap().is_none());
    }

    #[test]
    fn database_wins_over_a_leftover_tree() {
        let (_tmp, dir) = crate::opencode::tests::unpack_datadir();
        let doc = fixture("short");
        write_session(&dir.join("storage"), &doc.session, &doc.messages).unwrap();
        let data = OpenCodeData::open(&dir).unwrap();
        assert!(matches!(data.layout(), Layout::Sqlite(_)));
        assert_eq!(data.sessions().unwrap().len(), 4);
    }
}
