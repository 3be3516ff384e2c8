//! The share API (DESIGN.md §2): create, re-sync, read, delete, local uploads, health.

use serde::{Deserialize, Serialize};

use super::server::Worker;
use super::{Request, Response};
use crate::blob::local::UPLOAD_CONTENT_TYPE;
use crate::crypto;
use crate::error::{Error, Result};
use crate::model::{self, is_valid_share_id, now_millis, object_key};
use crate::store::{CreateOutcome, ShareRow};

/// A new share, as both create endpoints need it.
pub struct Created {
    pub share_id: String,
    pub url: String,
    pub secret: String,
    /// The first upload URL, when one was asked for.
    pub presigned_url: Option<String>,
    pub expires_at: i64,
}

/// Create a share: validate, count against the client's hourly limit (in the database, so it holds
/// across instances), insert the row with the secret's hash, and sign the first upload URL.
/// `upload` asks for the first upload URL (the presign API); OpenCode's own create gets none, its
/// content arrives through sync batches the server merges itself.
pub fn create_share(
    w: &mut Worker,
    req: &Request,
    session_id: &str,
    share_id: Option<&str>,
    upload: Option<Option<u64>>,
) -> Result<Created> {
    if session_id.is_empty() || session_id.len() > 256 {
        return Err(Error::BadRequest(
            "sessionId must be a non-empty string of at most 256 characters".into(),
        ));
    }
    if share_id.is_some_and(|id| !is_valid_share_id(id)) {
        return Err(Error::BadRequest(
            "shareId must be 8 to 64 characters from A-Z, a-z, 0-9, _ and -".into(),
        ));
    }
    if let Some(size) = upload {
        check_size(w, size)?;
    }
    let now = now_millis();
    let client = w.app.client_hash(req.client);
    let limit = w.app.config.create_limit_per_hour;
    let share_id = share_id.map_or_else(crypto::new_share_id, str::to_owned);
    let secret = crypto::new_secret();
    let expires_at = now + w.app.config.upload_url_lifetime.as_millis() as i64;
    let row = ShareRow {
        id: share_id.clone(),
        session_id: session_id.to_owned(),
        secret_hash: crypto::secret_hash(&secret),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        // Until an issued upload URL expires, cached views check the object for changes.
        upload_until: if upload.is_some() { expires_at } else { 0 },
    };
    match w.store()?.create_share(&row, &client, now, limit)? {
        CreateOutcome::Created => {}
        CreateOutcome::Exists => return Err(Error::ShareExists),
        CreateOutcome::Limited { retry_after } => return Err(Error::RateLimited { retry_after }),
    }
    let presigned_url = match upload {
        Some(size) => Some(w.app.blobs.presign_put(
            &object_key(&share_id),
            size,
            w.app.config.upload_url_lifetime,
        )?),
        None => None,
    };
    Ok(Created {
        url: share_url(w, &share_id),
        share_id,
        secret,
        presigned_url,
        expires_at,
    })
}

pub fn share_url(w: &Worker, id: &str) -> String {
    format!("{}/share/{id}", w.app.config.base_url())
}

