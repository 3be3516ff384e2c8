//! What the user does with shares: create, re-sync, take down, find by a loose name.
//!
//! The CLI commands and the TUI both call these functions; they talk to OpenCode's data
//! ([`crate::opencode`]), the server ([`crate::client`]) and the registry ([`crate::registry`]),
//! and leave printing to the caller. Slow work (uploads) reports progress through a callback.

use std::path::Path;

use serde::Serialize;

use crate::client::{self, Client, ClientError};
use crate::model::{ShareData, now_millis};
use crate::opencode::{OpenCodeData, OpenCodeError, SessionInfo};
use crate::redact::{self, Report};
use crate::registry::{self, Entry, RegistryError};

/// What may leave the machine (DESIGN.md §3a). Redaction is on unless the user explicitly opts
/// out (`--no-redact`), and the caller warns when it is off.
#[derive(Debug, Clone)]
pub struct Privacy {
    pub redact: bool,
    /// Paths under this home directory become `~/…`.
    pub home: Option<String>,
}

impl Default for Privacy {
    fn default() -> Self {
        Self {
            redact: true,
            home: None,
        }
    }
}

impl Privacy {
    /// The bytes to upload for `doc`, redacted unless opted out, and what was found.
    pub fn prepare(&self, doc: &ShareData) -> Result<(Vec<u8>, Report), SharingError> {
        let opts = redact::Options {
            home: self.home.clone(),
        };
        Ok(redact::prepare_upload(doc, self.redact, &opts)?)
    }
}

/// What an upload would send, for a review before it happens (`bshare share --dry-run`, the TUI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub session_id: String,
    pub title: String,
    /// The server it would go to.
    pub server: String,
    /// The share it would update; `None` for a new share.
    pub share_id: Option<String>,
    pub bytes: u64,
    pub messages: usize,
    /// Subagent sessions the document would carry.
    pub subagents: usize,
    /// False when the user opted out of redaction: nothing would be removed.
    pub redact: bool,
    pub report: Report,
}

/// What uploading `session_id` to `server` would send, without sending anything: the document
/// is built and redacted exactly as `share_session` or `sync_share` would.
pub fn review_session(
    server: &str,
    registry_path: &Path,
    opencode: &OpenCodeData,
    session_id: &str,
    privacy: &Privacy,
) -> Result<Review, SharingError> {
    let existing = registry::load(registry_path)?
        .shares
        .into_iter()
        .find(|e| e.server == server && e.session_id == session_id);
    // With its subagents, as an upload would send them: a secret in one of them is found too.
    let content = opencode
        .load_with_children(session_id, DOCUMENT_LIMIT)?
        .ok_or_else(|| OpenCodeError::NoSession {
            id: session_id.to_owned(),
        })?;
    let title = content.title().to_owned();
    let messages = content.messages.len();
    let subagents = content.children.len();
    let now = now_millis();
    let (share_id, created_at) = match &existing {
        Some(e) => (e.share_id.clone(), e.created_at),
        None => (crate::crypto::new_share_id(), now),
    };
    let doc = content.into_share_data(&share_id, created_at, now);
    let (body, report) = privacy.prepare(&doc)?;
    Ok(Review {
        session_id: session_id.to_owned(),
        title,
        server: server.to_owned(),
        share_id: existing.map(|e| e.share_id),
        bytes: body.len() as u64,
        messages,
        subagents,
        redact: privacy.redact,
        report,
    })
}

/// How many fresh ids `share_session` tries when the server says one is taken.
const ID_ATTEMPTS: usize = 3;

/// The size up to which subagent sessions are added to a document: the server's default
/// document limit. A server with a lower limit says so when it refuses the document, and the
/// upload is tried once more with the subagents that fit under that limit.
pub const DOCUMENT_LIMIT: u64 = crate::config::ServerConfig::DEFAULT_MAX_DOCUMENT_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum SharingError {
    #[error(transparent)]
    OpenCode(#[from] OpenCodeError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "OpenCode no longer has session {session_id} of share {share_id}, so there is nothing to upload; `bshare unshare {share_id}` takes the share down"
    )]
    SessionGone {
        share_id: String,
        session_id: String,
    },
    #[error(
        "{source}; the share {share_id} exists and is recorded, `bshare sync {share_id}` retries the upload"
    )]
    UploadFailed {
        share_id: String,
        source: ClientError,
    },
    #[error("no share matches {arg}; `bshare ls` lists your shares")]
    NoMatch { arg: String },
    #[error("{arg} matches several shares, give more of the id or the whole link:\n{}", candidates.join("\n"))]
    Ambiguous {
        arg: String,
        candidates: Vec<String>,
    },
    #[error(
        "share {share_id} was made by OpenCode itself (its /share command), which keeps it up to date while it runs; bshare only re-syncs shares it made"
    )]
    MadeByOpenCode { share_id: String },
    #[error(
        "share {share_id} is OpenCode's own record, which bshare never edits; run /unshare in OpenCode, or `bshare unshare {share_id}` without --local-only to take it down"
    )]
    OpenCodeRecord { share_id: String },
    #[error("could not serialize the session: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Who made a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// bshare or the OpenCode plugin; recorded in the registry.
    Bshare,
    /// OpenCode's own `/share`, on a server set as its `enterprise.url`.
    OpenCode,
}

