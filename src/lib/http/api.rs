//! The share API (DESIGN.md §2): create, re-sync, read, delete, local uploads, health.

use serde::{Deserialize, Serialize};

use super::context::Worker;
use super::journal::Fold;
use super::{Request, Response, announce, auth};
use crate::blob::local::UPLOAD_CONTENT_TYPE;
use crate::crypto;
use crate::error::{Error, Result};
use crate::model::{self, is_valid_share_id, now_millis, object_key};
use crate::store::{CreateOutcome, ShareRow};

/// What a create request asks for, as both create endpoints take it.
pub struct NewShare<'a> {
    pub session_id: &'a str,
    pub share_id: Option<&'a str>,
    /// The first upload URL, with the declared size, when one is asked for (the presign API);
    /// OpenCode's own create gets none, its content arrives through sync batches the server
    /// merges itself.
    pub upload: Option<Option<u64>>,
    /// `expiresIn`: the share's lifetime in seconds.
    pub expires_in: Option<u64>,
}

/// A new share, as both create endpoints need it.
pub struct Created {
    pub share_id: String,
    pub url: String,
    pub secret: String,
    /// The first upload URL, when one was asked for.
    pub presigned_url: Option<String>,
    /// When the upload URL expires (epoch ms).
    pub expires_at: i64,
    /// When the share expires (epoch ms); `None`: never.
    pub share_expires_at: Option<i64>,
}

/// Create a share: check the create token, validate, count against the client's hourly limit (in the database, so it holds
/// across instances), insert the row with the secret's hash and the expiry, and sign the first
/// upload URL.
pub fn create_share(w: &mut Worker, req: &Request, new: &NewShare<'_>) -> Result<Created> {
    auth::creator(w, req)?;
    if new.session_id.is_empty() || new.session_id.len() > 256 {
        return Err(Error::BadRequest(
            "sessionId must be a non-empty string of at most 256 characters".into(),
        ));
    }
    if new.share_id.is_some_and(|id| !is_valid_share_id(id)) {
        return Err(Error::BadRequest(
            "shareId must be 8 to 64 characters from A-Z, a-z, 0-9, _ and -".into(),
        ));
    }
    if let Some(size) = new.upload {
        check_size(w, size)?;
    }
    let lifetime = w
        .app
        .config
        .share_lifetime(new.expires_in)
        .map_err(Error::BadRequest)?;
    let now = now_millis();
    let share_expires_at = lifetime.map(|l| now + l.as_millis() as i64);
    let client = w.app.client_hash(req.client);
    let limit = w.app.config.create_limit_per_hour;
    let share_id = new
        .share_id
        .map_or_else(crypto::new_share_id, str::to_owned);
    let secret = crypto::new_secret();
    let expires_at = now + w.app.config.upload_url_lifetime.as_millis() as i64;
    let row = ShareRow {
        id: share_id.clone(),
        session_id: new.session_id.to_owned(),
        secret_hash: crypto::secret_hash(&secret),
        created_at: now,
        updated_at: now,
        deleted_at: None,
        // Until an issued upload URL expires, cached views check the object for changes.
        upload_until: if new.upload.is_some() { expires_at } else { 0 },
        expires_at: share_expires_at,
    };
    match w.store()?.create_share(&row, &client, now, limit)? {
        CreateOutcome::Created => {}
        CreateOutcome::Exists => return Err(Error::ShareExists),
        CreateOutcome::Limited { retry_after } => return Err(Error::RateLimited { retry_after }),
    }
    let presigned_url = match new.upload {
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
        share_expires_at,
    })
}

pub fn share_url(w: &Worker, id: &str) -> String {
    format!("{}/share/{id}", w.app.config.base_url())
}