fn check_size(w: &Worker, size: Option<u64>) -> Result<()> {
    let limit = w.app.config.max_document_bytes;
    match size {
        Some(size) if size > limit => Err(Error::TooLarge {
            what: "the session document",
            size,
            limit,
        }),
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PresignRequest {
    session_id: Option<String>,
    share_id: Option<String>,
    size: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresignCreated {
    share_id: String,
    url: String,
    presigned_url: String,
    secret: String,
    expires_at: i64,
}

/// `POST /api/share/presign`
pub fn create_share_presign(w: &mut Worker, req: &Request) -> Result<Response> {
    let body: PresignRequest = req.json()?;
    let session_id = body
        .session_id
        .ok_or_else(|| Error::BadRequest("sessionId is required".into()))?;
    let c = create_share(
        w,
        req,
        &session_id,
        body.share_id.as_deref(),
        Some(body.size),
    )?;
    Ok(Response::json(
        201,
        &PresignCreated {
            share_id: c.share_id,
            url: c.url,
            presigned_url: c.presigned_url.unwrap_or_default(),
            secret: c.secret,
            expires_at: c.expires_at,
        },
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpencodeCreateRequest {
    #[serde(rename = "sessionID")]
    session_id: Option<String>,
}

#[derive(Serialize)]
struct OpencodeCreated {
    id: String,
    url: String,
    secret: String,
}

/// `POST /api/share`: OpenCode's own create (`{sessionID}` → `{id, url, secret}`). The document
/// then arrives through sync batches, so no upload URL is handed out.
pub fn create_share_opencode(w: &mut Worker, req: &Request) -> Result<Response> {
    let body: OpencodeCreateRequest = req.json()?;
    let session_id = body
        .session_id
        .ok_or_else(|| Error::BadRequest("sessionID is required".into()))?;
    let c = create_share(w, req, &session_id, None, None)?;
    Ok(Response::json(
        200,
        &OpencodeCreated {
            id: c.share_id,
            url: c.url,
            secret: c.secret,
        },
    ))
}

/// The share `id`, checked: unknown → 404, deleted → 410, then the secret (from the
/// `X-Share-Secret` header, else `body_secret`): missing → 401, wrong → 403.
pub fn authorize(
    w: &mut Worker,
    req: &Request,
    id: &str,
    body_secret: Option<&str>,
) -> Result<ShareRow> {
    let row = live_share(w, id)?;
    let secret = req
        .header("x-share-secret")
        .or(body_secret)
        .filter(|s| !s.is_empty())
        .ok_or(Error::MissingSecret)?;
    if !crypto::secret_matches(secret, &row.secret_hash) {
        return Err(Error::WrongSecret);
    }
    Ok(row)
}

/// The live share `id`: unknown (or an invalid id) → 404, deleted → 410.
pub fn live_share(w: &mut Worker, id: &str) -> Result<ShareRow> {
    if !is_valid_share_id(id) {
        return Err(Error::ShareNotFound);
    }
    let row = w.store()?.get_share(id)?.ok_or(Error::ShareNotFound)?;
    if row.deleted_at.is_some() {
        return Err(Error::ShareGone);
    }
    Ok(row)
}

/// Tell this server's page cache and every other server that a share changed.
pub fn announce_change(w: &mut Worker, id: &str) -> Result<()> {
    w.app.cache.invalidate(id);
    w.store()?.notify_change(id)
}

#[derive(Deserialize)]
struct ResyncRequest {
    size: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResyncAnswer {
    presigned_url: String,
    expires_at: i64,
}

/// `POST /api/share/:id/presign`: a fresh upload URL for re-sync.
pub fn resync_presign(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    let body: ResyncRequest = req.json()?;
    authorize(w, req, id, None)?;
    check_size(w, body.size)?;
    let now = now_millis();
    let expires_at = now + w.app.config.upload_url_lifetime.as_millis() as i64;
    let presigned_url =
        w.app
            .blobs
            .presign_put(&object_key(id), body.size, w.app.config.upload_url_lifetime)?;
    w.store()?.note_upload(id, expires_at, now)?;
    announce_change(w, id)?;
    Ok(Response::json(
        200,
        &ResyncAnswer {
            presigned_url,
            expires_at,
        },
    ))
}

/// `GET /api/share/:id`: the stored document.
pub fn get_document(w: &mut Worker, id: &str) -> Result<Response> {
    live_share(w, id)?;
    if let crate::config::ObjectConfig::S3(crate::config::S3Config {
        public_url: Some(public),
        ..
    }) = &w.app.config.objects
    {
        // The bucket serves reads itself: send the client there.
        return Ok(Response::new(302, "text/plain", Vec::new())
            .with_header("Location", format!("{public}/{}", object_key(id)))
            .with_header("Cache-Control", "no-cache"));
    }
    let (bytes, _) = stored_document(w, id)?;
    Ok(Response::new(200, "application/json", bytes).with_header("Cache-Control", "no-cache"))
}

/// The bytes and tag of a live share's stored document; 404 `NOT_UPLOADED` when there is none,
/// 502 `DAMAGED_DOCUMENT` when it is not JSON (every route that shows a document says so alike).
/// The caller has checked that the share is live.
pub fn stored_document(w: &Worker, id: &str) -> Result<(Vec<u8>, crate::blob::ObjectTag)> {
    let (bytes, tag) = w
        .app
        .blobs
        .get(&object_key(id))?
        .ok_or(Error::NotUploaded)?;
    // Checked without building it: routes that pass the bytes on do not need the values.
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
        return Err(damaged(id, format!("it is not JSON: {e}")));
    }
    Ok((bytes, tag))
}

fn damaged(id: &str, reason: String) -> Error {
    eprintln!("bshare: share {id}: the stored document is damaged: {reason}");
    Error::DamagedDocument { reason }
}

#[derive(Deserialize)]
struct DeleteRequest {
    secret: Option<String>,
}

/// `DELETE /api/share/:id`: keep a tombstone, remove the object. The secret comes in
/// `X-Share-Secret` or, as OpenCode sends it, in the JSON body.
pub fn delete_share(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    let body: DeleteRequest = req.json()?;
    match authorize(w, req, id, body.secret.as_deref()) {
        Ok(_) => {}
        Err(Error::ShareGone) => {
            // Deleted before. If that delete could not reach the object store, the owner's retry
            // removes the object now; the answer stays 410.
            delete_object_of_tombstone(w, req, id, body.secret.as_deref())?;
            return Err(Error::ShareGone);
        }
        Err(e) => return Err(e),
    }
    // Tombstone first: the UPDATE waits for a sync merge holding the share's row lock, and any
    // write after it sees the tombstone, so the content cannot come back once the object is gone.
    w.store()?.mark_deleted(id, now_millis())?;
    announce_change(w, id)?;
    w.app.blobs.delete(&object_key(id))?;
    Ok(Response::json(200, &serde_json::json!({ "ok": true })))
}

/// Remove the object of a deleted share when the caller holds its secret.
fn delete_object_of_tombstone(
    w: &mut Worker,
    req: &Request,
    id: &str,
    body_secret: Option<&str>,
) -> Result<()> {
    let secret = req.header("x-share-secret").or(body_secret);
    let row = w.store()?.get_share(id)?;
    if let (Some(secret), Some(row)) = (secret, row)
        && crypto::secret_matches(secret, &row.secret_hash)
    {
        w.app.blobs.delete(&object_key(id))?;
    }
    Ok(())
}

/// `PUT /blob/sessions/:id.json`: an upload through a URL the local store signed.
pub fn upload_local(w: &mut Worker, req: &Request, file: &str) -> Result<Response> {
    let Some(local) = w.app.blobs.as_local() else {
        return Err(Error::RouteNotFound);
    };
    let key = format!("sessions/{file}");
    let now = now_millis();
    let grant = local.verify_upload(&key, &req.query, now)?;
    let content_type = req.header("content-type").unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some(UPLOAD_CONTENT_TYPE) {
        return Err(Error::UploadRefused(
            "the upload must be sent with Content-Type: application/json",
        ));
    }
    if let Some(length) = grant.length {
        let got = req.body.len() as u64;
        if got > length {
            return Err(Error::TooLarge {
                what: "the upload",
                size: got,
                limit: length,
            });
        }
        if got != length {
            return Err(Error::UploadRefused(
                "the upload is shorter than the size the upload URL was signed for",
            ));
        }
    }
    let id = file.trim_end_matches(".json").to_owned();
    // A URL issued before the owner deleted the share must not bring its content back.
    live_share(w, &id)?;
    if !w.store()?.consume_nonce(&grant.nonce, grant.expires_at)? {
        return Err(Error::UploadRefused(
            "this upload URL was already used; ask the server for a new one",
        ));
    }
    // Written under the share's row lock, re-checking the tombstone: a delete that raced with
    // this upload must not find its object brought back.
    let blobs = w.app.blobs.clone();
    let mut tag = String::new();
    w.store()?.with_share_locked(&id, &mut |row| {
        if row.deleted_at.is_some() {
            return Err(Error::ShareGone);
        }
        tag = blobs.put(&key, &req.body)?;
        Ok(())
    })?;
    w.store()?.touch_share(&id, now)?;
    announce_change(w, &id)?;
    Ok(Response::new(200, "text/plain", Vec::new()).with_header("ETag", format!("\"{tag}\"")))
}

/// The last `/healthz` answer: status and body, and when it was made.
#[derive(Default)]
pub struct HealthCache {
    last: std::sync::Mutex<Option<(std::time::Instant, u16, serde_json::Value)>>,
}

/// How long a `/healthz` answer is kept: a load balancer polling often, or anyone else, costs
/// one database ping and one object-store check (an S3 request) per period, not per call.
const HEALTH_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// `GET /healthz`: 200 when the database and the object store answer, 503 naming what is down.
/// The answer is kept for [`HEALTH_TTL`]; concurrent callers wait for one check.
pub fn healthz(w: &mut Worker) -> Response {
    let app = std::sync::Arc::clone(&w.app);
    let mut last = app
        .health
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((at, status, body)) = last.as_ref()
        && at.elapsed() < HEALTH_TTL
    {
        return Response::json(*status, body).with_header("Cache-Control", "no-store");
    }
    let response = check_health(w);
    *last = Some((std::time::Instant::now(), response.0, response.1.clone()));
    Response::json(response.0, &response.1).with_header("Cache-Control", "no-store")
}

fn check_health(w: &mut Worker) -> (u16, serde_json::Value) {
    let database = w.store().and_then(crate::store::MetaStore::ping);
    let objects = w.app.blobs.ping();
    // The reason goes to the log only: it may name hosts and users.
    let status = |r: &Result<()>| match r {
        Ok(()) => "ok",
        Err(e) => {
            eprintln!("bshare: healthz: {}", e.chain());
            "down"
        }
    };
    let body = serde_json::json!({
        "database": status(&database),
        "objects": status(&objects),
    });
    match (&database, &objects) {
        (Ok(()), Ok(())) => (200, body),
        _ => {
            let down: Vec<&str> = [
                database.is_err().then_some("database"),
                objects.is_err().then_some("object store"),
            ]
            .into_iter()
            .flatten()
            .collect();
            let mut body = body;
            body["error"] = format!("unavailable: {}", down.join(" and ")).into();
            body["code"] = "UNAVAILABLE".into();
            (503, body)
        }
    }
}

/// Parse a document fetched from the object store. Missing fields are tolerated (the renderer
/// shows what there is); JSON of another shape is 502 `DAMAGED_DOCUMENT`.
pub fn parse_document(id: &str, bytes: &[u8]) -> Result<model::ShareData> {
    serde_json::from_slice(bytes).map_err(|e| {
        let reason = if e.is_syntax() || e.is_eof() {
            format!("it is not JSON: {e}")
        } else {
            format!("it is not a session document: {e}")
        };
        damaged(id, reason)
    })
}
