//! The route table: the one place that knows a route. Each entry gives a method and a path
//! pattern, how large a body the route may receive, which rate limit it counts against, and its
//! handler. `body_limit` (asked by the HTTP edge before the body is read), the rate check and
//! dispatch all look routes up here.
//!
//! Stock OpenCode can only be given a URL, so it presents a create token as a path prefix:
//! `/t/<token>/api/...` is the same API as `/api/...`, with the token as if sent in
//! `Authorization: Bearer`. `log_path` masks that segment for the access log.

use std::borrow::Cow;

use super::context::Worker;
use super::{Request, Response, api, protocol_api, views};
use crate::config::ServerConfig;
use crate::error::{Error, Result};

/// How many body bytes a route may receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyLimit {
    /// Small JSON (`--max-api-body-bytes`).
    Api,
    /// Session content: uploads and OpenCode's sync batches (the document limit).
    Document,
}

/// Which rate limit a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RateClass {
    /// Pages, assets, health: not limited per address (the page cache makes them cheap).
    Unlimited,
    /// The per-address, per-minute request limit, checked before the handler runs.
    Request,
    /// Share creation: the hourly limit counted in the database by the handler itself.
    Create,
    /// OpenCode's sync batches: only failed ones count (in the handler), since a lost batch is
    /// lost for good.
    Sync,
}

/// A handler gets the request and the path segments its pattern captured (`*`), in order.
enum Handler {
    /// Errors become JSON.
    Api(fn(&mut Worker, &Request, &[&str]) -> Result<Response>),
    /// Answers itself, errors as HTML pages.
    Page(fn(&mut Worker, &Request, &[&str]) -> Response),
}

struct Route {
    method: &'static str,
    /// Path segments; `*` matches any one segment.
    pattern: &'static [&'static str],
    body: BodyLimit,
    rate: RateClass,
    handler: Handler,
}

const fn entry(
    method: &'static str,
    pattern: &'static [&'static str],
    body: BodyLimit,
    rate: RateClass,
    handler: Handler,
) -> Route {
    Route {
        method,
        pattern,
        body,
        rate,
        handler,
    }
}

use BodyLimit::{Api as Small, Document};
use RateClass::{Create, Request as Counted, Sync, Unlimited};

#[rustfmt::skip]
const ROUTES: &[Route] = &[
    entry("GET", &[""], Small, Unlimited, Handler::Page(|w, _, _| views::index(w))),
    entry("GET", &["healthz"], Small, Unlimited, Handler::Page(|w, _, _| api::healthz(w))),
    entry("GET", &["assets", "*"], Small, Unlimited, Handler::Page(|_, r, p| views::asset(r, p[0]))),
    entry("GET", &["share", "*"], Small, Unlimited, Handler::Page(|w, r, p| views::share_page(w, r, p[0]))),
    entry("GET", &["share", "*", "events"], Small, Unlimited, Handler::Api(|w, _, p| views::events(w, p[0]))),
    entry("POST", &["api", "share", "presign"], Small, Create, Handler::Api(|w, r, _| api::create_share_presign(w, r))),
    entry("POST", &["api", "share"], Small, Create, Handler::Api(|w, r, _| api::create_share_opencode(w, r))),
    entry("POST", &["api", "share", "*", "presign"], Small, Counted, Handler::Api(|w, r, p| api::resync_presign(w, r, p[0]))),
    entry("GET", &["api", "share", "*"], Small, Counted, Handler::Api(|w, r, p| api::get_document(w, r, p[0]))),
    entry("DELETE", &["api", "share", "*"], Small, Counted, Handler::Api(|w, r, p| api::delete_share(w, r, p[0]))),
    entry("POST", &["api", "share", "*", "sync"], Document, Sync, Handler::Api(|w, r, p| protocol_api::sync_share(w, r, p[0]))),
    entry("GET", &["api", "share", "*", "data"], Small, Counted, Handler::Api(|w, r, p| protocol_api::get_share_items(w, r, p[0]))),
    entry("PUT", &["blob", "sessions", "*"], Document, Counted, Handler::Api(|w, r, p| api::upload_local(w, r, p[0]))),
];

/// A request path split into the create token of a `/t/<token>` prefix (if any) and the rest.
/// Only the API is reachable under the prefix.
pub fn split_token(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/t/")
        && let Some((token, tail)) = rest.split_once('/')
        && tail.starts_with("api/")
    {
        return (Some(token), &rest[token.len()..]);
    }
    (None, path)
}

