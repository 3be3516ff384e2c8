//! The share page and its variants (`/share/:id`, `.md`, `.json`), the stylesheet, the index page.
//!
//! A repeat view is served from the page cache (see `cache`) with no database trip and no render;
//! `ETag`/`If-None-Match` turn a browser's reload (or an agent's poll of `.md`/`.json`) into a 304.

use std::sync::Arc;

use super::cache::{Entry, Kind, Meta};
use super::context::{App, Worker};
use super::journal::{self, Current};
use super::{Body, Request, Response, api, auth};
use crate::error::Error;
use crate::model::{is_valid_share_id, now_millis, object_key};
use crate::render;

/// Only this server's own script (`/assets/live-*.js`, nothing inline), nothing from other hosts,
/// no framing. The script reads the page's event stream and fragments (`connect-src 'self'`).
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn with_page_headers(response: Response) -> Response {
    response
        .with_header("Content-Security-Policy", CSP)
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Frame-Options", "DENY")
}

fn html(status: u16, body: impl Into<Vec<u8>>) -> Response {
    with_page_headers(Response::new(status, "text/html; charset=utf-8", body))
}

/// An HTML error page for a share route.
pub fn error_page(err: &Error) -> Response {
    let (title, sentence) = match err {
        Error::ShareNotFound => (
            "Share not found",
            "There is no share at this address. Check the link you were given.",
        ),
        Error::ShareGone => (
            "Share removed",
            "The owner of this share removed it. Its content is no longer available.",
        ),
        Error::ShareExpired => (
            "Share expired",
            "This share has expired. Its content is no longer available.",
        ),
        Error::NotUploaded => (
            "Nothing here yet",
            "This share exists but its session has not been uploaded yet. Try again in a moment.",
        ),
        Error::StoredTooLarge { .. } => (
            "This share is too large to show",
            "The stored session is larger than this server accepts, so it is not shown. Its owner can share a shorter session.",
        ),
        Error::RateLimited { .. } => ("Too many requests", "Slow down and try again shortly."),
        Error::Busy { .. } => (
            "Busy",
            "The server is preparing other pages right now. Try again in a few seconds.",
        ),
        Error::DamagedDocument { .. } => (
            "This share cannot be shown",
            "The stored session for this share is damaged or in a format this server does not understand. Its owner can fix it by sharing the session again.",
        ),
        Error::Unavailable { .. } => (
            "Temporarily unavailable",
            "The server cannot reach its storage right now. Try again shortly.",
        ),
        _ => (
            "Something went wrong",
            "The server could not show this share. Try again later.",
        ),
    };
    let mut response = html(
        err.status(),
        render::render_status_page(err.status(), title, sentence),
    )
    .with_header("Cache-Control", "no-store");
    if let Error::RateLimited { retry_after } | Error::Busy { retry_after } = err {
        response = response.with_header("Retry-After", retry_after.to_string());
    }
    response
}

/// `GET /`
pub fn index(_w: &mut Worker) -> Response {
    html(
        200,
        render::render_status_page(
            200,
            "bshare",
            "This server hosts shared OpenCode sessions. Open a share link to read one.",
        ),
    )
}

/// `GET /assets/:name`: the stylesheet and the live-follow script, immutable under their
/// content-hashed names.
pub fn asset(req: &Request, name: &str) -> Response {
    /// Each asset compressed once, on first use.
    static STYLESHEET_GZIP: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| gzip(render::STYLESHEET.as_bytes()).into());
    static SCRIPT_GZIP: std::sync::LazyLock<Arc<[u8]>> =
        std::sync::LazyLock::new(|| gzip(render::LIVE_SCRIPT.as_bytes()).into());
    let (content_type, plain, gzipped) =
        if render::stylesheet_path().strip_prefix("/assets/") == Some(name) {
            (
                "text/css; charset=utf-8",
                render::STYLESHEET,
                &STYLESHEET_GZIP,
            )
        } else if render::live_script_path().strip_prefix("/assets/") == Some(name) {
            (
                "text/javascript; charset=utf-8",
                render::LIVE_SCRIPT,
                &SCRIPT_GZIP,
            )
        } else {
            return Response::from_error(&Error::RouteNotFound);
        };
    let response = if req.accepts_gzip() {
        Response {
            status: 200,
            headers: vec![("Content-Type", content_type.into())],
            body: Body::Shared(std::sync::LazyLock::force(gzipped).clone()),
        }
        .with_header("Content-Encoding", "gzip")
    } else {
        Response::new(200, content_type, plain)
    };
    response
        .with_header("Cache-Control", "public, max-age=31536000, immutable")
        .with_header("Vary", "Accept-Encoding")
        .with_header("X-Content-Type-Options", "nosniff")
}

use super::cache::gzip;

/// The share id and the view a `/share/<segment>` names.
fn variant(segment: &str) -> (&str, Variant) {
    if let Some(id) = segment.strip_suffix(".md") {
        (id, Variant::Markdown)
    } else if let Some(id) = segment.strip_suffix(".json") {
        (id, Variant::Json)
    } else {
        (segment, Variant::Html)
    }
}

