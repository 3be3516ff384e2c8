//! The ShareData document (DESIGN.md §3) and the rules for share ids.
//!
//! OpenCode's own objects (session, message info, parts) are kept as `serde_json::Value`:
//! newer OpenCode versions add fields and part types all the time, and a reader that
//! insisted on a fixed shape would drop them. Code that interprets them (the renderer, the
//! protocol merge) reads fields leniently.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The document stored at `sessions/{shareId}.json`.
///
/// The last three fields are not part of DESIGN.md §3: they keep what OpenCode's own share
/// protocol sends beyond the session and its messages (see `protocol`), so that
/// `GET /api/share/:id/data` can give it back. Documents uploaded by other clients leave them out.
///
/// Every field may be missing in a stored document (`#[serde(default)]`): a document uploaded by
/// another client, or cut short, is shown with what it has.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ShareData {
    pub share_id: String,
    pub session_id: String,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch milliseconds.
    pub updated_at: i64,
    /// OpenCode's `Session` object.
    #[serde(default)]
    pub session: Value,
    #[serde(default)]
    pub messages: Vec<MessageWithParts>,
    /// OpenCode's `session_diff` item: the session's file diffs (`FileDiff[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_diff: Option<Value>,
    /// OpenCode's `model` item: the models the session used (`Model[]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Value>,
    /// Parts whose message has not arrived yet, kept until it does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_parts: Vec<Value>,
    /// What was redacted before the document left (DESIGN.md §3a): counts per rule, never the
    /// values. Absent when nothing was found, and in documents of older clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Redaction>,
}

/// The document's redaction summary: how many secrets each rule removed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redaction {
    #[serde(default)]
    pub counts: std::collections::BTreeMap<String, u64>,
}

impl Redaction {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// One message as `client.session.messages` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MessageWithParts {
    #[serde(default)]
    pub info: Value,
    #[serde(default)]
    pub parts: Vec<Value>,
}

/// Shortest and longest share id a client may choose.
pub const SHARE_ID_MIN: usize = 8;
pub const SHARE_ID_MAX: usize = 64;

/// `^[A-Za-z0-9_-]{8,64}$`: the only ids that ever reach a database key, an object key or a path.
pub fn is_valid_share_id(id: &str) -> bool {
    (SHARE_ID_MIN..=SHARE_ID_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A file-name stem for a share id that stays distinct on disks that fold case (macOS, Windows):
/// each uppercase letter becomes `=` and its lowercase (`aB3x` → `a=b3x`). `=` is not in the id
/// alphabet, so two ids never share a stem, and an id without uppercase letters is its own stem.
pub fn case_safe_stem(id: &str) -> String {
    let mut stem = String::with_capacity(id.len() * 2);
    for c in id.chars() {
        if c.is_ascii_uppercase() {
            stem.push('=');
            stem.push(c.to_ascii_lowercase());
        } else {
            stem.push(c);
        }
    }
    stem
}

/// The object key of a share's document.
///
/// Only called with ids that passed [`is_valid_share_id`], so the key can never escape `sessions/`.
pub fn object_key(share_id: &str) -> String {
    debug_assert!(is_valid_share_id(share_id));
    format!("sessions/{share_id}.json")
}

/// Current time in epoch milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_id_rules() {
        assert!(is_valid_share_id("abcd1234"));
        assert!(is_valid_share_id("A-b_c-D_12345678"));
        assert!(is_valid_share_id(&"x".repeat(64)));
        assert!(!is_valid_share_id("abc1234"));
        assert!(!is_valid_share_id(&"x".repeat(65)));
        assert!(!is_valid_share_id("../../etc"));
        assert!(!is_valid_share_id("abcd1234/"));
        assert!(!is_valid_share_id("abcd 1234"));
        assert!(!is_valid_share_id("abcdé1234"));
    }

    #[test]
    fn fixtures_parse() {
        for name in [
            "opencode-1.18.33-short.sharedata.json",
            "opencode-1.18.33-long.sharedata.json",
        ] {
            let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
            let bytes = std::fs::read(&path).unwrap();
            let doc: ShareData = serde_json::from_slice(&bytes).unwrap();
            assert!(!doc.messages.is_empty(), "{name} has messages");
        }
    }
}
