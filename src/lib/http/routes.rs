//! The route table: one `match` on method and path segments.

use super::server::Worker;
use super::{Request, Response, api, protocol_api, views};
use crate::config::ServerConfig;
use crate::error::Error;

/// How many body bytes a route may receive. Only uploads (and OpenCode's sync batches) carry
/// session content; everything else is small JSON.
pub fn body_limit(config: &ServerConfig, method: &str, path: &str) -> u64 {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("PUT", ["blob", ..]) | ("POST", ["api", "share", _, "sync"]) => config.max_document_bytes,
        _ => config.max_api_body_bytes,
    }
}

/// Dispatch one request. API errors are JSON; page errors are HTML pages.
pub fn route(w: &mut Worker, req: &Request) -> Response {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let method = if req.method == "HEAD" {
        "GET"
    } else {
        req.method.as_str()
    };
    let is_api = matches!(segments.first(), Some(&("api" | "blob")));
    if is_api && !is_create(method, &segments) && !is_sync(method, &segments) {
        let client = w.app.client_hash(req.client);
        if let Err(retry_after) = w.app.limiter.check(client, crate::model::now_millis()) {
            return Response::from_error(&Error::RateLimited { retry_after });
        }
    }
    let result = match (method, segments.as_slice()) {
        ("GET", [""]) => Ok(views::index(w)),
        ("GET", ["healthz"]) => Ok(api::healthz(w)),
        ("GET", ["assets", name]) => Ok(views::asset(req, name)),
        ("GET", ["share", id]) => return views::share_page(w, req, id),
        ("POST", ["api", "share", "presign"]) => api::create_share_presign(w, req),
        ("POST", ["api", "share"]) => api::create_share_opencode(w, req),
        ("POST", ["api", "share", id, "presign"]) => api::resync_presign(w, req, id),
        ("GET", ["api", "share", id]) => api::get_document(w, id),
        ("DELETE", ["api", "share", id]) => protocol_api::delete_share(w, req, id),
        ("POST", ["api", "share", id, "sync"]) => protocol_api::sync_share(w, req, id),
        ("GET", ["api", "share", id, "data"]) => protocol_api::get_share_items(w, id),
        ("PUT", ["blob", "sessions", file]) => api::upload_local(w, req, file),
        (_, ["" | "healthz"] | ["assets" | "share", _] | ["api", "share", ..] | ["blob", ..]) => {
            Err(Error::MethodNotAllowed)
        }
        _ => Err(Error::RouteNotFound),
    };
    result.unwrap_or_else(|err| {
        w.log_error(req, &err);
        Response::from_error(&err)
    })
}

fn is_create(method: &str, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        ("POST", ["api", "share"] | ["api", "share", "presign"])
    )
}

/// OpenCode's sync batches are limited in their handler instead: only failed ones count.
fn is_sync(method: &str, segments: &[&str]) -> bool {
    matches!((method, segments), ("POST", ["api", "share", _, "sync"]))
}