/// A share the user can act on, from the registry or from OpenCode's own records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    pub share_id: String,
    pub session_id: String,
    pub url: String,
    pub server: String,
    pub title: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds of the last upload; 0 when none finished.
    pub updated_at: i64,
    pub origin: Origin,
    /// Whether OpenCode still has the session; `None` when its data could not be read.
    pub session_exists: Option<bool>,
    /// When the share expires (epoch ms); `None`: never, or not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Never printed.
    #[serde(skip)]
    pub secret: String,
}

impl Share {
    fn from_entry(e: &Entry) -> Self {
        Self {
            share_id: e.share_id.clone(),
            session_id: e.session_id.clone(),
            url: e.url.clone(),
            server: e.server.clone(),
            title: e.title.clone(),
            created_at: e.created_at,
            updated_at: e.updated_at,
            origin: Origin::Bshare,
            session_exists: None,
            expires_at: e.expires_at(),
            secret: e.secret.clone(),
        }
    }
}

/// Every share: the registry's, then OpenCode's own that the registry does not hold, newest first.
/// `opencode` is optional so that shares stay listable when OpenCode's data is gone.
pub fn list_shares(
    registry_path: &Path,
    opencode: Option<&OpenCodeData>,
) -> Result<Vec<Share>, SharingError> {
    let registry = registry::load(registry_path)?;
    let mut shares: Vec<Share> = registry.shares.iter().map(Share::from_entry).collect();
    if let Some(data) = opencode {
        let sessions = data.sessions()?;
        let find = |id: &str| sessions.iter().find(|s| s.id == id);
        for share in &mut shares {
            share.session_exists = Some(find(&share.session_id).is_some());
        }
        for own in data.shares()? {
            let server = client::origin(&own.url).unwrap_or_default().to_owned();
            if shares
                .iter()
                .any(|s| s.share_id == own.share_id && s.server == server)
            {
                continue;
            }
            let session = find(&own.session_id);
            shares.push(Share {
                title: session.map(|s| s.title.clone()).unwrap_or_default(),
                updated_at: session.map_or(0, |s| s.updated),
                session_exists: Some(session.is_some()),
                share_id: own.share_id,
                session_id: own.session_id,
                url: own.url,
                server,
                created_at: own.created_at,
                origin: Origin::OpenCode,
                expires_at: None,
                secret: own.secret,
            });
        }
    }
    shares.sort_by_key(|s| std::cmp::Reverse(s.created_at));
    Ok(shares)
}

/// The share named by `arg`: its link, its id, or an unambiguous prefix of its id.
pub fn resolve<'a>(shares: &'a [Share], arg: &str) -> Result<&'a Share, SharingError> {
    let arg = arg.trim();
    let candidates: Vec<&Share> = if arg.contains("://") {
        let link = arg.trim_end_matches('/');
        let by_url: Vec<&Share> = shares
            .iter()
            .filter(|s| s.url.trim_end_matches('/') == link)
            .collect();
        if by_url.is_empty() {
            // A link may differ in form from the recorded one (a proxy's address, `/api/share/`).
            let id = link.rsplit('/').next().unwrap_or_default();
            let server = client::origin(link).unwrap_or_default();
            shares
                .iter()
                .filter(|s| s.share_id == id && client::origin(&s.server) == Some(server))
                .collect()
        } else {
            by_url
        }
    } else {
        let exact: Vec<&Share> = shares.iter().filter(|s| s.share_id == arg).collect();
        if exact.is_empty() && !arg.is_empty() {
            shares
                .iter()
                .filter(|s| s.share_id.starts_with(arg))
                .collect()
        } else {
            exact
        }
    };
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(SharingError::NoMatch {
            arg: arg.to_owned(),
        }),
        many => Err(SharingError::Ambiguous {
            arg: arg.to_owned(),
            candidates: many
                .iter()
                .map(|s| format!("  {}  {}  {}", s.share_id, s.url, s.title))
                .collect(),
        }),
    }
}

