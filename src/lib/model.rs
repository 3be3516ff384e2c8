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
/// `session_diff`, `models` and `pending_parts` are not part of DESIGN.md §3: they keep what
/// OpenCode's own share protocol sends beyond the session and its messages (see `protocol`), so
/// that `GET /api/share/:id/data` can give it back. Documents uploaded by other clients leave
/// them out.
///
/// `children` and `children_omitted` are DESIGN.md §3's addition for subagents: the sessions that
/// the session's `task` calls created, recursively, as one flat list (see [`ChildSession`]). Both
/// are optional and left out when empty, so a document without subagents is byte for byte what it
/// was, old documents read as having none, and old readers, which ignore unknown fields, still
/// show the main conversation.
///
/// `redaction` is DESIGN.md §3a's summary of what was removed before the document left.
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
    /// Subagent sessions: children, grandchildren... in the order they were found (breadth
    /// first, each session's children oldest first).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "lenient_children"
    )]
    pub children: Vec<ChildSession>,
    /// How many subagent sessions were left out because the document would have grown over the
    /// size limit; the page says so.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "lenient_count"
    )]
    pub children_omitted: u64,
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

/// `children` as written by any client: a document whose field is not a list, or holds entries
/// that are not sessions, still reads (with those left out), as it did before the field existed.
fn lenient_children<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ChildSession>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

fn lenient_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(Value::deserialize(d)?.as_u64().unwrap_or(0))
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A subagent's session: OpenCode's `Session` (whose `parentID` names the session that ran the
/// `task` call) and its messages, as `client.session.messages` returns them.
///
/// A `task` tool part names the session it opened in `state.metadata.sessionId` (see
/// [`task_session_id`]); that is how a reader puts the conversation under its call. The list is
/// flat rather than nested inside the parts so that the parts stay exactly OpenCode's, a merge of
/// OpenCode's own sync items never has to look inside them, and a reader can bound its depth.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ChildSession {
    #[serde(default)]
    pub session: Value,
    #[serde(default)]
    pub messages: Vec<MessageWithParts>,
}

impl ChildSession {
    pub fn id(&self) -> &str {
        self.session["id"].as_str().unwrap_or_default()
    }
}