impl Variant {
    fn kind(self) -> (Kind, &'static str) {
        match self {
            Variant::Html => (Kind::Page, "text/html; charset=utf-8"),
            Variant::Markdown => (Kind::Markdown, "text/markdown; charset=utf-8"),
            Variant::Json => (Kind::Document, "application/json"),
        }
    }
}

/// `GET /share/<segment>` (no query) answered from the cache alone, for the connection's own
/// thread: `None` unless the view is cached and fresh without asking anyone (not past the
/// share's expiry, not within an upload URL's window, where the object must be compared). The
/// worker's path (`share_page`) answers everything else, and this the same way.
pub fn cached_view(app: &App, req: &Request, segment: &str) -> Option<Response> {
    let (id, variant) = variant(segment);
    if !is_valid_share_id(id) {
        return None;
    }
    let (kind, content_type) = variant.kind();
    let entry = app.cache.peek(id, kind)?;
    let now = now_millis();
    if entry.expired(now) || entry.watched(now) {
        return None;
    }
    app.cache.count_hit();
    Some(with_page_headers(serve_entry(
        req,
        &entry,
        content_type,
        true,
    )))
}

/// `GET /share/:id`, `/share/:id.md`, `/share/:id.json`
pub fn share_page(w: &mut Worker, req: &Request, segment: &str) -> Response {
    let (id, variant) = variant(segment);
    if !is_valid_share_id(id) {
        return error_page(&Error::ShareNotFound);
    }
    let after = req
        .query
        .split('&')
        .find_map(|kv| kv.strip_prefix("after="));
    let result = match variant {
        Variant::Html if after.is_some() => fragment(w, req, id, after.unwrap_or_default()),
        Variant::Html => html_page(w, req, id),
        Variant::Markdown | Variant::Json => document_variant(w, req, id, variant),
    };
    result.unwrap_or_else(|err| {
        w.log_error(req, &err);
        error_page(&err)
    })
}

#[derive(Clone, Copy)]
enum Variant {
    Html,
    Markdown,
    Json,
}

/// `.md` and `.json`: from the cache like the page, with an `ETag`, so a reader or agent that
/// polls them gets a 304 while nothing changed.
fn document_variant(
    w: &mut Worker,
    req: &Request,
    id: &str,
    variant: Variant,
) -> Result<Response, Error> {
    let (kind, content_type) = variant.kind();
    let (entry, hit) = cached(w, req, id, kind)?;
    Ok(with_page_headers(serve_entry(
        req,
        &entry,
        content_type,
        hit,
    )))
}

/// Whether the request's `If-None-Match` names `etag`.
fn not_modified(req: &Request, etag: &str) -> bool {
    req.header("if-none-match")
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

fn html_page(w: &mut Worker, req: &Request, id: &str) -> Result<Response, Error> {
    let (entry, hit) = cached(w, req, id, Kind::Page)?;
    Ok(with_page_headers(serve_entry(
        req,
        &entry,
        "text/html; charset=utf-8",
        hit,
    )))
}

/// A view of share `id` as it is now, and whether it was a hit: from the cache, or filled once
/// for every concurrent request (`cache::Flights`) on the render thread.
///
/// A miss costs a database trip, an object read and a render, so misses are bounded: per client
/// (`--page-miss-limit`, 429), and in all: at most half the workers lead fills or wait for heavy
/// ones (`cache::Flights`), so the others stay free for hits; beyond, 503 `BUSY` with
/// `Retry-After`.
pub fn cached(
    w: &mut Worker,
    req: &Request,
    id: &str,
    kind: Kind,
) -> Result<(Arc<Entry>, bool), Error> {
    let now = now_millis();
    if let Some(entry) = w.app.cache.get(id, kind) {
        let fresh = !entry.expired(now)
            && (!entry.watched(now)
                || w.app.blobs.head(&object_key(id))?.as_deref()
                    == Some(entry.object_tag.as_str()));
        if fresh {
            return Ok((entry, true));
        }
        w.app.cache.invalidate(id);
    }
    if let Err(retry_after) = w.app.miss_limiter.check(w.app.client_hash(req.client), now) {
        return Err(Error::RateLimited { retry_after });
    }
    // Taken before anything is read: a change from now on keeps this fill out of the cache.
    let ticket = w.app.cache.ticket(id);
    let row = auth::live_share(w, id)?;
    let share_url = api::share_url(w, id);
    let app = Arc::clone(&w.app);
    let entry = app.flights.run(id, kind, ticket, |progress| {
        // By the leader alone: the journal, and with it under the share's lock the object
        // (`journal::read`), so that every acknowledged batch shows and none is undone.
        let app = Arc::clone(&w.app);
        let snapshot = journal::read(&app, w.store()?, id)?;
        w.app.renderer.run(move || {
            let meta = Meta {
                object_tag: String::new(),
                // A PUT straight to the bucket is seen by nobody: while an upload URL lives, and
                // a while after (a PUT begun before it expired may end after), check the object.
                // Local uploads come through this server, which announces them.
                watch_until: if app.blobs.as_local().is_some() {
                    0
                } else {
                    row.upload_until + app.upload_grace()
                },
                expires_at: row.expires_at,
            };
            let share = Share {
                row: &row,
                snapshot,
                url: &share_url,
            };
            fill(&app, share, kind, meta, ticket, &progress)
        })
    })?;
    Ok((entry, false))
}

/// A document this large takes long enough to render that waiting for it holds a worker too
/// long to let everyone wait (`cache::Flights`).
const HEAVY_DOCUMENT: usize = 1 << 20;

/// What a fill reads the share's document with.
struct Share<'a> {
    row: &'a crate::store::ShareRow,
    /// Its journaled sync batches, with the object read under the same lock.
    snapshot: journal::Snapshot,
    url: &'a str,
}

