//! OpenCode's own share protocol on the server (DESIGN.md §2): sync batches merged into the stored
//! document, and the document read back as OpenCode's item list.
//!
//! Creating (`POST /api/share`) and deleting (`DELETE /api/share/:id`, secret in the body) are the
//! share API's own handlers in `api`; the merge itself is `crate::protocol`.

use serde_json::json;

use super::context::Worker;
use super::{Request, Response, announce, api, auth};
use crate::error::{Error, Result};
use crate::model::{ShareData, now_millis, object_key};
use crate::protocol;
use crate::redact;

/// `POST /api/share/:id/sync`: merge `{secret, data: [{type, data}]}` into the share's document.
///
/// The merge runs under the share's row lock, so batches for one share are applied one at a time
/// even across servers and none is lost. Nothing is written when the secret is wrong, an item is
/// invalid, or the merged document would exceed the document size limit.
pub fn sync_share(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    /// The secret alone: serde skips `data` without building it, so a large batch with a wrong
    /// secret costs no more memory than its bytes.
    #[derive(serde::Deserialize)]
    struct SecretOnly {
        secret: Option<String>,
    }
    let SecretOnly { secret } = req.json()?;
    if let Err(err) = auth::owner(w, req, id, secret.as_deref()) {
        // Sync is exempt from the per-address request limit (a lost batch is lost for good:
        // OpenCode does not send it again), but failed attempts count, so secrets cannot be
        // guessed faster than any other request is allowed.
        let client = w.app.client_hash(req.client);
        if let Err(retry_after) = w.app.limiter.check(client, now_millis()) {
            return Err(Error::RateLimited { retry_after });
        }
        return Err(err);
    }
    let mut body = protocol::parse_sync_request(&req.body)?;
    let redacted = w.app.config.redact_sync && redact::rules().redact_items(&mut body.data) > 0;
    if body.data.is_empty() {
        return Ok(Response::json(200, &json!({})));
    }
    let blobs = w.app.blobs.clone();
    let limit = w.app.config.max_document_bytes;
    let key = object_key(id);
    let now = now_millis();
    let mut wrote = false;
    let result = w.store()?.with_share_locked(id, now, &mut |row| {
        // Deleted or expired between the secret check and the lock: the content must not come
        // back.
        auth::check_live(row)?;
        let mut doc = match blobs.get_within(&key, limit)? {
            // Unreadable content cannot be merged into; OpenCode's items are the truth now.
            Some((bytes, _)) => api::parse_document(id, &bytes)
                .unwrap_or_else(|_| empty_document(id, &row.session_id, row.created_at)),
            None => empty_document(id, &row.session_id, row.created_at),
        };
        protocol::apply_items(&mut doc, &body.data)?;
        if redacted || doc.redaction.is_some() {
            redact::recount(&mut doc);
        }
        doc.updated_at = now;
        let bytes = serde_json::to_vec(&doc).map_err(Error::internal)?;
        if bytes.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: "the session document after this sync",
                size: bytes.len() as u64,
                limit,
            });
        }
        wrote = true;
        blobs.put(&key, &bytes)?;
        Ok(())
    });
    match result {
        Ok(()) => announce::changed(&w.app, id),
        Err(e) if wrote => {
            announce::unconfirmed_write(w, id);
            return Err(e);
        }
        Err(e) => return Err(e),
    }
    Ok(Response::json(200, &json!({})))
}

/// `GET /api/share/:id/data`: the document as OpenCode's item list, what `opencode import <url>`
/// reads. Works for every share, however its document was uploaded. Served from the cache like
/// the page (`views::cached`), with an `ETag`.
pub fn get_share_items(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    let (entry, hit) = super::views::cached(w, req, id, super::cache::Kind::Items)?;
    Ok(super::views::serve_entry(
        req,
        &entry,
        "application/json",
        hit,
    ))
}

fn empty_document(id: &str, session_id: &str, created_at: i64) -> ShareData {
    ShareData {
        share_id: id.to_owned(),
        session_id: session_id.to_owned(),
        created_at,
        updated_at: created_at,
        ..ShareData::default()
    }
}

#[cfg(test)]
mod tests;
