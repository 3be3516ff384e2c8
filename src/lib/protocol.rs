//! OpenCode's own share protocol (DESIGN.md §2): the sync items OpenCode sends, their merge into
//! the ShareData document, and the document as the item list `opencode import <url>` reads.
//!
//! OpenCode (1.18.x) keeps a queue of items per shared session, keyed `session`,
//! `message/<messageID>`, `part/<messageID>/<partID>`, `session_diff` and `model`, and sends the
//! queue about once a second. A later item replaces an earlier one with the same key, so a part that
//! arrives in stages (text first empty, tools `pending` → `running` → `completed`) ends in its last
//! state. Nothing here does I/O: the HTTP handler checks a batch ([`check_items`]) and journals
//! it, and [`apply_items`] merges it into the document when the journal is folded or read.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::model::{MessageWithParts, ShareData};

/// The body of `POST /api/share/:id/sync`: `{secret, data: [{type, data}]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SyncRequest {
    /// Optional here so that a missing secret is a 401, not a parse error.
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub data: Vec<SyncItem>,
}

/// One item of a sync batch, and of the list `GET /api/share/:id/data` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncItem {
    /// `session`, `message`, `part`, `session_diff` or `model`; other types are ignored.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: Value,
}

impl SyncItem {
    pub fn new(kind: &str, data: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            data,
        }
    }
}

/// An item that passed validation, borrowing from the batch.
enum Checked<'a> {
    Session(&'a Value),
    Message {
        id: &'a str,
        info: &'a Value,
    },
    Part {
        message_id: &'a str,
        id: &'a str,
        part: &'a Value,
    },
    SessionDiff(&'a Value),
    Models(&'a Value),
    /// A type this server does not know: newer OpenCode versions may send more.
    Ignored,
}

/// The most items one sync batch may hold. OpenCode sends its queue about once a second, and its
/// full sync (when a session is first shared) one item per message and part: a long session of
/// 2,000 messages is some 20,000 items. Past the cap a batch is refused (413) before it is parsed
/// into values, so its cost is bounded by the cap, not by the body.
pub const MAX_BATCH_ITEMS: usize = 50_000;

/// Parse a sync body, refusing a batch of more than [`MAX_BATCH_ITEMS`] items before any item is
/// built: the count is taken in a first pass that allocates nothing per item.
pub fn parse_sync_request(body: &[u8]) -> Result<SyncRequest> {
    #[derive(Deserialize)]
    struct Counted {
        #[serde(default)]
        data: ItemCount,
    }
    let Counted { data } = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the sync batch cannot be read: {e}")))?;
    if data.0 > MAX_BATCH_ITEMS {
        return Err(Error::TooManyItems {
            count: data.0,
            limit: MAX_BATCH_ITEMS,
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("the sync batch has the wrong shape: {e}")))
}

/// The length of a JSON list, counted without building its elements.
#[derive(Default)]
struct ItemCount(usize);

impl<'de> Deserialize<'de> for ItemCount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ItemCount;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of sync items")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<ItemCount, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ItemCount(n))
            }
        }
        d.deserialize_seq(Visitor)
    }
}

