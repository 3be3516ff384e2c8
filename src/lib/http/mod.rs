//! The HTTP side of `bshare serve`: the server's own request and response types, so handlers are
//! plain functions testable without a socket; the worker pool over tiny_http lives in `server`, the
//! per-request context in `context`, the route table in `routes`.

pub mod announce;
pub mod api;
pub mod auth;
pub mod cache;
pub mod client_addr;
pub mod context;
pub mod events;
pub mod journal;
pub mod protocol_api;
pub mod ratelimit;
pub mod renderer;
pub mod routes;
pub mod server;
pub mod views;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// One request, its body already read (within the route's size limit).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Percent-decoding is not needed: every path segment we accept is plain ASCII.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The address the client is counted under (`client_addr`: the peer or what a trusted proxy
    /// reports, canonical, IPv6 as its /64).
    pub client: IpAddr,
}

impl Request {
    /// A test request from 127.0.0.1 with no headers and no body.
    pub fn new(method: &str, target: &str) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            client: IpAddr::from([127, 0, 0, 1]),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON of type `T`; an empty body reads as `{}`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let body: &[u8] = match self.body.iter().find(|b| !b.is_ascii_whitespace()) {
            None => b"{}",
            Some(b'{') => &self.body,
            // serde reads a struct from an array too (`[1]` as `{size: 1}`): only objects are
            // request bodies.
            Some(_) => {
                return Err(Error::BadRequest(
                    "the request body must be a JSON object".to_owned(),
                ));
            }
        };
        serde_json::from_slice(body).map_err(|e| {
            Error::BadRequest(format!("the request body is not the expected JSON: {e}"))
        })
    }

    pub fn accepts_gzip(&self) -> bool {
        self.header("accept-encoding").is_some_and(|v| {
            v.split(',')
                .any(|c| c.split(';').next().is_some_and(|c| c.trim() == "gzip"))
        })
    }
}

/// A response body: owned, or shared with the page cache without copying.
#[derive(Debug, Clone)]
pub enum Body {
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// The first `len` bytes of a file (a large page cached on disk), read by the connection's
    /// own thread as the client takes it.
    File(Arc<std::fs::File>, u64),
    /// An event stream: after the head, the socket goes to the event hub (`events`), which
    /// writes the events; the worker is free at once.
    Events(events::EventStream),
}

impl Body {
    /// The bytes of a body in memory; empty for a file or an event stream.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Owned(v) => v,
            Body::Shared(a) => a,
            Body::File(..) | Body::Events(_) => &[],
        }
    }

    /// The length the `Content-Length` header gives.
    pub fn len(&self) -> usize {
        match self {
            Body::File(_, len) => *len as usize,
            other => other.as_bytes().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body: Body::Owned(body.into()),
        }
    }

    pub fn json<T: Serialize>(status: u16, value: &T) -> Self {
        // Serializing our own response types cannot fail; an empty object is a safe fallback.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        Self::new(status, "application/json", body)
    }

    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON error body `{"error": "...", "code": "..."}` with the right status.
    pub fn from_error(err: &Error) -> Self {
        #[derive(Serialize)]
        struct ErrorBody<'a> {
            error: String,
            code: &'a str,
        }
        let mut response = Self::json(
            err.status(),
            &ErrorBody {
                error: err.public_message(),
                code: err.code(),
            },
        );
        if let Error::RateLimited { retry_after } | Error::Busy { retry_after } = err {
            response = response.with_header("Retry-After", retry_after.to_string());
        }
        response.with_header("Cache-Control", "no-store")
    }
}

/// A configuration for tests: SQLite and local objects in `dir`.
#[cfg(test)]
pub(crate) fn test_config(dir: &std::path::Path) -> crate::config::ServerConfig {
    let mut config = crate::config::ServerConfig::embedded(dir);
    config.workers = 1;
    config.base_url = Some("http://share.test".into());
    config.page_cache_bytes = 1 << 20;
    config.sweep_interval = std::time::Duration::from_secs(3600);
    config
}
