//! Sync batches journaled, then folded into the document (DESIGN.md §2 sync, ARCHITECTURE.md).
//!
//! A sync batch costs what the batch costs, not what the session does: it is checked, redacted and
//! journaled in the database (`MetaStore::append_sync`, one statement), and the stored document is
//! not read. The journal is folded into the document (read, merge, write, under the share's lock,
//! as a batch was merged before) by this server's fold thread once it has grown by half the
//! document (so each byte of the document is rewritten a bounded number of times however long
//! the session gets), and once the share has been quiet for [`FOLD_QUIET`] (the sweeper queues
//! it); and at once, by the worker, before an upload URL is handed out (in the lock that
//! records the URL: [`Fold::Upload`]) or a reader is sent to the bucket. Folds run on the render
//! thread, one heavy job at a time. Every reader applies what is left on top of the document,
//! read with it under the share's lock ([`read`], [`current`]): the page and the API show every
//! acknowledged batch at once.
//!
//! A batch that could take the document past its size limit is merged under the lock as before,
//! so it is refused exactly when the merged document would be too large; so is every batch while
//! the document's size is unknown (an upload URL was issued and may still be used).
//!
//! While an upload URL may still be used ([`upload_open`]) no batch leaves the journal: the upload
//! replaces the object whenever it lands, so every batch stays journaled (as one, [`compacted`]),
//! applied on top of it, until the window has passed (the sweeper then folds the share once it
//! is quiet). An upload can leave no room for the batches within the size limit: the fold then
//! drops them, so the share stays readable and syncable.

use std::collections::HashSet;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::context::App;
use super::{announce, api, auth};
use crate::blob::ObjectTag;
use crate::error::{Error, Result};
use crate::model::{ShareData, now_millis, object_key};
use crate::protocol::{self, SyncItem};
use crate::redact;
use crate::store::{Journal, JournalBatch, JournalSize, MetaStore, ShareRow};

/// A journal smaller than this is not folded for its size (only once the share is quiet):
/// folding a small document often costs little, but a fold per few batches would cost a write
/// of the object each time.
pub const FOLD_MIN_BYTES: i64 = 256 * 1024;

/// A share with a journal and no batch for this long is queued for a fold by the sweeper.
pub const FOLD_QUIET: Duration = Duration::from_secs(10);

/// Whether a journal this size is due to be folded: once it has grown by half the document, so
/// the document is rewritten once per half its size of batches, whatever its size.
pub fn due(size: JournalSize) -> bool {
    size.journal_bytes >= FOLD_MIN_BYTES.max(size.doc_bytes / 2)
}

/// A share's document as it is now.
pub enum Current {
    /// The stored bytes: no batch is journaled.
    Stored(Vec<u8>),
    /// The stored document with the journaled batches applied, and the stored size.
    Merged(Box<ShareData>, usize),
}

/// What a reader read of a share: its journaled batches and, when there are any, its object,
/// both under the share's lock ([`read`]), so that the object holds exactly the batches folded
/// before them (a batch applied again after a newer one was folded would undo it).
pub struct Snapshot {
    pub batches: Vec<JournalBatch>,
    /// The object as read with the batches (`None` inside: there is none); `None` when there
    /// are no batches: the object alone is the document, read when it is needed.
    pub object: Option<Option<(Vec<u8>, ObjectTag)>>,
}

/// Read share `id`'s journal, and its object under the same lock when the journal is not empty.
/// Without batches no lock is taken: the object is the whole document.
pub fn read(app: &App, store: &mut dyn MetaStore, id: &str) -> Result<Snapshot> {
    let mut snapshot = Snapshot {
        batches: Vec::new(),
        object: None,
    };
    if store.journal_head(id)? == 0 {
        return Ok(snapshot);
    }
    let limit = app.config.max_document_bytes;
    let key = object_key(id);
    store.with_share_locked(id, None, &mut |_, journal| {
        snapshot.batches = journal.batches()?;
        snapshot.object = Some(app.blobs.get_within(&key, limit)?);
        Ok(())
    })?;
    Ok(snapshot)
}

