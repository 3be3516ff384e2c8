//! Reading sessions straight from OpenCode's data directory, so a share can be made, re-synced or
//! removed without OpenCode running.
//!
//! OpenCode keeps its data in `$XDG_DATA_HOME/opencode`. Since 1.2 that is the SQLite database
//! `opencode.db` ([`sqlite`]); before, a tree of JSON files under `storage/` ([`json_tree`]). When
//! both exist the database wins: OpenCode migrates the tree into it once and never reads the tree
//! again. Both readers return the objects OpenCode's own API returns (`Session`, and messages as
//! `{info, parts}`), so the document built here is the one the plugin builds from
//! `client.session.messages`.
//!
//! Nothing here ever writes to OpenCode's data.

pub mod json_tree;
pub mod sqlite;

use std::io;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::model::{ChildSession, MessageWithParts, ShareData};

/// Environment variable naming OpenCode's data directory (the flag `--opencode-dir` wins).
pub const DIR_ENV: &str = "BSHARE_OPENCODE_DIR";

#[derive(Debug, thiserror::Error)]
pub enum OpenCodeError {
    #[error(
        "found no OpenCode data in {dir} (neither opencode.db nor storage/); point --opencode-dir or {DIR_ENV} at OpenCode's data directory"
    )]
    NoData { dir: PathBuf },
    #[error(
        "cannot find OpenCode's data directory: neither XDG_DATA_HOME nor HOME is set; pass --opencode-dir"
    )]
    NoHome,
    #[error("could not read OpenCode's database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("could not read {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("OpenCode has no session {id}; `bshare sessions` lists them")]
    NoSession { id: String },
    #[error("{prefix} matches several sessions, give more of the id:\n{}", candidates.join("\n"))]
    AmbiguousSession {
        prefix: String,
        candidates: Vec<String>,
    },
}

/// Where OpenCode keeps its sessions in a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// `opencode.db`, OpenCode 1.2 and later.
    Sqlite(PathBuf),
    /// `storage/`, before 1.2.
    JsonTree(PathBuf),
}

/// One session as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    pub id: String,
    pub title: String,
    /// The directory OpenCode ran in.
    pub directory: String,
    pub project_id: String,
    /// The project's root (the git worktree), when OpenCode recorded one.
    pub project_worktree: Option<String>,
    /// Set on sessions of subagents (`task` tool), which belong to another session.
    pub parent_id: Option<String>,
    /// Epoch milliseconds.
    pub created: i64,
    /// Epoch milliseconds.
    pub updated: i64,
    pub messages: usize,
}

/// A whole session: OpenCode's `Session` object and its messages in order, and (from
/// [`OpenCodeData::load_with_children`]) its subagents' sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionContent {
    pub session: Value,
    pub messages: Vec<MessageWithParts>,
    /// Sessions whose `parentID` leads back to this one, breadth first, oldest first among
    /// siblings.
    pub children: Vec<ChildSession>,
    /// Subagent sessions left out to keep the document within its size limit.
    pub children_omitted: u64,
}

impl SessionContent {
    pub fn id(&self) -> &str {
        self.session["id"].as_str().unwrap_or_default()
    }

    pub fn title(&self) -> &str {
        self.session["title"].as_str().unwrap_or_default()
    }

    /// The ShareData document of this session under `share_id`.
    pub fn into_share_data(self, share_id: &str, created_at: i64, updated_at: i64) -> ShareData {
        ShareData {
            share_id: share_id.to_owned(),
            session_id: self.id().to_owned(),
            created_at,
            updated_at,
            session: self.session,
            messages: self.messages,
            children: self.children,
            children_omitted: self.children_omitted,
            ..ShareData::default()
        }
    }
}

/// A share OpenCode itself made (its `session_share` record) on the server set as
/// `enterprise.url` in its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCodeShare {
    pub session_id: String,
    pub share_id: String,
    pub secret: String,
    pub url: String,
    /// Epoch milliseconds; 0 when OpenCode did not record it.
    pub created_at: i64,
}