/// Merge a sync batch into `doc`.
///
/// The batch is atomic: every item is checked ([`check_items`]) before anything changes, and the first invalid item
/// (not an object, an id that is not a non-empty string, an item of another session, a list that
/// is not a list) fails the whole batch with a sentence naming it. Messages stay ordered as OpenCode
/// orders them (by `time.created`, then id), parts by id. A part whose message has not arrived is
/// kept in `pending_parts` and joins its message when that arrives. The caller sets `updated_at`.
///
/// The cost is linear in the document and the batch: messages, parts and pending parts are found
/// through indexes built once per batch, never by scanning a list per item.
pub fn apply_items(doc: &mut ShareData, items: &[SyncItem]) -> Result<()> {
    let checked = items
        .iter()
        .enumerate()
        .map(|(index, item)| check(index, item, &doc.session_id))
        .collect::<Result<Vec<_>>>()?;

    let mut by_id: HashMap<String, usize> = HashMap::with_capacity(doc.messages.len());
    for (i, m) in doc.messages.iter().enumerate() {
        if let Some(id) = str_field(&m.info, "id") {
            // The first of two messages with one id is the one updated, as before the index.
            by_id.entry(id.to_owned()).or_insert(i);
        }
    }
    // Part id -> position, per message, built the first time a batch touches that message.
    let mut part_index: HashMap<usize, HashMap<String, usize>> = HashMap::new();
    let mut pending = PendingParts::new(std::mem::take(&mut doc.pending_parts));
    // Messages whose part list grew, to be put back in id order once at the end.
    let mut grown: BTreeSet<usize> = BTreeSet::new();
    let mut reorder = false;

    for item in checked {
        match item {
            Checked::Session(session) => doc.session = session.clone(),
            Checked::Message { id, info } => {
                reorder = true;
                if let Some(&i) = by_id.get(id) {
                    doc.messages[i].info = info.clone();
                    continue;
                }
                doc.messages.push(MessageWithParts {
                    info: info.clone(),
                    parts: pending.take(id),
                });
                let i = doc.messages.len() - 1;
                by_id.insert(id.to_owned(), i);
                grown.insert(i);
            }
            Checked::Part {
                message_id,
                id,
                part,
            } => {
                if let Some(&i) = by_id.get(message_id) {
                    let parts = &mut doc.messages[i].parts;
                    let index = part_index.entry(i).or_insert_with(|| index_parts(parts));
                    if let Some(&at) = index.get(id) {
                        parts[at].clone_from(part);
                    } else {
                        index.insert(id.to_owned(), parts.len());
                        parts.push(part.clone());
                        grown.insert(i);
                    }
                } else {
                    pending.upsert(message_id, id, part);
                }
            }
            Checked::SessionDiff(diff) => doc.session_diff = Some(diff.clone()),
            Checked::Models(models) => doc.models = Some(models.clone()),
            Checked::Ignored => {}
        }
    }
    doc.pending_parts = pending.into_vec();

    // Sorting after the whole batch (not per item) keeps the indices in `by_id` valid meanwhile.
    for i in grown {
        doc.messages[i]
            .parts
            .sort_by(|a, b| str_field(a, "id").cmp(&str_field(b, "id")));
    }
    if reorder {
        doc.messages
            .sort_by(|a, b| message_order(&a.info).cmp(&message_order(&b.info)));
    }
    Ok(())
}

/// Check a batch as [`apply_items`] does, without the document: a batch that passes here is
/// applied whole by `apply_items` to any document of session `session_id`.
pub fn check_items(items: &[SyncItem], session_id: &str) -> Result<()> {
    for (index, item) in items.iter().enumerate() {
        check(index, item, session_id)?;
    }
    Ok(())
}

/// Part id -> position of its first occurrence.
fn index_parts(parts: &[Value]) -> HashMap<String, usize> {
    let mut index = HashMap::with_capacity(parts.len());
    for (at, p) in parts.iter().enumerate() {
        if let Some(id) = str_field(p, "id") {
            index.entry(id.to_owned()).or_insert(at);
        }
    }
    index
}

/// The parts waiting for their message, indexed by message and by (message, part). Slots of parts
/// that joined their message are emptied, not removed, so the rest keep their order and positions.
struct PendingParts {
    slots: Vec<Option<Value>>,
    by_message: HashMap<String, Vec<usize>>,
    by_key: HashMap<(String, String), usize>,
}

impl PendingParts {
    fn new(parts: Vec<Value>) -> Self {
        let mut this = Self {
            slots: Vec::with_capacity(parts.len()),
            by_message: HashMap::new(),
            by_key: HashMap::new(),
        };
        for part in parts {
            let at = this.slots.len();
            let message = str_field(&part, "messageID").unwrap_or("").to_owned();
            if let Some(id) = str_field(&part, "id") {
                this.by_key
                    .entry((message.clone(), id.to_owned()))
                    .or_insert(at);
            }
            this.by_message.entry(message).or_default().push(at);
            this.slots.push(Some(part));
        }
        this
    }

    fn upsert(&mut self, message_id: &str, id: &str, part: &Value) {
        let key = (message_id.to_owned(), id.to_owned());
        if let Some(slot) = self
            .by_key
            .get(&key)
            .and_then(|&at| self.slots[at].as_mut())
        {
            slot.clone_from(part);
            return;
        }
        let at = self.slots.len();
        self.slots.push(Some(part.clone()));
        self.by_key.insert(key, at);
        self.by_message
            .entry(message_id.to_owned())
            .or_default()
            .push(at);
    }

    /// The parts of this message, in the order they arrived, taken out.
    fn take(&mut self, message_id: &str) -> Vec<Value> {
        let Some(positions) = self.by_message.remove(message_id) else {
            return Vec::new();
        };
        positions
            .into_iter()
            .filter_map(|at| {
                let part = self.slots[at].take()?;
                if let Some(id) = str_field(&part, "id") {
                    self.by_key.remove(&(message_id.to_owned(), id.to_owned()));
                }
                Some(part)
            })
            .collect()
    }