/// The path as the access log shows it: a `/t/<token>` prefix becomes `/t/…`.
pub fn log_path(path: &str) -> Cow<'_, str> {
    match path.strip_prefix("/t/") {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            Cow::Owned(format!("/t/…{tail}"))
        }
        None => Cow::Borrowed(path),
    }
}

/// The route for `method` and `path`, with its captured segments. `HEAD` is routed as `GET`.
/// `Err` is 405 when the path has routes for other methods, else 404.
fn find<'p>(
    method: &str,
    path: &'p str,
) -> std::result::Result<(&'static Route, Vec<&'p str>), Error> {
    let method = if method == "HEAD" { "GET" } else { method };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut other_method = false;
    for r in ROUTES {
        if r.pattern.len() != segments.len() {
            continue;
        }
        let matches = r
            .pattern
            .iter()
            .zip(&segments)
            .all(|(p, s)| *p == "*" || p == s);
        if !matches {
            continue;
        }
        if r.method != method {
            other_method = true;
            continue;
        }
        let captured = r
            .pattern
            .iter()
            .zip(&segments)
            .filter(|(p, _)| **p == "*")
            .map(|(_, s)| *s)
            .collect();
        return Ok((r, captured));
    }
    Err(if other_method {
        Error::MethodNotAllowed
    } else {
        Error::RouteNotFound
    })
}

/// How many body bytes a request may carry; the HTTP edge asks before reading the body.
pub fn body_limit(config: &ServerConfig, method: &str, path: &str) -> u64 {
    let (_, path) = split_token(path);
    match find(method, path) {
        Ok((r, _)) if r.body == Document => config.max_document_bytes,
        _ => config.max_api_body_bytes,
    }
}

/// Dispatch one request. API errors are JSON; page errors are HTML pages.
pub fn route(w: &mut Worker, req: &Request) -> Response {
    let (_, path) = split_token(&req.path);
    let found = find(&req.method, path);
    let rate = match &found {
        Ok((r, _)) => r.rate,
        // Unknown API paths count like any other API request.
        Err(_) if path.starts_with("/api/") || path.starts_with("/blob/") => Counted,
        Err(_) => Unlimited,
    };
    if rate == Counted {
        let client = w.app.client_hash(req.client);
        if let Err(retry_after) = w.app.limiter.check(client, crate::model::now_millis()) {
            return Response::from_error(&Error::RateLimited { retry_after });
        }
    }
    let result = match found {
        Ok((r, captured)) => match r.handler {
            Handler::Page(h) => return h(w, req, &captured),
            Handler::Api(h) => h(w, req, &captured),
        },
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|err| {
        w.log_error(req, &err);
        Response::from_error(&err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_table_gives_limits_and_methods() {
        let c = crate::http::test_config(std::path::Path::new("/nonexistent"));
        let doc = c.max_document_bytes;
        let api = c.max_api_body_bytes;
        assert_eq!(body_limit(&c, "PUT", "/blob/sessions/abcdefgh.json"), doc);
        assert_eq!(body_limit(&c, "POST", "/api/share/abcdefgh/sync"), doc);
        assert_eq!(
            body_limit(&c, "POST", "/t/tok/api/share/abcdefgh/sync"),
            doc
        );
        assert_eq!(body_limit(&c, "POST", "/api/share/presign"), api);
        assert_eq!(body_limit(&c, "POST", "/blob/sessions/abcdefgh.json"), api);
        assert!(matches!(
            find("PUT", "/api/share/x"),
            Err(Error::MethodNotAllowed)
        ));
        assert!(matches!(find("GET", "/nothing"), Err(Error::RouteNotFound)));
        assert!(find("HEAD", "/share/abcdefgh").is_ok());
    }

    #[test]
    fn token_prefix_is_split_and_masked() {
        assert_eq!(
            split_token("/t/s3cret/api/share"),
            (Some("s3cret"), "/api/share")
        );
        assert_eq!(
            split_token("/t/s3cret/share/abcdefgh"),
            (None, "/t/s3cret/share/abcdefgh")
        );
        assert_eq!(split_token("/api/share"), (None, "/api/share"));
        assert_eq!(log_path("/t/s3cret/api/share"), "/t/…/api/share");
        assert_eq!(log_path("/t/s3cret"), "/t/…");
        assert_eq!(log_path("/share/abcdefgh"), "/share/abcdefgh");
    }
}