/// The document of live share `row` as it is now, and the stored object's tag, from what
/// [`read`] read. Without batches: 404 `NOT_UPLOADED` when there is no object, 502 when it is
/// not JSON.
pub fn current(app: &App, row: &ShareRow, snapshot: Snapshot) -> Result<(Current, ObjectTag)> {
    let Snapshot { batches, object } = snapshot;
    let Some(object) = object.filter(|_| !batches.is_empty()) else {
        let (bytes, tag) = api::stored_document(app, &row.id)?;
        return Ok((Current::Stored(bytes), tag));
    };
    let stored = object.as_ref().map_or(0, |(bytes, _)| bytes.len());
    let (mut doc, tag) = base_from(row, object);
    apply(&mut doc, &batches);
    Ok((
        Current::Merged(Box::new(doc), stored),
        tag.unwrap_or_default(),
    ))
}

/// The stored document to merge into and its tag: an empty one when there is none or it is
/// unreadable (OpenCode's items are the truth then, as when a batch was merged directly).
fn base_document(app: &App, row: &ShareRow) -> Result<(ShareData, Option<ObjectTag>)> {
    let limit = app.config.max_document_bytes;
    let object = app.blobs.get_within(&object_key(&row.id), limit)?;
    Ok(base_from(row, object))
}

/// [`base_document`] from the object as read.
fn base_from(
    row: &ShareRow,
    object: Option<(Vec<u8>, ObjectTag)>,
) -> (ShareData, Option<ObjectTag>) {
    match object {
        Some((bytes, tag)) => {
            let mut doc =
                api::parse_document(&row.id, &bytes).unwrap_or_else(|_| empty_document(row));
            // Batches were checked against the share's session, which an uploaded document
            // cannot change: merged into this document, they are of its session.
            doc.session_id.clone_from(&row.session_id);
            (doc, Some(tag))
        }
        None => (empty_document(row), None),
    }
}

/// Apply journaled batches in order, as one merge: its indexes are built once and the messages
/// sorted once, so the cost is linear in the document and the journal, not in their product.
/// The batches were checked when journaled; one that no longer parses (it cannot, short of
/// damage to the database) is skipped and logged rather than making the share unreadable.
fn apply(doc: &mut ShareData, batches: &[JournalBatch]) {
    let mut items: Vec<SyncItem> = Vec::new();
    let mut redacted = false;
    let mut updated_at = doc.updated_at;
    for batch in batches {
        match serde_json::from_slice::<Vec<SyncItem>>(&batch.items) {
            Ok(batch_items) => {
                items.extend(batch_items);
                redacted |= batch.redacted;
                updated_at = updated_at.max(batch.at);
            }
            Err(e) => eprintln!(
                "bshare: share {}: journaled sync batch {} skipped: {e}",
                doc.share_id, batch.seq
            ),
        }
    }
    if items.is_empty() {
        return;
    }
    // Every item passed `check_items` for this share's session when it was journaled, so the
    // merge (which checks every item before it changes anything) cannot refuse them; were it
    // to, the batches are applied one by one and the refused ones skipped.
    if let Err(e) = protocol::apply_items(doc, &items) {
        eprintln!(
            "bshare: share {}: journaled sync batches applied one by one: {}",
            doc.share_id,
            e.chain()
        );
        for batch in batches {
            if let Ok(batch_items) = serde_json::from_slice::<Vec<SyncItem>>(&batch.items)
                && let Err(e) = protocol::apply_items(doc, &batch_items)
            {
                eprintln!(
                    "bshare: share {}: journaled sync batch {} skipped: {}",
                    doc.share_id,
                    batch.seq,
                    e.chain()
                );
            }
        }
    }
    doc.updated_at = updated_at;
    if redacted || doc.redaction.is_some() {
        redact::recount(doc);
    }
}

/// Whether an upload URL issued for `row` may still be used, or an upload begun with one still
/// land: the upload then replaces the object, whatever the server wrote there meanwhile.
pub fn upload_open(app: &App, row: &ShareRow) -> bool {
    now_millis() < row.upload_until + app.upload_grace()
}