/// An OpenCode data directory and the layout found in it.
#[derive(Debug, Clone)]
pub struct OpenCodeData {
    dir: PathBuf,
    layout: Layout,
}

impl OpenCodeData {
    /// OpenCode's default data directory: `$XDG_DATA_HOME/opencode`, else `~/.local/share/opencode`.
    pub fn default_dir() -> Result<PathBuf, OpenCodeError> {
        let data_home =
            crate::config::xdg_dir("XDG_DATA_HOME", ".local/share").ok_or(OpenCodeError::NoHome)?;
        Ok(data_home.join("opencode"))
    }

    /// Open `dir`, or the default directory when `None`. OpenCode's own `OPENCODE_DB` (a database
    /// file, absolute or relative to the data directory) is honoured as OpenCode honours it.
    pub fn locate(dir: Option<&Path>) -> Result<Self, OpenCodeError> {
        let dir = match dir {
            Some(dir) => dir.to_owned(),
            None => Self::default_dir()?,
        };
        match std::env::var_os("OPENCODE_DB").filter(|v| !v.is_empty() && v != ":memory:") {
            Some(db) => Self::open(&dir.join(db)),
            None => Self::open(&dir),
        }
    }

    /// Open an OpenCode data directory (the one holding `opencode.db` or `storage/`), or a
    /// database file itself.
    pub fn open(path: &Path) -> Result<Self, OpenCodeError> {
        if path.is_file() {
            return Ok(Self {
                dir: path.parent().unwrap_or(Path::new(".")).to_owned(),
                layout: Layout::Sqlite(path.to_owned()),
            });
        }
        let storage = path.join("storage");
        let layout = if let Some(db) = database_in(path) {
            Layout::Sqlite(db)
        } else if storage.join("session").is_dir() {
            Layout::JsonTree(storage)
        } else {
            return Err(OpenCodeError::NoData {
                dir: path.to_owned(),
            });
        };
        Ok(Self {
            dir: path.to_owned(),
            layout,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Every session, most recently updated first.
    pub fn sessions(&self) -> Result<Vec<SessionInfo>, OpenCodeError> {
        let mut sessions = match &self.layout {
            Layout::Sqlite(db) => sqlite::sessions(db)?,
            Layout::JsonTree(storage) => json_tree::sessions(storage)?,
        };
        sessions.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
        Ok(sessions)
    }

    /// The whole session, or `None` when OpenCode no longer has it.
    pub fn load(&self, session_id: &str) -> Result<Option<SessionContent>, OpenCodeError> {
        match &self.layout {
            Layout::Sqlite(db) => sqlite::load(db, session_id),
            Layout::JsonTree(storage) => json_tree::load(storage, session_id),
        }
    }

    /// The whole session with the sessions its `task` calls created (their `parentID` is this
    /// session), and theirs, recursively. Children are added breadth first, each session's
    /// oldest first, while the document stays within `limit` bytes; once one does not fit, it
    /// and every session not yet added are counted in `children_omitted` instead.
    pub fn load_with_children(
        &self,
        session_id: &str,
        limit: u64,
    ) -> Result<Option<SessionContent>, OpenCodeError> {
        let Some(mut content) = self.load(session_id)? else {
            return Ok(None);
        };
        let sessions = self.sessions()?;
        let mut kids: std::collections::HashMap<&str, Vec<&SessionInfo>> =
            std::collections::HashMap::new();
        for s in &sessions {
            if let Some(parent) = s.parent_id.as_deref() {
                kids.entry(parent).or_default().push(s);
            }
        }
        if !kids.contains_key(session_id) {
            return Ok(Some(content));
        }
        for list in kids.values_mut() {
            list.sort_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)));
        }
        // Every descendant, breadth first; `seen` cuts the cycles a damaged database could hold.
        let mut order: Vec<&str> = Vec::new();
        let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
        seen.insert(session_id);
        let mut next = 0;
        let mut frontier = vec![session_id];
        while next < frontier.len() {
            let parent = frontier[next];
            next += 1;
            for child in kids.get(parent).into_iter().flatten() {
                if seen.insert(&child.id) {
                    order.push(&child.id);
                    frontier.push(&child.id);
                }
            }
        }
        // The main session's own size, plus room for the envelope (ids, times, field names).
        let mut used = serde_json::to_vec(&content.session).map_or(0, |b| b.len())
            + serde_json::to_vec(&content.messages).map_or(0, |b| b.len())
            + 1024;
        for (i, id) in order.iter().enumerate() {
            let Some(child) = self.load(id)? else {
                continue; // deleted while we read
            };
            let child = ChildSession {
                session: child.session,
                messages: child.messages,
            };
            let size = serde_json::to_vec(&child).map_or(usize::MAX, |b| b.len()) + 1;
            if used.saturating_add(size) as u64 > limit {
                content.children_omitted = (order.len() - i) as u64;
                break;
            }
            used += size;
            content.children.push(child);
        }
        Ok(Some(content))
    }