    fn into_vec(self) -> Vec<Value> {
        self.slots.into_iter().flatten().collect()
    }
}

/// The document as OpenCode's item list, in the order of OpenCode's own full sync: the session,
/// every message, every part (message by message), then `session_diff` and `model` when known.
///
/// `opencode import <url>` takes the first `session` item, then builds messages in the order their
/// items come and gives each the parts that name it. Pending parts are listed too (import skips
/// them), so that the list merged into an empty document gives this document back.
pub fn to_items(doc: &ShareData) -> Vec<SyncItem> {
    item_refs(doc)
        .into_iter()
        .map(|r| SyncItem::new(r.kind, r.data.clone()))
        .collect()
}

/// [`to_items`] serialized as JSON, without copying the document.
pub fn items_json(doc: &ShareData) -> Result<Vec<u8>> {
    serde_json::to_vec(&item_refs(doc)).map_err(Error::internal)
}

#[derive(Serialize)]
struct ItemRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    data: &'a Value,
}

fn item_refs(doc: &ShareData) -> Vec<ItemRef<'_>> {
    let parts: usize = doc.messages.iter().map(|m| m.parts.len()).sum();
    let mut items = Vec::with_capacity(3 + doc.messages.len() + parts + doc.pending_parts.len());
    if !doc.session.is_null() {
        items.push(ItemRef {
            kind: "session",
            data: &doc.session,
        });
    }
    items.extend(doc.messages.iter().map(|m| ItemRef {
        kind: "message",
        data: &m.info,
    }));
    let all_parts = doc
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .chain(&doc.pending_parts);
    items.extend(all_parts.map(|p| ItemRef {
        kind: "part",
        data: p,
    }));
    if let Some(diff) = &doc.session_diff {
        items.push(ItemRef {
            kind: "session_diff",
            data: diff,
        });
    }
    if let Some(models) = &doc.models {
        items.push(ItemRef {
            kind: "model",
            data: models,
        });
    }
    items
}

/// Validate one item. `session_id` is the share's session (empty when not known): items of
/// another session are refused, so a share only ever shows the session it was made for.
fn check<'a>(index: usize, item: &'a SyncItem, session_id: &str) -> Result<Checked<'a>> {
    let fail = |reason: String| {
        Error::BadRequest(format!(
            "sync item {index} (type \"{}\"): {reason}; the batch was not applied",
            item.kind
        ))
    };
    let data = &item.data;
    let id = |field: &str| -> Result<&'a str> {
        match data.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.as_str()),
            Some(_) => Err(fail(format!("`{field}` must be a non-empty string"))),
            None => Err(fail(format!("`{field}` is missing"))),
        }
    };
    let object = || {
        if data.is_object() {
            Ok(())
        } else {
            Err(fail("`data` must be an object".into()))
        }
    };
    let same_session = |field: &str| -> Result<()> {
        let Some(value) = data.get(field) else {
            return Ok(());
        };
        match value.as_str() {
            Some(s) if session_id.is_empty() || s == session_id => Ok(()),
            Some(s) => Err(fail(format!(
                "it belongs to session {s}, not to this share's session {session_id}"
            ))),
            None => Err(fail(format!("`{field}` must be a string"))),
        }
    };
    match item.kind.as_str() {
        "session" => {
            object()?;
            id("id")?;
            same_session("id")?;
            Ok(Checked::Session(data))
        }
        "message" => {
            object()?;
            let id = id("id")?;
            same_session("sessionID")?;
            Ok(Checked::Message { id, info: data })
        }
        "part" => {
            object()?;
            let part_id = id("id")?;
            let message_id = id("messageID")?;
            same_session("sessionID")?;
            Ok(Checked::Part {
                message_id,
                id: part_id,
                part: data,
            })
        }
        "session_diff" | "model" => {
            if !data.is_array() {
                return Err(fail("`data` must be a list".into()));
            }
            Ok(if item.kind == "model" {
                Checked::Models(data)
            } else {
                Checked::SessionDiff(data)
            })
        }
        _ => Ok(Checked::Ignored),
    }
}

/// OpenCode lists messages by creation time, then id (ids are time-ordered too); a message without
/// a time goes last, as OpenCode stores it with the time it arrived.
fn message_order(info: &Value) -> (i64, &str) {
    let created = info
        .get("time")
        .and_then(|t| t.get("created"))
        .and_then(|c| c.as_i64().or_else(|| c.as_f64().map(|f| f as i64)))
        .unwrap_or(i64::MAX);
    (created, str_field(info, "id").unwrap_or(""))
}

fn str_field<'a>(value: &'a Value, field: &str) -> Option<&'a str> {
    value.get(field).and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
