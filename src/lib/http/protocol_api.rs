//! OpenCode's own share protocol on the server (DESIGN.md §2): sync batches journaled and merged
//! into the stored document (`journal`), and the document read back as OpenCode's item list.
//!
//! Creating (`POST /api/share`) and deleting (`DELETE /api/share/:id`, secret in the body) are the
//! share API's own handlers in `api`; the merge itself is `crate::protocol`.

use std::sync::Arc;

use serde_json::json;

use super::context::Worker;
use super::{Request, Response, announce, auth, journal};
use crate::error::{Error, Result};
use crate::model::now_millis;
use crate::protocol;
use crate::redact;
use crate::store::JournalBatch;

/// `POST /api/share/:id/sync`: merge `{secret, data: [{type, data}]}` into the share's document.
///
/// The batch is checked whole and journaled (`journal`): its cost does not grow with the session.
/// Batches of one share are applied in the order they were acknowledged, even across servers,
/// and none is lost. Nothing is kept when the secret is wrong, an item is invalid, or the merged
/// document would exceed the document size limit.
pub fn sync_share(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    /// The secret alone: serde skips `data` without building it, so a large batch with a wrong
    /// secret costs no more memory than its bytes.
    #[derive(serde::Deserialize)]
    struct SecretOnly {
        secret: Option<String>,
    }
    let SecretOnly { secret } = req.json()?;
    let row = match auth::owner(w, req, id, secret.as_deref()) {
        Ok(row) => row,
        Err(err) => {
            // Sync is exempt from the per-address request limit (a lost batch is lost for good:
            // OpenCode does not send it again), but failed attempts count, so secrets cannot be
            // guessed faster than any other request is allowed.
            let client = w.app.client_hash(req.client);
            if let Err(retry_after) = w.app.limiter.check(client, now_millis()) {
                return Err(Error::RateLimited { retry_after });
            }
            return Err(err);
        }
    };
    let mut body = protocol::parse_sync_request(&req.body)?;
    let redacted = w.app.config.redact_sync && redact::rules().redact_items(&mut body.data) > 0;
    if body.data.is_empty() {
        return Ok(Response::json(200, &json!({})));
    }
    protocol::check_items(&body.data, &row.session_id)?;
    let now = now_millis();
    let items = serde_json::to_vec(&body.data).map_err(Error::internal)?;
    let batch = JournalBatch::new(now, redacted, items, body.data.len());
    let limit = w.app.config.max_document_bytes;
    let app = Arc::clone(&w.app);
    match w.store()?.append_sync(id, &batch, limit) {
        Ok(Some(size)) => {
            announce::changed(&app, id);
            if journal::due(size) {
                app.folder.request(id);
            }
        }
        // Not journaled: gone meanwhile, or the document could reach its size limit (or its
        // size is unknown). Merged under the lock, which says which.
        Ok(None) => {
            let incoming = journal::Incoming {
                items: body.data,
                batch,
            };
            w.fold(id, journal::Fold::Batch(incoming))?;
        }
        Err(e) => {
            // The statement may have committed before the connection failed: this server's
            // cache must not keep the old views.
            announce::changed(&app, id);
            return Err(e);
        }
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

#[cfg(test)]
mod tests;