    /// The shares OpenCode made itself.
    pub fn shares(&self) -> Result<Vec<OpenCodeShare>, OpenCodeError> {
        match &self.layout {
            Layout::Sqlite(db) => sqlite::shares(db),
            Layout::JsonTree(storage) => json_tree::shares(storage),
        }
    }
}

/// The database of a data directory: `opencode.db`, which releases use, else the newest
/// `opencode-<channel>.db` that other release channels (dev, local builds) write.
fn database_in(dir: &Path) -> Option<PathBuf> {
    let db = dir.join("opencode.db");
    if db.is_file() {
        return Some(db);
    }
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with("opencode-") && name.ends_with(".db")
        })
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .max()
        .map(|(_, path)| path)
}

/// The session named by `arg`: its full id or an unambiguous prefix of it.
pub fn find_session<'a>(
    sessions: &'a [SessionInfo],
    arg: &str,
) -> Result<&'a SessionInfo, OpenCodeError> {
    if let Some(exact) = sessions.iter().find(|s| s.id == arg) {
        return Ok(exact);
    }
    let matches: Vec<&SessionInfo> = sessions.iter().filter(|s| s.id.starts_with(arg)).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(OpenCodeError::NoSession { id: arg.to_owned() }),
        many => Err(OpenCodeError::AmbiguousSession {
            prefix: arg.to_owned(),
            candidates: many
                .iter()
                .map(|s| format!("  {}  {}", s.id, s.title))
                .collect(),
        }),
    }
}