/// Build and keep one view of a share from its document as it is now (on the render thread).
fn fill(
    app: &App,
    share: Share<'_>,
    kind: Kind,
    mut meta: Meta,
    ticket: super::cache::Ticket,
    progress: &super::cache::Progress,
) -> Result<Arc<Entry>, Error> {
    let id = share.row.id.as_str();
    let journaled: usize = share.snapshot.batches.iter().map(|b| b.items.len()).sum();
    let (current, object_tag) = journal::current(app, share.row, share.snapshot)?;
    meta.object_tag = object_tag;
    let doc = match current {
        Current::Stored(bytes) => {
            if bytes.len() > HEAVY_DOCUMENT {
                progress.heavy();
            }
            if kind == Kind::Document {
                let entry = app.cache.build(bytes, meta);
                return Ok(app.cache.insert(id, kind, entry, ticket));
            }
            api::parse_document(id, &bytes)?
        }
        Current::Merged(doc, stored) => {
            if stored + journaled > HEAVY_DOCUMENT {
                progress.heavy();
            }
            *doc
        }
    };
    let plain = match kind {
        Kind::Page => render::render_page(
            &doc,
            &render::PageContext {
                share_url: share.url,
            },
        )
        .into_bytes(),
        Kind::Markdown => render::render_transcript_markdown(&doc).into_bytes(),
        Kind::Document => serde_json::to_vec(&doc).map_err(Error::internal)?,
        Kind::Items => crate::protocol::items_json(&doc)?,
    };
    drop(doc);
    let entry = app.cache.build(plain, meta);
    Ok(app.cache.insert(id, kind, entry, ticket))
}

/// Answer with a cached entry: 304 when the client has it, gzipped when it takes that.
pub fn serve_entry(req: &Request, entry: &Entry, content_type: &str, hit: bool) -> Response {
    let gzip = req.accepts_gzip().then(|| entry.gzip()).flatten();
    let etag = if gzip.is_some() {
        entry.gzip_etag()
    } else {
        entry.etag.clone()
    };
    let mut response = if not_modified(req, &etag) {
        Response {
            status: 304,
            headers: Vec::new(),
            body: Body::Owned(Vec::new()),
        }
    } else if let Some(body) = gzip {
        Response {
            status: 200,
            headers: vec![("Content-Type", content_type.into())],
            body,
        }
        .with_header("Content-Encoding", "gzip")
    } else {
        Response {
            status: 200,
            headers: vec![("Content-Type", content_type.into())],
            body: entry.plain(),
        }
    };
    response = response
        .with_header("ETag", etag)
        .with_header("Cache-Control", "no-cache")
        .with_header("Vary", "Accept-Encoding")
        .with_header("X-Cache", if hit { "hit" } else { "miss" });
    response
}

/// `GET /share/:id?after=<message id>`: the rendered messages from that one on (it may have
/// changed too), cut from the current page, for the live-follow script. An id the page does not
/// have (or none) gives every message.
fn fragment(w: &mut Worker, req: &Request, id: &str, after: &str) -> Result<Response, Error> {
    if !render::is_message_id(after) && !after.is_empty() {
        return Err(Error::BadRequest(
            "`after` must be a message id from the page".to_owned(),
        ));
    }
    let (page, _) = cached(w, req, id, Kind::Page)?;
    let body = render::messages_from(&page.plain_bytes()?, after).to_vec();
    Ok(
        with_page_headers(Response::new(200, "text/html; charset=utf-8", body))
            .with_header("Cache-Control", "no-store"),
    )
}

/// `GET /share/:id/events`: the share's event stream (`change`, `gone`, keep-alive comments).
/// The socket goes to the event hub once the head is out; the worker is free at once.
pub fn events(w: &mut Worker, id: &str) -> Result<Response, Error> {
    let row = auth::live_share(w, id)?;
    if !w.app.events.has_room() {
        return Err(Error::TooManyStreams);
    }
    Ok(Response {
        status: 200,
        headers: vec![
            ("Content-Type", "text/event-stream".into()),
            ("Cache-Control", "no-store".into()),
            // A proxy in front (nginx) must pass events on as they come.
            ("X-Accel-Buffering", "no".into()),
            ("Connection", "close".into()),
        ],
        body: Body::Events(super::events::EventStream {
            share: id.to_owned(),
            upload_until: row.upload_until,
            expires_at: row.expires_at,
        }),
    })
}