/// What `share_session` or `sync_share` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub share: Share,
    /// False when the session was already shared on this server and was re-synced instead.
    pub created: bool,
    pub bytes: u64,
    /// What redaction removed from this upload (subagent sessions included).
    pub report: Report,
    /// Subagent sessions in the document.
    pub subagents: usize,
    /// Subagent sessions left out to stay within the document limit.
    pub subagents_omitted: u64,
}

impl Shared {
    /// A sentence about the subagents, for the caller to print; `None` when there are none.
    pub fn subagents_note(&self) -> Option<String> {
        let plural = |n: u64| if n == 1 { "" } else { "s" };
        const WHY: &str = "left out to stay within the server's document limit (the page says so)";
        match (self.subagents as u64, self.subagents_omitted) {
            (0, 0) => None,
            (n, 0) => Some(format!("with {n} subagent session{}", plural(n))),
            (0, left) => Some(format!(
                "without its {left} subagent session{}, {WHY}",
                plural(left)
            )),
            (n, left) => Some(format!(
                "with {n} subagent session{}; {left} more {WHY}",
                plural(n)
            )),
        }
    }
}

/// The limit a bshare server named when it refused a document (`... over this server's limit
/// of N bytes`), when it is below `tried`.
fn refused_limit(err: &ClientError, tried: u64) -> Option<u64> {
    let ClientError::TooLarge { message, .. } = err else {
        return None;
    };
    let rest = &message[message.find("limit of ")? + "limit of ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|&n| n < tried)
}

/// Share an OpenCode session on `client`'s server and record it in the registry. A session
/// already shared there is re-synced instead of shared twice.
pub fn share_session(
    client: &Client,
    registry_path: &Path,
    opencode: &OpenCodeData,
    session_id: &str,
    privacy: &Privacy,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Shared, SharingError> {
    let existing = registry::load(registry_path)?
        .shares
        .into_iter()
        .find(|e| e.server == client.server() && e.session_id == session_id);
    if let Some(entry) = existing {
        let share = Share::from_entry(&entry);
        return sync_with(client, registry_path, opencode, &share, privacy, progress);
    }

    let load = |limit| {
        opencode
            .load_with_children(session_id, limit)?
            .ok_or_else(|| OpenCodeError::NoSession {
                id: session_id.to_owned(),
            })
    };
    let mut limit = DOCUMENT_LIMIT;
    let mut content = load(limit)?;
    let title = content.title().to_owned();
    let now = now_millis();
    let mut attempt = 0;
    let (created, body, report) = loop {
        attempt += 1;
        // The id is chosen here so the document, and so the declared size, is final before the
        // server signs the upload.
        let share_id = crate::crypto::new_share_id();
        let doc = content.clone().into_share_data(&share_id, now, now);
        let (body, report) = privacy.prepare(&doc)?;
        match client.create(session_id, Some(&share_id), body.len() as u64) {
            Ok(created) => break (created, body, report),
            Err(e) if e.is_conflict() && attempt < ID_ATTEMPTS => {}
            Err(e) => match refused_limit(&e, limit).filter(|_| !content.children.is_empty()) {
                Some(lower) => {
                    limit = lower;
                    content = load(limit)?;
                }
                None => return Err(e.into()),
            },
        }
    };
    let (subagents, subagents_omitted) = (content.children.len(), content.children_omitted);

    // Recorded before the upload: the secret is the only way to ever remove the share.
    let mut entry = Entry {
        share_id: created.share_id.clone(),
        session_id: session_id.to_owned(),
        secret: created.secret.clone(),
        url: created.url.clone(),
        server: client.server().to_owned(),
        title,
        created_at: now,
        updated_at: 0,
        extra: serde_json::Map::new(),
    };
    entry.set_expires_at(created.share_expires_at);
    registry::update(registry_path, |r| r.upsert(entry.clone()))?;
    client
        .upload(&created.presigned_url, &body, progress)
        .map_err(|source| SharingError::UploadFailed {
            share_id: created.share_id.clone(),
            source,
        })?;
    entry.updated_at = now_millis();
    mark_uploaded(
        registry_path,
        &entry.server,
        &entry.share_id,
        entry.updated_at,
        &entry.title,
    )?;
    let mut share = Share::from_entry(&entry);
    share.session_exists = Some(true);
    Ok(Shared {
        share,
        created: true,
        bytes: body.len() as u64,
        report,
        subagents,
        subagents_omitted,
    })
}

/// Upload the current state of a share's session again (with its subagents, redacted as
/// `privacy` says). The answer holds the share as now recorded.
pub fn sync_share(
    registry_path: &Path,
    opencode: &OpenCodeData,
    share: &Share,
    privacy: &Privacy,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Shared, SharingError> {
    let client = Client::new(&share.server)?;
    sync_with(&client, registry_path, opencode, share, privacy, progress)
}

fn sync_with(
    client: &Client,
    registry_path: &Path,
    opencode: &OpenCodeData,
    share: &Share,
    privacy: &Privacy,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Shared, SharingError> {
    if share.origin == Origin::OpenCode {
        return Err(SharingError::MadeByOpenCode {
            share_id: share.share_id.clone(),
        });
    }
    let load = |limit| {
        opencode
            .load_with_children(&share.session_id, limit)?
            .ok_or_else(|| SharingError::SessionGone {
                share_id: share.share_id.clone(),
                session_id: share.session_id.clone(),
            })
    };
    let mut limit = DOCUMENT_LIMIT;
    let now = now_millis();
    // Redaction runs on the whole document, subagents included, every time it is rebuilt: a
    // retry under a lower limit uploads a different (smaller) document.
    let (content, body, report, presigned) = loop {
        let content = load(limit)?;
        let doc = content
            .clone()
            .into_share_data(&share.share_id, share.created_at, now);
        let (body, report) = privacy.prepare(&doc)?;
        match client.presign(&share.share_id, &share.secret, body.len() as u64) {
            Ok(presigned) => break (content, body, report, presigned),
            Err(e) => match refused_limit(&e, limit).filter(|_| !content.children.is_empty()) {
                Some(lower) => limit = lower,
                None => return Err(e.into()),
            },
        }
    };
    let title = content.title().to_owned();
    client.upload(&presigned.presigned_url, &body, progress)?;
    mark_uploaded(registry_path, &share.server, &share.share_id, now, &title)?;
    let mut updated = share.clone();
    updated.updated_at = now;
    updated.title = title;
    updated.session_exists = Some(true);
    Ok(Shared {
        share: updated,
        created: false,
        bytes: body.len() as u64,
        report,
        subagents: content.children.len(),
        subagents_omitted: content.children_omitted,
    })
}

fn mark_uploaded(
    registry_path: &Path,
    server: &str,
    share_id: &str,
    at: i64,
    title: &str,
) -> Result<(), SharingError> {
    registry::update(registry_path, |r| {
        // A share removed meanwhile (by the TUI or the plugin) stays removed.
        if let Some(e) = r
            .shares
            .iter_mut()
            .find(|e| e.server == server && e.share_id == share_id)
        {
            e.updated_at = at;
            title.clone_into(&mut e.title);
        }
    })?;
    Ok(())
}

/// What `unshare` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unshared {
    /// The server deleted it.
    Deleted,
    /// The server no longer had it; only the local record was removed.
    AlreadyGone,
    /// Only the local record was removed, as asked.
    Forgotten,
}

/// Take a share down and remove it from the registry. With `local_only`, only forget it here
/// (for a server that is gone for good). Works when OpenCode no longer has the session.
pub fn unshare(
    registry_path: &Path,
    share: &Share,
    local_only: bool,
) -> Result<Unshared, SharingError> {
    if local_only {
        if share.origin == Origin::OpenCode {
            return Err(SharingError::OpenCodeRecord {
                share_id: share.share_id.clone(),
            });
        }
        forget(registry_path, share)?;
        return Ok(Unshared::Forgotten);
    }
    let client = Client::new(&share.server)?;
    let outcome = match client.delete(&share.share_id, &share.secret) {
        Ok(()) => Unshared::Deleted,
        Err(e) if e.is_gone() => Unshared::AlreadyGone,
        Err(e) => return Err(e.into()),
    };
    if share.origin == Origin::Bshare {
        forget(registry_path, share)?;
    }
    Ok(outcome)
}

fn forget(registry_path: &Path, share: &Share) -> Result<(), SharingError> {
    registry::update(registry_path, |r| r.remove(&share.server, &share.share_id))?;
    Ok(())
}

/// The session `bshare share` takes without an argument: the newest of `cwd`'s project.
pub fn default_session<'a>(sessions: &'a [SessionInfo], cwd: &Path) -> Option<&'a SessionInfo> {
    crate::opencode::session_for_directory(sessions, cwd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(id: &str, server: &str) -> Share {
        Share {
            share_id: id.into(),
            session_id: format!("ses_{id}"),
            url: format!("{server}/share/{id}"),
            server: server.into(),
            title: format!("about {id}"),
            created_at: 0,
            updated_at: 0,
            origin: Origin::Bshare,
            session_exists: None,
            expires_at: None,
            secret: "s".into(),
        }
    }

    #[test]
    fn share_argument_is_id_link_or_unique_prefix() {
        let shares = [
            share("Abc12345xyz", "https://a.example"),
            share("Abc19999xyz", "https://a.example"),
            share("Zed00000", "https://b.example"),
            share("Zed00000", "https://c.example"),
        ];
        let pick =
            |arg: &str| resolve(&shares, arg).map(|s| (s.share_id.clone(), s.server.clone()));
        assert_eq!(
            pick("Abc12345xyz").unwrap(),
            ("Abc12345xyz".into(), "https://a.example".into())
        );
        assert_eq!(pick("Abc1234").unwrap().0, "Abc12345xyz");
        assert_eq!(
            pick("https://c.example/share/Zed00000/").unwrap().1,
            "https://c.example"
        );
        // A link in another form still finds the share by server and id.
        assert_eq!(
            pick("https://b.example/api/share/Zed00000").unwrap().1,
            "https://b.example"
        );

        let err = pick("Abc1").unwrap_err().to_string();
        assert!(
            err.contains("Abc12345xyz") && err.contains("Abc19999xyz"),
            "{err}"
        );
        let err = pick("Zed00000").unwrap_err().to_string();
        assert!(
            err.contains("b.example") && err.contains("c.example"),
            "{err}"
        );
        let err = pick("nothing").unwrap_err().to_string();
        assert!(err.contains("bshare ls"), "{err}");
        assert!(pick("").is_err());
        assert!(pick("https://d.example/share/Zed00000").is_err());
    }

    #[test]
    fn listing_merges_opencodes_own_shares_without_secrets() {
        let (_tmp, dir) = crate::opencode::tests::unpack_datadir();
        let data = OpenCodeData::open(&dir).unwrap();
        let reg = tempfile::tempdir().unwrap();
        let path = reg.path().join("shares.json");
        registry::update(&path, |r| {
            r.upsert(Entry {
                share_id: "mine0001".into(),
                session_id: "ses_df514140fffe4u9ZGLczLpllLo".into(),
                secret: "topsecret".into(),
                url: "http://127.0.0.1:9/share/mine0001".into(),
                server: "http://127.0.0.1:9".into(),
                title: "Add multiply, tests and CLI".into(),
                created_at: 1_900_000_000_000,
                updated_at: 1_900_000_000_000,
                extra: serde_json::Map::new(),
            });
            r.upsert(Entry {
                share_id: "gone0001".into(),
                session_id: "ses_deleted".into(),
                secret: "x".into(),
                url: "http://127.0.0.1:9/share/gone0001".into(),
                server: "http://127.0.0.1:9".into(),
                title: "old".into(),
                created_at: 1,
                updated_at: 1,
                extra: serde_json::Map::new(),
            });
        })
        .unwrap();
        let shares = list_shares(&path, Some(&data)).unwrap();
        let rows: Vec<(&str, Origin, Option<bool>, &str)> = shares
            .iter()
            .map(|s| {
                (
                    s.share_id.as_str(),
                    s.origin,
                    s.session_exists,
                    s.title.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (
                    "mine0001",
                    Origin::Bshare,
                    Some(true),
                    "Add multiply, tests and CLI"
                ),
                ("abcd1236", Origin::OpenCode, Some(true), "Show git log"),
                (
                    "abcd1235",
                    Origin::OpenCode,
                    Some(true),
                    "List comprehension vs map"
                ),
                ("gone0001", Origin::Bshare, Some(false), "old"),
            ]
        );
        assert_eq!(shares[1].server, "http://127.0.0.1:18443");
        let json = serde_json::to_string(&shares).unwrap();
        assert!(
            !json.contains("topsecret") && !json.contains("s3cr3t"),
            "{json}"
        );
        // Without OpenCode's data the registry is still listed.
        assert_eq!(list_shares(&path, None).unwrap().len(), 2);
    }

    #[test]
    fn opencode_shares_are_never_forgotten_locally_nor_synced() {
        let (_tmp, dir) = crate::opencode::tests::unpack_datadir();
        let data = OpenCodeData::open(&dir).unwrap();
        let reg = tempfile::tempdir().unwrap();
        let path = reg.path().join("shares.json");
        let shares = list_shares(&path, Some(&data)).unwrap();
        let own = resolve(&shares, "abcd1235").unwrap();
        let err = unshare(&path, own, true).unwrap_err().to_string();
        assert!(err.contains("/unshare"), "{err}");
        let err = sync_share(&path, &data, own, &Privacy::default(), &mut |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains("made by OpenCode"), "{err}");
    }
}