/// The most recently updated top-level session of the project `cwd` belongs to: a session whose
/// project root contains `cwd`, or (for directories outside any git project, which OpenCode files
/// under one "global" project rooted at `/`) whose own directory contains `cwd`.
/// `sessions` must be sorted as [`OpenCodeData::sessions`] returns them.
pub fn session_for_directory<'a>(
    sessions: &'a [SessionInfo],
    cwd: &Path,
) -> Option<&'a SessionInfo> {
    let contains = |root: &str| !root.is_empty() && root != "/" && cwd.starts_with(root);
    sessions.iter().find(|s| {
        s.parent_id.is_none()
            && (s.project_worktree.as_deref().is_some_and(contains) || contains(&s.directory))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh copy of the OpenCode 1.18.33 data directory from `tests/data`.
    pub(crate) fn unpack_datadir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let tarball = format!(
            "{}/tests/data/opencode-1.18.33-datadir.tar.gz",
            env!("CARGO_MANIFEST_DIR")
        );
        let status = std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "tar -xzf {tarball}");
        let dir = tmp.path().join("opencode");
        (tmp, dir)
    }

    pub(crate) fn fixture(name: &str) -> ShareData {
        let path = format!(
            "{}/tests/data/opencode-1.18.33-{name}.sharedata.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn info(id: &str, dir: &str, worktree: Option<&str>, parent: Option<&str>) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            title: format!("title of {id}"),
            directory: dir.into(),
            project_id: "p".into(),
            project_worktree: worktree.map(Into::into),
            parent_id: parent.map(Into::into),
            created: 0,
            updated: 0,
            messages: 0,
        }
    }

    const LONG: &str = "ses_df514140fffe4u9ZGLczLpllLo";
    const CHILD: &str = "ses_df513f00effeN6zuJLa81BZRUQ";

    /// The long session's `task` call ran an explore subagent: it comes with the session, whole,
    /// and its task part names it.
    fn assert_long_with_its_subagent(content: &SessionContent) {
        assert_eq!(content.children.len(), 1);
        assert_eq!(content.children_omitted, 0);
        let child = &content.children[0];
        assert_eq!(child.id(), CHILD);
        assert_eq!(child.session["parentID"], LONG);
        assert_eq!(child.messages.len(), 3);
        let grep = child.messages[1]
            .parts
            .iter()
            .find(|p| p["tool"] == "grep")
            .expect("the subagent's grep call");
        assert!(
            grep["state"]["output"]
                .as_str()
                .unwrap()
                .contains("Line 7: # TODO: support floats")
        );
        let task = content
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .find(|p| p["tool"] == "task")
            .unwrap();
        assert_eq!(crate::model::task_session_id(task), Some(CHILD));
    }

    #[test]
    fn subagent_sessions_come_with_their_parent_from_the_database() {
        let (_tmp, dir) = unpack_datadir();
        let data = OpenCodeData::open(&dir).unwrap();
        let content = data.load_with_children(LONG, u64::MAX).unwrap().unwrap();
        assert_long_with_its_subagent(&content);
        // Plain `load` and sessions without subagents carry none.
        assert!(data.load(LONG).unwrap().unwrap().children.is_empty());
        let short = data
            .load_with_children("ses_df514253affeB36ro8YNVEUXH4", u64::MAX)
            .unwrap()
            .unwrap();
        assert!(short.children.is_empty() && short.children_omitted == 0);
        // A child's own subagents are its children, not its parent's.
        let child = data.load_with_children(CHILD, u64::MAX).unwrap().unwrap();
        assert!(child.children.is_empty());
    }

    #[test]
    fn subagent_sessions_come_with_their_parent_from_the_json_tree() {
        let (_tmp, dir) = unpack_datadir();
        let db = OpenCodeData::open(&dir).unwrap();
        let tree = tempfile::tempdir().unwrap();
        let storage = tree.path().join("storage");
        for id in [LONG, CHILD, "ses_df514253affeB36ro8YNVEUXH4"] {
            let c = db.load(id).unwrap().unwrap();
            json_tree::write_session(&storage, &c.session, &c.messages).unwrap();
        }
        let data = OpenCodeData::open(tree.path()).unwrap();
        assert!(matches!(data.layout(), Layout::JsonTree(_)));
        let content = data.load_with_children(LONG, u64::MAX).unwrap().unwrap();
        assert_long_with_its_subagent(&content);
        assert_eq!(
            content,
            db.load_with_children(LONG, u64::MAX).unwrap().unwrap()
        );
    }

    #[test]
    fn subagents_stop_at_the_document_limit_and_say_how_many_were_left_out() {
        let (_tmp, dir) = unpack_datadir();
        let data = OpenCodeData::open(&dir).unwrap();
        let full = data.load_with_children(LONG, u64::MAX).unwrap().unwrap();
        let alone = serde_json::to_vec(&full.clone().into_share_data("x", 0, 0))
            .unwrap()
            .len()
            - serde_json::to_vec(&full.children).unwrap().len();
        let tight = data
            .load_with_children(LONG, alone as u64 + 1024)
            .unwrap()
            .unwrap();
        assert!(tight.children.is_empty());
        assert_eq!(tight.children_omitted, 1);
        assert_eq!(tight.messages, full.messages);
        let doc = tight.into_share_data("x", 0, 0);
        let json: Value = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["childrenOmitted"], 1);
        assert!(json.get("children").is_none());
    }

    /// Subagents of subagents come too, breadth first; a cycle (a damaged database) ends.
    #[test]
    fn subagents_of_subagents_come_too_and_cycles_end() {
        let (_tmp, dir) = unpack_datadir();
        let db = dir.join("opencode.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        // A grandchild under the explore session, and the main session's own row pointing back
        // at the grandchild.
        conn.execute_batch(&format!(
            "INSERT INTO session (id, project_id, slug, directory, title, version, parent_id, time_created, time_updated)
             SELECT 'ses_grandchild', project_id, 'g', directory, 'Deeper', version, '{CHILD}', time_created + 1, time_updated
             FROM session WHERE id = '{CHILD}';
             UPDATE session SET parent_id = 'ses_grandchild' WHERE id = '{LONG}';"
        ))
        .unwrap();
        drop(conn);
        let data = OpenCodeData::open(&dir).unwrap();
        let content = data.load_with_children(LONG, u64::MAX).unwrap().unwrap();
        let ids: Vec<&str> = content.children.iter().map(ChildSession::id).collect();
        assert_eq!(ids, [CHILD, "ses_grandchild"]);
    }

    #[test]
    fn finds_the_database_of_other_channels_and_database_files() {
        let (_tmp, dir) = unpack_datadir();
        let channel_db = dir.join("opencode-dev.db");
        std::fs::rename(dir.join("opencode.db"), &channel_db).unwrap();
        let data = OpenCodeData::open(&dir).unwrap();
        assert_eq!(data.layout(), &Layout::Sqlite(channel_db.clone()));
        assert_eq!(data.sessions().unwrap().len(), 4);
        let data = OpenCodeData::open(&channel_db).unwrap();
        assert_eq!(data.dir(), dir);
        assert_eq!(data.sessions().unwrap().len(), 4);
        let err = OpenCodeData::open(&dir.join("nothing")).unwrap_err();
        assert!(err.to_string().contains("--opencode-dir"), "{err}");
    }

    #[test]
    fn session_argument_takes_id_or_unambiguous_prefix() {
        let sessions = [
            info("ses_abc1", "/a", None, None),
            info("ses_abc2", "/a", None, None),
            info("ses_xyz", "/a", None, None),
        ];
        assert_eq!(find_session(&sessions, "ses_abc1").unwrap().id, "ses_abc1");
        assert_eq!(find_session(&sessions, "ses_x").unwrap().id, "ses_xyz");
        let err = find_session(&sessions, "ses_abc").unwrap_err().to_string();
        assert!(
            err.contains("ses_abc1") && err.contains("ses_abc2"),
            "{err}"
        );
        let err = find_session(&sessions, "nope").unwrap_err().to_string();
        assert!(err.contains("bshare sessions"), "{err}");
    }

    #[test]
    fn directory_picks_newest_top_level_session_of_its_project() {
        // Sorted newest first, as `sessions()` returns them.
        let sessions = [
            info(
                "child",
                "/home/dev/calc",
                Some("/home/dev/calc"),
                Some("top"),
            ),
            info("other", "/home/dev/other", Some("/home/dev/other"), None),
            info("top", "/home/dev/calc/src", Some("/home/dev/calc"), None),
            info("loose", "/tmp/scratch", Some("/"), None),
        ];
        let pick = |cwd: &str| session_for_directory(&sessions, Path::new(cwd)).map(|s| &*s.id);
        assert_eq!(pick("/home/dev/calc"), Some("top"));
        assert_eq!(pick("/home/dev/calc/tests/unit"), Some("top"));
        assert_eq!(pick("/tmp/scratch/x"), Some("loose"));
        assert_eq!(pick("/tmp"), None);
        assert_eq!(pick("/home/dev/calculator"), None);
    }
}