fn empty_document(row: &ShareRow) -> ShareData {
    ShareData {
        share_id: row.id.clone(),
        session_id: row.session_id.clone(),
        created_at: row.created_at,
        updated_at: row.created_at,
        ..ShareData::default()
    }
}

/// A sync batch to merge under the share's lock along with the journal ([`fold`]): its items,
/// and the batch as it is journaled.
pub struct Incoming {
    pub items: Vec<SyncItem>,
    pub batch: JournalBatch,
}

/// What a [`fold`] is for.
pub enum Fold {
    /// Fold what is journaled: the fold thread, the sweeper, a read about to be sent to the
    /// bucket.
    Journal,
    /// Merge a sync batch along with the journal.
    Batch(Incoming),
    /// Fold what is journaled, then record an upload URL valid until `until` (epoch ms), under
    /// the same lock: no fold can write the object between the two, where the upload would
    /// replace what it wrote. `now` becomes the share's `updated_at`.
    Upload { until: i64, now: i64 },
}

impl Fold {
    fn incoming(&self) -> Option<&Incoming> {
        match self {
            Self::Batch(incoming) => Some(incoming),
            _ => None,
        }
    }

    /// The share's new `updated_at`, when readers see a change (every server is told).
    fn changes(&self) -> Option<i64> {
        match self {
            Self::Journal => None,
            Self::Batch(incoming) => Some(incoming.batch.at),
            Self::Upload { now, .. } => Some(*now),
        }
    }
}

/// Fold share `id`'s journal (and a sync batch: [`Fold`]) into its document under the share's
/// lock, and drop the folded batches. Nothing is written when there is nothing to fold, when the
/// share is no longer live (its journal went with the tombstone), or when the merged document
/// would exceed the size limit (413: the batch is refused, the journal stays). When readers see a
/// change ([`Fold::changes`]) the share's `updated_at` is set and every server told; a fold
/// alone changes nothing any reader sees.
///
/// While an upload URL may still be used ([`upload_open`]), no batch leaves the journal: the
/// upload replaces the object whenever it lands, and a batch kept only there would be lost with
/// it. A batch is then checked against the size limit as merged and journaled, the journal kept
/// as one batch ([`compacted`]: at most one version of each item, so it stays within about the
/// document's size however often OpenCode resends a part); every batch is applied on top of
/// whatever the object holds, until a fold after the window writes them in and drops them. On
/// S3 the object is not written meanwhile (a PUT goes straight to the bucket and can land
/// between a fold's read and its write); on disk the upload comes through this server under the
/// share's lock, so the object is written too and its size known.
///
/// It runs on the render thread, one at a time with the fills of the page cache, on `store`:
/// what a large document costs in memory is held once, not once per thread doing it. The
/// connection comes back with the result (`None` when the render thread has stopped).
pub fn fold(
    app: &Arc<App>,
    mut store: Box<dyn MetaStore>,
    id: &str,
    what: Fold,
) -> (Option<Box<dyn MetaStore>>, Result<()>) {
    let owned = (Arc::clone(app), id.to_owned());
    let result = app.renderer.run(move || {
        let (app, id) = owned;
        let result = fold_here(&app, store.as_mut(), &id, &what);
        Ok((store, result))
    });
    match result {
        Ok((store, result)) => (Some(store), result),
        Err(e) => (None, Err(e)),
    }
}