/// Refuse a declared size over the document limit (413), and a missing one with an S3 bucket
/// (400): the bucket enforces only the length an upload URL binds, so an S3 upload URL always
/// binds one. On local disk the server itself stops an upload at the limit.
fn check_size(w: &Worker, size: Option<u64>) -> Result<()> {
    let limit = w.app.config.max_document_bytes;
    if size.is_none() && matches!(w.app.config.objects, crate::config::ObjectConfig::S3(_)) {
        return Err(Error::BadRequest(format!(
            "size is required: this server keeps documents in an S3 bucket, and an upload URL must bind the document's length in bytes (at most {limit})"
        )));
    }
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
    expires_in: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PresignCreated {
    share_id: String,
    url: String,
    presigned_url: String,
    secret: String,
    /// When the upload URL expires.
    expires_at: i64,
    /// When the share expires; `null`: never.
    share_expires_at: Option<i64>,
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
        &NewShare {
            session_id: &session_id,
            share_id: body.share_id.as_deref(),
            upload: Some(body.size),
            expires_in: body.expires_in,
        },
    )?;
    Ok(Response::json(
        201,
        &PresignCreated {
            share_id: c.share_id,
            url: c.url,
            presigned_url: c.presigned_url.unwrap_or_default(),
            secret: c.secret,
            expires_at: c.expires_at,
            share_expires_at: c.share_expires_at,
        },
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpencodeCreateRequest {
    #[serde(rename = "sessionID")]
    session_id: Option<String>,
    expires_in: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OpencodeCreated {
    id: String,
    url: String,
    secret: String,
    /// When the share expires; `null`: never. OpenCode ignores it.
    share_expires_at: Option<i64>,
}

/// `POST /api/share`: OpenCode's own create. No upload URL: its content arrives through sync
/// batches.
pub fn create_share_opencode(w: &mut Worker, req: &Request) -> Result<Response> {
    let body: OpencodeCreateRequest = req.json()?;
    let session_id = body
        .session_id
        .ok_or_else(|| Error::BadRequest("sessionID is required".into()))?;
    let c = create_share(
        w,
        req,
        &NewShare {
            session_id: &session_id,
            share_id: None,
            upload: None,
            expires_in: body.expires_in,
        },
    )?;
    Ok(Response::json(
        200,
        &OpencodeCreated {
            id: c.share_id,
            url: c.url,
            secret: c.secret,
            share_expires_at: c.share_expires_at,
        },
    ))
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
///
/// The journal is folded first and the URL recorded under the same lock (`Fold::Upload`), so the
/// object the client replaces holds every batch acknowledged until now. Batches acknowledged
/// after stay journaled until the URL's window has passed, applied on top of what it uploads
/// (`journal::fold`); so do those journaled while an earlier URL is still open.
pub fn resync_presign(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    let body: ResyncRequest = req.json()?;
    auth::owner(w, req, id, None)?;
    check_size(w, body.size)?;
    let now = now_millis();
    let expires_at = now + w.app.config.upload_url_lifetime.as_millis() as i64;
    let presigned_url =
        w.app
            .blobs
            .presign_put(&object_key(id), body.size, w.app.config.upload_url_lifetime)?;
    // Recorded (and announced) before the URL is handed out: from now on hits check the object,
    // and no fold writes it. Without a journal there is nothing to fold: no render thread.
    if w.store()?.journal_head(id)? == 0 {
        let recorded = w
            .store()?
            .with_share_locked(id, Some(now), &mut |row, journal| {
                auth::check_live(row)?;
                journal.upload_opened(expires_at)
            });
        announce::changed(&w.app, id);
        recorded?;
    } else {
        w.fold(
            id,
            Fold::Upload {
                until: expires_at,
                now,
            },
        )?;
    }
    Ok(Response::json(
        200,
        &ResyncAnswer {
            presigned_url,
            expires_at,
        },
    ))
}

/// `GET /api/share/:id`: the stored document.
pub fn get_document(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    if let crate::config::ObjectConfig::S3(crate::config::S3Config {
        public_url: Some(public),
        ..
    }) = &w.app.config.objects
    {
        // The bucket serves reads itself: send the client there, once it holds every
        // acknowledged sync batch. While an upload URL is open nothing is folded (the upload
        // would replace it) and the document is served from here, as it is after a fold that
        // left batches (journaled meanwhile).
        let public = public.clone();
        let row = auth::live_share(w, id)?;
        let mut waiting = w.store()?.journal_head(id)? != 0;
        if waiting && !super::journal::upload_open(&w.app, &row) {
            w.fold(id, Fold::Journal)?;
            // Batches journaled during the fold wait too.
            waiting = w.store()?.journal_head(id)? != 0;
        }
        if !waiting {
            return Ok(Response::new(302, "text/plain", Vec::new())
                .with_header("Location", format!("{public}/{}", object_key(id)))
                .with_header("Cache-Control", "no-cache"));
        }
    }
    let (entry, hit) = super::views::cached(w, req, id, super::cache::Kind::Document)?;
    Ok(super::views::serve_entry(
        req,
        &entry,
        "application/json",
        hit,
    ))
}

/// The bytes and tag of a live share's stored document; 404 `NOT_UPLOADED` when there is none,
/// 502 `DAMAGED_DOCUMENT` when it is not JSON (every route that shows a document says so alike).
/// The caller has checked that the share is live.
pub fn stored_document(
    app: &super::context::App,
    id: &str,
) -> Result<(Vec<u8>, crate::blob::ObjectTag)> {
    let (bytes, tag) = app
        .blobs
        .get_within(&object_key(id), app.config.max_document_bytes)?
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
///
/// Deleting a share already gone: with its secret, an object a failed earlier delete left behind
/// is removed now. bshare's own clients (secret in the header) are then told 410, which they
/// report as "already gone"; OpenCode (secret in the body) is told 200. OpenCode keeps its record
/// of a share until the server accepts its `/unshare`, and a share it made can also be taken down
/// elsewhere: with a 410 its unshare would fail for good and the session would keep showing a dead
/// link. Without the right secret a deleted share answers 410, so nothing is learnt that the page
/// does not say.
pub fn delete_share(w: &mut Worker, req: &Request, id: &str) -> Result<Response> {
    let body: DeleteRequest = req.json()?;
    let row = auth::share(w, id)?;
    let secret = auth::presented_secret(req, body.secret.as_deref());
    if let Err(gone) = auth::check_live(&row) {
        if !auth::secret_matches(&row, secret) {
            return Err(gone);
        }
        w.app.blobs.delete(&object_key(id))?;
        if req.header("x-share-secret").is_some() {
            return Err(gone);
        }
        return Ok(Response::json(200, &serde_json::json!({ "ok": true })));
    }
    if secret.is_none() {
        return Err(Error::MissingSecret);
    }
    if !auth::secret_matches(&row, secret) {
        return Err(Error::WrongSecret);
    }
    // Tombstone first: the UPDATE waits for a sync merge holding the share's row lock, and any
    // write after it sees the tombstone, so the content cannot come back once the object is gone.
    // The tombstone and its announcement to other servers are one transaction; this server's
    // cache drops the share whether or not the answer came back.
    let marked = w.store()?.mark_deleted(id, now_millis());
    announce::changed(&w.app, id);
    marked?;
    // A failure here leaves the object to the sweep (and to the owner's retry): the share is
    // gone already.
    w.app.blobs.delete(&object_key(id))?;
    Ok(Response::json(200, &serde_json::json!({ "ok": true })))
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
    auth::live_share(w, &id)?;
    if !w.store()?.consume_nonce(&grant.nonce, grant.expires_at)? {
        return Err(Error::UploadRefused(
            "this upload URL was already used; ask the server for a new one",
        ));
    }
    // Written under the share's row lock, re-checking the tombstone: a delete that raced with
    // this upload must not find its object brought back.
    let blobs = w.app.blobs.clone();
    let mut tag = String::new();
    let mut wrote = false;
    let result = w
        .store()?
        .with_share_locked(&id, Some(now), &mut |row, journal| {
            auth::check_live(row)?;
            wrote = true;
            tag = blobs.put(&key, &req.body)?;
            // Its batches stay, applied on top. The journal's bound counts from a document the
            // server wrote (an upload may grow when it is written again): unknown until then.
            journal.folded(0, -1)
        });
    match result {
        Ok(()) => announce::changed(&w.app, &id),
        Err(e) if wrote => {
            announce::unconfirmed_write(&w.app, &id);
            return Err(e);
        }
        Err(e) => return Err(e),
    }
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

/// `GET /healthz`: 200 when the database and the object store answer, 503 naming what is down,
/// and the view cache's counts (`cache`: entries, hits, fills). The check is kept for
/// [`HEALTH_TTL`]; concurrent callers wait for one check.
pub fn healthz(w: &mut Worker) -> Response {
    let app = std::sync::Arc::clone(&w.app);
    let mut last = app
        .health
        .last
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (status, mut body) = match last.as_ref() {
        Some((at, status, body)) if at.elapsed() < HEALTH_TTL => (*status, body.clone()),
        _ => {
            let (status, body) = check_health(w);
            *last = Some((std::time::Instant::now(), status, body.clone()));
            (status, body)
        }
    };
    drop(last);
    // The cache's own counts cost nothing: always current.
    let (hits, fills) = app.cache.counts();
    body["cache"] = serde_json::json!({ "entries": app.cache.len(), "hits": hits, "fills": fills });
    Response::json(status, &body).with_header("Cache-Control", "no-store")
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