/// The id of the subagent session a `task` tool part ran, when it names one: OpenCode records it
/// in `state.metadata.sessionId`; its output also starts `<task id="ses_...">` (1.18) or carries a
/// `task_id: ses_...` line (older versions), which is used when the metadata lacks it.
pub fn task_session_id(part: &Value) -> Option<&str> {
    if part.get("type").and_then(Value::as_str) != Some("tool")
        || part.get("tool").and_then(Value::as_str) != Some("task")
    {
        return None;
    }
    let state = part.get("state")?;
    if let Some(id) = state
        .get("metadata")
        .and_then(|m| m.get("sessionId"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    {
        return Some(id);
    }
    let output = state.get("output").and_then(Value::as_str)?;
    let rest = output
        .find("<task id=\"")
        .map(|i| &output[i + "<task id=\"".len()..])
        .or_else(|| {
            output
                .find("task_id: ")
                .map(|i| &output[i + "task_id: ".len()..])
        })?;
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|id| !id.is_empty())
}

/// Deepest nesting of subagent conversations a reader shows under their calls; sessions deeper
/// than this are shown on their own after the conversation.
pub const MAX_NESTING: usize = 8;

/// Where each subagent session of a document is shown, decided once for the whole document so
/// that every reader (page, transcript, terminal preview) agrees, and so that each child is shown
/// exactly once whatever the document claims: a child named by several calls goes under the
/// first one reached, cycles are cut, and nesting stops at [`MAX_NESTING`].
#[derive(Debug, Default, PartialEq)]
pub struct SubagentPlan {
    /// `(session, message, part)` of a task call → index in `children` of the session shown
    /// under it. Session 0 is the main session, `k + 1` is `children[k]`.
    under: std::collections::HashMap<(usize, usize, usize), usize>,
    /// Children shown on their own after the conversation (no call names them, or the nesting
    /// was too deep), in document order.
    pub loose: Vec<usize>,
}

impl SubagentPlan {
    pub fn of(doc: &ShareData) -> Self {
        let mut plan = Self::default();
        if doc.children.is_empty() {
            return plan;
        }
        let mut by_id: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, c) in doc.children.iter().enumerate() {
            by_id.entry(c.id()).or_insert(i);
        }
        let mut shown = vec![false; doc.children.len()];
        plan.walk(doc, &by_id, &mut shown, 0, &doc.messages, 0);
        for k in 0..doc.children.len() {
            if !shown[k] {
                shown[k] = true;
                plan.loose.push(k);
                plan.walk(doc, &by_id, &mut shown, k + 1, &doc.children[k].messages, 1);
            }
        }
        plan
    }

    fn walk(
        &mut self,
        doc: &ShareData,
        by_id: &std::collections::HashMap<&str, usize>,
        shown: &mut [bool],
        session: usize,
        messages: &[MessageWithParts],
        depth: usize,
    ) {
        if depth >= MAX_NESTING {
            return;
        }
        for (mi, m) in messages.iter().enumerate() {
            for (pi, p) in m.parts.iter().enumerate() {
                let Some(&k) = task_session_id(p).and_then(|id| by_id.get(id)) else {
                    continue;
                };
                if shown[k] {
                    continue;
                }
                shown[k] = true;
                self.under.insert((session, mi, pi), k);
                self.walk(
                    doc,
                    by_id,
                    shown,
                    k + 1,
                    &doc.children[k].messages,
                    depth + 1,
                );
            }
        }
    }

    /// The child shown under part `part` of message `message` of `session` (0 = the main
    /// session, `k + 1` = `children[k]`).
    pub fn under(&self, session: usize, message: usize, part: usize) -> Option<usize> {
        self.under.get(&(session, message, part)).copied()
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

    /// A document from before subagents (every stored share so far) reads as having none and
    /// is written back unchanged; one with them keeps them through a round trip.
    #[test]
    fn documents_without_children_read_and_write_as_before() {
        let path = format!(
            "{}/tests/data/opencode-1.18.33-short.sharedata.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap();
        let doc: ShareData = serde_json::from_slice(&bytes).unwrap();
        assert!(doc.children.is_empty() && doc.children_omitted == 0);
        let again: Value = serde_json::to_value(&doc).unwrap();
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(again, original);
        assert!(again.get("children").is_none() && again.get("childrenOmitted").is_none());

        let mut with = doc.clone();
        with.children.push(ChildSession {
            session: serde_json::json!({"id": "ses_child", "parentID": doc.session_id}),
            messages: doc.messages[..1].to_vec(),
        });
        with.children_omitted = 2;
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["children"][0]["session"]["id"], "ses_child");
        assert_eq!(json["childrenOmitted"], 2);
        let back: ShareData = serde_json::from_value(json).unwrap();
        assert_eq!(back, with);

        // Another client's idea of these fields never makes a document unreadable.
        let mut odd: Value = serde_json::from_slice(&bytes).unwrap();
        odd["children"] = "nonsense".into();
        odd["childrenOmitted"] = "many".into();
        let read: ShareData = serde_json::from_value(odd.clone()).unwrap();
        assert!(read.children.is_empty() && read.children_omitted == 0);
        odd["children"] = serde_json::json!([1, {"session": {"id": "ses_ok"}, "messages": []}, {"messages": "x"}]);
        let read: ShareData = serde_json::from_value(odd).unwrap();
        assert_eq!(read.children.len(), 1);
        assert_eq!(read.children[0].id(), "ses_ok");
    }

    fn task(id_in_metadata: Option<&str>, output: &str) -> Value {
        let mut meta = serde_json::json!({});
        if let Some(id) = id_in_metadata {
            meta["sessionId"] = id.into();
        }
        serde_json::json!({"type": "tool", "tool": "task",
            "state": {"status": "completed", "metadata": meta, "output": output}})
    }

    #[test]
    fn task_parts_name_their_session() {
        assert_eq!(task_session_id(&task(Some("ses_a"), "")), Some("ses_a"));
        assert_eq!(
            task_session_id(&task(None, "<task id=\"ses_b\" state=\"completed\">")),
            Some("ses_b")
        );
        assert_eq!(
            task_session_id(&task(None, "done\n\ntask_id: ses_c (for resuming)")),
            Some("ses_c")
        );
        assert_eq!(task_session_id(&task(None, "no id here")), None);
        let mut bash = task(Some("ses_a"), "");
        bash["tool"] = "bash".into();
        assert_eq!(task_session_id(&bash), None);
    }

    fn child(id: &str, calls: &[&str]) -> ChildSession {
        ChildSession {
            session: serde_json::json!({"id": id}),
            messages: vec![MessageWithParts {
                info: serde_json::json!({"role": "assistant"}),
                parts: calls.iter().map(|c| task(Some(c), "")).collect(),
            }],
        }
    }

    /// Each child is shown once: under the first call that names it, cycles cut, too-deep ones
    /// and unnamed ones on their own.
    #[test]
    fn subagent_plan_shows_each_child_once() {
        let mut doc = ShareData {
            messages: vec![MessageWithParts {
                info: serde_json::json!({"role": "assistant"}),
                parts: vec![
                    task(Some("a"), ""),
                    task(Some("a"), ""),
                    task(Some("b"), ""),
                ],
            }],
            ..ShareData::default()
        };
        doc.children = vec![
            child("a", &["b", "a"]),
            child("b", &["a"]),
            child("orphan", &[]),
        ];
        let plan = SubagentPlan::of(&doc);
        assert_eq!(plan.under(0, 0, 0), Some(0));
        assert_eq!(plan.under(0, 0, 1), None, "a second call naming a");
        assert_eq!(plan.under(1, 0, 0), Some(1), "b under a, reached first");
        assert_eq!(plan.under(0, 0, 2), None, "b already shown");
        assert_eq!(plan.under(2, 0, 0), None, "the cycle back to a");
        assert_eq!(plan.loose, [2]);

        // A chain deeper than MAX_NESTING: the rest starts again on its own.
        let n = MAX_NESTING + 3;
        let chain: Vec<ChildSession> = (0..n)
            .map(|i| {
                let next = format!("c{}", i + 1);
                child(&format!("c{i}"), &[next.as_str()])
            })
            .collect();
        let doc = ShareData {
            messages: vec![MessageWithParts {
                info: serde_json::json!({}),
                parts: vec![task(Some("c0"), "")],
            }],
            children: chain,
            ..ShareData::default()
        };
        let plan = SubagentPlan::of(&doc);
        assert_eq!(plan.loose, [MAX_NESTING]);
        assert_eq!(plan.under(MAX_NESTING, 0, 0), None);
        assert_eq!(plan.under(MAX_NESTING + 1, 0, 0), Some(MAX_NESTING + 1));
    }
}