/// [`fold`] on this thread.
fn fold_here(app: &App, store: &mut dyn MetaStore, id: &str, what: &Fold) -> Result<()> {
    let key = object_key(id);
    let incoming = what.incoming();
    // The database may hold what was done under the lock even when the answer is an error.
    let mut wrote = false;
    let mut dropped = false;
    let result = store.with_share_locked(id, what.changes(), &mut |row, journal| {
        // Deleted or expired between the caller's check and the lock: the content must not come
        // back.
        if let Err(e) = auth::check_live(row) {
            return if matches!(what, Fold::Journal) {
                Ok(())
            } else {
                Err(e)
            };
        }
        let upload_open = upload_open(app, row);
        // On S3 a fold alone waits for the window to pass (it would only rewrite the journal);
        // on disk it also keeps the journal short (`merge`).
        if !(upload_open && incoming.is_none() && app.blobs.as_local().is_none()) {
            dropped = merge(app, row, journal, &key, incoming, upload_open, &mut wrote)?;
        }
        if let Fold::Upload { until, .. } = what {
            wrote = true;
            journal.upload_opened(*until)?;
        }
        Ok(())
    });
    let told = what.changes().is_some();
    match result {
        Ok(()) if dropped => {
            // Readers applied the dropped batches: every server must hear of it.
            if store.notify_change(id).is_err() {
                announce::unconfirmed_write(app, id);
            }
            announce::changed(app, id);
        }
        Ok(()) if told => announce::changed(app, id),
        Ok(()) => {}
        Err(e) if wrote => {
            // The object or the journal may hold a change the database does not say was made
            // (or did not tell every server of): tell everyone.
            announce::unconfirmed_write(app, id);
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The object with `batches` and then `incoming` applied, as a fold writes it.
fn merged(
    app: &App,
    row: &ShareRow,
    batches: &[JournalBatch],
    incoming: Option<&Incoming>,
) -> Result<Vec<u8>> {
    let (mut doc, _) = base_document(app, row)?;
    apply(&mut doc, batches);
    if let Some(incoming) = incoming {
        protocol::apply_items(&mut doc, &incoming.items)?;
        if incoming.batch.redacted || doc.redaction.is_some() {
            redact::recount(&mut doc);
        }
        doc.updated_at = incoming.batch.at;
    }
    serde_json::to_vec(&doc).map_err(Error::internal)
}

/// The fold proper, under the share's lock: the journal (and `incoming`) merged into the
/// object, written and dropped; or, while an upload may land (`upload_open`), `incoming`
/// checked and journaled with the rest as one batch. `wrote` is set before anything is
/// written. Whether waiting batches were dropped, having no room beside an upload.
fn merge(
    app: &App,
    row: &ShareRow,
    journal: &mut dyn Journal,
    key: &str,
    incoming: Option<&Incoming>,
    upload_open: bool,
    wrote: &mut bool,
) -> Result<bool> {
    let limit = app.config.max_document_bytes;
    let over = |bytes: &[u8]| bytes.len() as u64 > limit;
    let batches = journal.batches()?;
    if batches.is_empty() && incoming.is_none() {
        return Ok(false);
    }
    let through = batches.last().map_or(0, |b| b.seq);
    let mut bytes = merged(app, row, &batches, incoming)?;
    let mut kept: &[JournalBatch] = &batches;
    let mut dropped = false;
    if over(&bytes) && !batches.is_empty() {
        // A batch is journaled only within the limit of the document it went to; an upload can
        // have replaced that document since with one that leaves no room for the journal (only
        // an upload can: the server writes the batches into what it writes). The share must stay
        // readable and syncable: the upload stands, the waiting batches go.
        let alone = match incoming {
            None => bytes.len(),
            Some(_) => merged(app, row, &batches, None)?.len(),
        };
        if alone as u64 > limit {
            eprintln!(
                "bshare: share {}: {} journaled sync batch(es) dropped: applied to the document \
                 uploaded meanwhile they would make it {alone} bytes, over the limit of {limit}",
                row.id,
                batches.len(),
            );
            *wrote = true;
            // The stored document's size as the server would write it is not known.
            journal.folded(through, -1)?;
            dropped = true;
            if incoming.is_none() {
                return Ok(true);
            }
            bytes = merged(app, row, &[], incoming)?;
            kept = &[];
        }
    }
    if over(&bytes) {
        return Err(Error::TooLarge {
            what: "the session document after this sync",
            size: bytes.len() as u64,
            limit,
        });
    }
    *wrote = true;
    if upload_open {
        // Within the limit as merged now; the batches wait in the journal for the upload.
        journal.replace(&compacted(kept, incoming)?)?;
        // On disk an upload comes through this server, under this lock, so the object can
        // hold the batch too and its size is known: the next batches are journaled without
        // this merge (and stay journaled all the same, for the upload). On S3 a PUT can land
        // between a read and a write of the object: it is left alone.
        if app.blobs.as_local().is_some() {
            app.blobs.put(key, &bytes)?;
            journal.folded(0, bytes.len() as i64)?;
        }
        return Ok(dropped);
    }
    app.blobs.put(key, &bytes)?;
    journal.folded(through, bytes.len() as i64)?;
    Ok(dropped)
}

/// What identifies a sync item in the document: a later item with the same key replaces it
/// (`protocol::apply_items` upserts by it). `None` for the types the merge ignores.
fn item_key(item: &SyncItem) -> Option<(&str, &str, &str)> {
    let field = |name: &str| item.data.get(name).and_then(|v| v.as_str()).unwrap_or("");
    match item.kind.as_str() {
        kind @ ("session" | "session_diff" | "model") => Some((kind, "", "")),
        kind @ "message" => Some((kind, field("id"), "")),
        kind @ "part" => Some((kind, field("messageID"), field("id"))),
        _ => None,
    }
}

/// `batches` and then `incoming` as one batch that applies as they do, in order: the last
/// version of each item ([`item_key`]), in the order the items first came. Every item was
/// checked for the share when it was journaled.
fn compacted(batches: &[JournalBatch], incoming: Option<&Incoming>) -> Result<JournalBatch> {
    let mut parsed: Vec<Vec<SyncItem>> = Vec::with_capacity(batches.len());
    let mut redacted = incoming.is_some_and(|i| i.batch.redacted);
    for batch in batches {
        match serde_json::from_slice::<Vec<SyncItem>>(&batch.items) {
            Ok(items) => {
                parsed.push(items);
                redacted |= batch.redacted;
            }
            // As `apply` does: a batch that no longer parses is skipped, and said so.
            Err(e) => eprintln!("bshare: journaled sync batch {} skipped: {e}", batch.seq),
        }
    }
    let all: Vec<&SyncItem> = parsed
        .iter()
        .flatten()
        .chain(incoming.iter().flat_map(|i| i.items.iter()))
        .collect();
    // Each item where it first came (where the merge puts a new item; a later version is put in
    // its place), in its last version.
    let mut at_index: std::collections::HashMap<(&str, &str, &str), usize> =
        std::collections::HashMap::with_capacity(all.len());
    let mut kept: Vec<&SyncItem> = Vec::with_capacity(all.len());
    for item in all {
        let Some(key) = item_key(item) else {
            continue;
        };
        match at_index.get(&key) {
            Some(&i) => kept[i] = item,
            None => {
                at_index.insert(key, kept.len());
                kept.push(item);
            }
        }
    }
    let items = serde_json::to_vec(&kept).map_err(Error::internal)?;
    let at = batches
        .iter()
        .map(|b| b.at)
        .chain(incoming.map(|i| i.batch.at))
        .max()
        .unwrap_or_default();
    Ok(JournalBatch::new(at, redacted, items, kept.len()))
}

/// This server's fold thread: shares whose journal is due ([`due`]) are queued here by the sync
/// handler and folded one at a time, off the request path.
pub struct Folder {
    queue: SyncSender<String>,
    queued: Mutex<HashSet<String>>,
}

/// Shares waiting to be folded at most; past it a due share waits for its next batch or for the
/// sweeper.
const QUEUE: usize = 1024;

impl Folder {
    /// The folder, and the receiving end its thread takes ([`Folder::run`]).
    pub fn new() -> (Self, Receiver<String>) {
        let (queue, rx) = std::sync::mpsc::sync_channel(QUEUE);
        (
            Self {
                queue,
                queued: Mutex::new(HashSet::new()),
            },
            rx,
        )
    }

    /// Queue share `id` to be folded, once however often it is asked for meanwhile.
    pub fn request(&self, id: &str) {
        let mut queued = self
            .queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !queued.insert(id.to_owned()) {
            return;
        }
        if let Err(TrySendError::Full(id) | TrySendError::Disconnected(id)) =
            self.queue.try_send(id.to_owned())
        {
            queued.remove(&id);
        }
    }

    /// Start the fold thread for `app`; it ends with the app.
    pub fn start(app: &Arc<App>, rx: Receiver<String>) -> std::io::Result<()> {
        let weak: Weak<App> = Arc::downgrade(app);
        std::thread::Builder::new()
            .name("journal-fold".into())
            .spawn(move || {
                let mut store: Option<Box<dyn MetaStore>> = None;
                while let Ok(id) = rx.recv() {
                    let Some(app) = weak.upgrade() else {
                        return;
                    };
                    app.folder
                        .queued
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&id);
                    // As `store::connection` does, but taking the connection out.
                    let connection = match store.take().filter(|s| !s.is_stale()) {
                        Some(store) => Ok(store),
                        None => app.connector.connect(),
                    };
                    let folded = connection.and_then(|connection| {
                        let (connection, result) = fold(&app, connection, &id, Fold::Journal);
                        store = connection;
                        result
                    });
                    if let Err(e) = folded {
                        // Nothing is lost: the batches stay journaled, and the sweeper folds
                        // them once the share is quiet.
                        eprintln!(
                            "bshare: share {id}: folding its sync journal: {}",
                            e.chain()
                        );
                        store = None;
                    }
                }
            })
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(kind: &str, data: serde_json::Value) -> SyncItem {
        SyncItem::new(kind, data)
    }

    fn stored(at: i64, items: &[SyncItem]) -> JournalBatch {
        JournalBatch::new(at, false, serde_json::to_vec(items).unwrap(), items.len())
    }

    /// The compacted journal applies exactly as its batches do in order: later versions win,
    /// a part sent before its message still lands in it, and the singletons keep their last.
    #[test]
    fn a_compacted_journal_applies_as_its_batches_do() {
        let s = "ses_compact";
        let message = |id: &str, role: &str| {
            item(
                "message",
                json!({"id": id, "sessionID": s, "role": role, "time": {"created": 1}}),
            )
        };
        let part = |m: &str, id: &str, text: &str| {
            item(
                "part",
                json!({"id": id, "messageID": m, "sessionID": s, "type": "text", "text": text}),
            )
        };
        let batches = [
            stored(
                10,
                &[
                    item("session", json!({"id": s, "title": "one"})),
                    message("msg_1", "user"),
                    part("msg_1", "prt_1", "a"),
                    // Before its message: pending until it comes.
                    part("msg_2", "prt_2", "early"),
                    // Pending for good, in the order they came.
                    part("msg_9", "prt_9a", "a"),
                    part("msg_9", "prt_9b", "b"),
                ],
            ),
            stored(
                20,
                &[
                    message("msg_2", "assistant"),
                    part("msg_1", "prt_1", "ab"),
                    item("model", json!([{"id": "m1"}])),
                    item("unknown_kind", json!({})),
                ],
            ),
            stored(
                30,
                &[
                    item("session", json!({"id": s, "title": "two"})),
                    message("msg_1", "user"),
                    part("msg_2", "prt_2", "early, then late"),
                    part("msg_9", "prt_9a", "a again"),
                ],
            ),
        ];
        let incoming = Incoming {
            items: vec![part("msg_1", "prt_1", "abc"), part("msg_1", "prt_3", "new")],
            batch: stored(25, &[]),
        };
        let base = || ShareData {
            share_id: "compact1".into(),
            session_id: s.into(),
            ..ShareData::default()
        };

        let mut in_order = base();
        apply(&mut in_order, &batches);
        protocol::apply_items(&mut in_order, &incoming.items).unwrap();
        let one = compacted(&batches, Some(&incoming)).unwrap();
        let mut compact = base();
        apply(&mut compact, std::slice::from_ref(&one));

        assert_eq!(
            serde_json::to_value(&compact).unwrap(),
            serde_json::to_value(&in_order).unwrap()
        );
        let kept: Vec<SyncItem> = serde_json::from_slice(&one.items).unwrap();
        assert_eq!(kept.len(), 9, "one of each: {kept:?}");
        assert_eq!(one.at, 30, "the latest batch's time");
        assert!(one.weight < batches.iter().map(|b| b.weight).sum::<i64>());
    }
}
