//! The client of the share API (DESIGN.md §2), used by `bshare share | sync | unshare` and the TUI.
//!
//! Every failure becomes a [`ClientError`] whose message is a sentence telling the user what to do:
//! the server's own `{"error", "code"}` answer is kept, and the advice depends on the status.

use std::io::{self, Read};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};

use crate::model::{ShareData, is_valid_share_id};

/// Environment variable naming the server (the original plugin's name).
pub const SERVER_ENV: &str = "BETTER_SHARE_BASE_URL";
/// The server used when none is named.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An API call is small JSON; anything slower than this is a server in trouble.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Uploads may be large: bound each write, not the whole transfer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest document `document()` reads.
const MAX_DOCUMENT: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0:?} is not a server address; give one like https://share.example.com")]
    BadServer(String),
    #[error("{0:?} is not a valid share id (8 to 64 of A-Z a-z 0-9 _ -); check the registry entry")]
    BadShareId(String),
    #[error(
        "could not reach the bshare server at {server} ({detail}); is `bshare serve` running there? Set {SERVER_ENV} or --server to the right address"
    )]
    Unreachable { server: String, detail: String },
    #[error("the bshare server at {server} did not answer in time ({detail}); try again later")]
    Timeout { server: String, detail: String },
    #[error(
        "the server refused the share secret for {share_id} ({message}); the secret in your registry is wrong or missing, so only `bshare unshare --local-only {share_id}` (forget it here) is left"
    )]
    BadSecret { share_id: String, message: String },
    #[error(
        "the server at {server} refused to create the share: {message}. Set BSHARE_TOKEN or pass --token with a create token from the server's operator"
    )]
    Token { server: String, message: String },
    #[error(
        "share {share_id} no longer exists on {server} ({message}); remove it from your list with `bshare unshare --local-only {share_id}`"
    )]
    Gone {
        share_id: String,
        server: String,
        message: String,
    },
    #[error("{message}; the share id is taken, pick another one")]
    Exists { message: String },
    #[error("{}", too_large(message, *size))]
    TooLarge { message: String, size: u64 },
    #[error("{}", rate_limited(message, *retry_after))]
    RateLimited {
        message: String,
        retry_after: Option<u64>,
    },
    #[error(
        "the server at {server} failed ({status}: {message}); try again later or check its log"
    )]
    Server {
        server: String,
        status: u16,
        message: String,
    },
    #[error("the server at {server} rejected the request ({status}: {message})")]
    Rejected {
        server: String,
        status: u16,
        message: String,
    },
    #[error(
        "the upload to the storage bucket failed ({status}: {message}); try again, and if it persists check the server's S3 settings"
    )]
    Upload { status: u16, message: String },
    #[error(
        "the server at {server} sent an answer bshare does not understand ({detail}); is it a bshare server?"
    )]
    BadAnswer { server: String, detail: String },
}

/// The answer to creating a share.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    pub share_id: String,
    pub url: String,
    pub presigned_url: String,
    pub secret: String,
    /// When the share expires (epoch ms); absent from servers without expiry.
    #[serde(default)]
    pub share_expires_at: Option<i64>,
}

/// A fresh upload URL for an existing share.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Presigned {
    pub presigned_url: String,
}

/// One bshare server.
#[derive(Debug, Clone)]
pub struct Client {
    server: String,
    agent: Agent,
    /// Sent as `Authorization: Bearer` when creating a share.
    token: Option<String>,
    /// `expiresIn` of new shares, in seconds.
    expires_in: Option<u64>,
}

impl Client {
    /// A client of the server at `server` (`http(s)://host[:port][/prefix]`).
    pub fn new(server: &str) -> Result<Self, ClientError> {
        let server = normalize_server(server)?;
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(RootCerts::PlatformVerifier)
            .build();
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_recv_response(Some(CALL_TIMEOUT))
            .timeout_recv_body(Some(CALL_TIMEOUT))
            .timeout_per_write(Some(WRITE_TIMEOUT))
            .user_agent(concat!("bshare/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .new_agent();
        Ok(Self {
            server,
            agent,
            token: None,
            expires_in: None,
        })
    }

    /// Present `token` when creating shares (a server started with `--create-token` needs it).
    #[must_use]
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Ask for new shares to expire after `seconds`.
    #[must_use]
    pub fn with_expiry(mut self, seconds: Option<u64>) -> Self {
        self.expires_in = seconds;
        self
    }

    /// The server's address without a trailing slash.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `POST /api/share/presign`: create a share and get its first upload URL.
    pub fn create(
        &self,
        session_id: &str,
        share_id: Option<&str>,
        size: u64,
    ) -> Result<Created, ClientError> {
        let mut body = json!({ "sessionId": session_id, "size": size });
        if let Some(id) = share_id {
            check_id(id)?;
            body["shareId"] = id.into();
        }
        if let Some(seconds) = self.expires_in {
            body["expiresIn"] = seconds.into();
        }
        let url = format!("{}/api/share/presign", self.server);
        let mut request = self.agent.post(&url);
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let response = request.send_json(&body);
        let mut response = self.check(response, share_id.unwrap_or(""), size)?;
        let created: Created = self.json(&mut response)?;
        // The id goes into the registry and later into URL paths.
        check_id(&created.share_id)?;
        Ok(created)
    }

    /// `POST /api/share/:id/presign`: a fresh upload URL to re-sync a share.
    pub fn presign(
        &self,
        share_id: &str,
        secret: &str,
        size: u64,
    ) -> Result<Presigned, ClientError> {
        check_id(share_id)?;
        let url = format!("{}/api/share/{share_id}/presign", self.server);
        let response = self
            .agent
            .post(&url)
            .header("X-Share-Secret", secret)
            .send_json(json!({ "size": size }));
        let mut response = self.check(response, share_id, size)?;
        self.json(&mut response)
    }

    /// `PUT` the document to a presigned URL, declaring exactly the size that was presigned.
    /// `progress(sent, total)` is called as the bytes go out.
    pub fn upload(
        &self,
        presigned_url: &str,
        body: &[u8],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), ClientError> {
        let total = body.len() as u64;
        let mut reader = Progress {
            inner: body,
            sent: 0,
            total,
            report: progress,
        };
        let response = self
            .agent
            .put(presigned_url)
            .header("Content-Type", "application/json")
            .header("Content-Length", total.to_string())
            .send(ureq::SendBody::from_reader(&mut reader));
        let mut response = response.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        // A presigned URL of our own server answers in our JSON; a bucket answers in XML.
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        if serde_json::from_str::<Value>(&text).is_ok_and(|v| v.get("error").is_some()) {
            return Err(self.status_error(status, &text, "", total, None));
        }
        Err(ClientError::Upload {
            status,
            message: summarize(&text),
        })
    }

    /// `DELETE /api/share/:id`. The secret goes in the header and, for OpenCode's own protocol,
    /// in the body too.
    pub fn delete(&self, share_id: &str, secret: &str) -> Result<(), ClientError> {
        check_id(share_id)?;
        let url = format!("{}/api/share/{share_id}", self.server);
        let response = self
            .agent
            .delete(&url)
            .header("X-Share-Secret", secret)
            .force_send_body()
            .send_json(json!({ "secret": secret }));
        self.check(response, share_id, 0).map(drop)
    }

    /// `GET /api/share/:id`: the stored document.
    pub fn document(&self, share_id: &str) -> Result<ShareData, ClientError> {
        check_id(share_id)?;
        let url = format!("{}/api/share/{share_id}", self.server);
        let response = self.agent.get(&url).call();
        let mut response = self.check(response, share_id, 0)?;
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_DOCUMENT)
            .read_to_vec()
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer {
            server: self.server.clone(),
            detail: e.to_string(),
        })
    }

    fn check(
        &self,
        response: Result<Response<ureq::Body>, ureq::Error>,
        share_id: &str,
        size: u64,
    ) -> Result<Response<ureq::Body>, ClientError> {
        let mut response = response.map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Err(self.status_error(status, &text, share_id, size, retry_after))
    }

    fn status_error(
        &self,
        status: u16,
        body: &str,
        share_id: &str,
        size: u64,
        retry_after: Option<u64>,
    ) -> ClientError {
        let parsed: Option<Value> = serde_json::from_str(body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v["error"].as_str())
            .map_or_else(|| summarize(body), str::to_owned);
        let message = if message.is_empty() {
            format!("HTTP {status}")
        } else {
            message
        };
        let code = parsed
            .as_ref()
            .and_then(|v| v["code"].as_str())
            .unwrap_or_default();
        let server = self.server.clone();
        let share_id = share_id.to_owned();
        match (status, code) {
            // The signed upload URL itself was refused (expired, or the body is not what was
            // declared): nothing to do with the share's secret.
            (_, "UPLOAD_REFUSED") => ClientError::Upload { status, message },
            // The server only lets holders of a create token make shares.
            (401 | 403, "TOKEN_REQUIRED" | "TOKEN_MISMATCH") => {
                ClientError::Token { server, message }
            }
            (404, "NOT_FOUND") => ClientError::Rejected {
                server,
                status,
                message: format!("{message}; is this a bshare server, and is it up to date?"),
            },
            (404, "NOT_UPLOADED") => ClientError::Rejected {
                server,
                status,
                message: format!("{message}; `bshare sync {share_id}` uploads it"),
            },
            _ => Self::by_status(status, message, server, share_id, size, retry_after),
        }
    }

    fn by_status(
        status: u16,
        message: String,
        server: String,
        share_id: String,
        size: u64,
        retry_after: Option<u64>,
    ) -> ClientError {
        match status {
            401 | 403 => ClientError::BadSecret { share_id, message },
            404 | 410 => ClientError::Gone {
                share_id,
                server,
                message,
            },
            409 => ClientError::Exists { message },
            413 => ClientError::TooLarge { message, size },
            429 => ClientError::RateLimited {
                message,
                retry_after,
            },
            500..=599 => ClientError::Server {
                server,
                status,
                message,
            },
            _ => ClientError::Rejected {
                server,
                status,
                message,
            },
        }
    }

    fn transport_error(&self, e: &ureq::Error) -> ClientError {
        let server = self.server.clone();
        match e {
            ureq::Error::Timeout(t) => ClientError::Timeout {
                server,
                detail: t.to_string(),
            },
            ureq::Error::Json(j) => ClientError::BadAnswer {
                server,
                detail: j.to_string(),
            },
            other => ClientError::Unreachable {
                server,
                detail: other.to_string(),
            },
        }
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: &mut Response<ureq::Body>,
    ) -> Result<T, ClientError> {
        response
            .body_mut()
            .read_json()
            .map_err(|e| ClientError::BadAnswer {
                server: self.server.clone(),
                detail: e.to_string(),
            })
    }
}

impl ClientError {
    /// The server no longer has the share (404/410).
    pub fn is_gone(&self) -> bool {
        matches!(self, Self::Gone { .. })
    }

    /// The share id was taken (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Exists { .. })
    }
}

/// Ids come from the registry, which other programs write too; only valid ones enter a URL path.
fn check_id(share_id: &str) -> Result<(), ClientError> {
    if is_valid_share_id(share_id) {
        Ok(())
    } else {
        Err(ClientError::BadShareId(share_id.to_owned()))
    }
}

fn too_large(message: &str, size: u64) -> String {
    // bshare's own answer names both sizes; another server's may not.
    let sizes = if message.contains(&size.to_string()) {
        String::new()
    } else {
        format!(" (this session is {size} bytes)")
    };
    format!(
        "the session is too large for this server: {message}{sizes}. Ask the server's operator to raise the limit (`bshare serve --max-document-bytes`), or share a shorter session"
    )
}

fn rate_limited(message: &str, retry_after: Option<u64>) -> String {
    let when = match retry_after {
        _ if message.contains("try again") => String::new(),
        Some(secs) => format!("; try again in {secs} seconds"),
        None => "; try again in a minute".to_owned(),
    };
    format!("the server is rate-limiting this address: {message}{when}")
}

/// `http(s)://host[:port][/prefix]` without a trailing slash.
pub fn normalize_server(server: &str) -> Result<String, ClientError> {
    let trimmed = server.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !host.contains(['?', '#']) => {
            Ok(trimmed.to_owned())
        }
        _ => Err(ClientError::BadServer(server.to_owned())),
    }
}

/// `scheme://host[:port]` of a URL, for finding the server a share link belongs to.
pub fn origin(url: &str) -> Option<&str> {
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    Some(&url[..end])
}

/// The first line of a non-JSON error body, short enough for a sentence.
fn summarize(body: &str) -> String {
    let line = body.trim().lines().next().unwrap_or_default();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Counts the bytes ureq reads from the body.
struct Progress<'a, 'b> {
    inner: &'a [u8],
    sent: u64,
    total: u64,
    report: &'b mut dyn FnMut(u64, u64),
}

impl Read for Progress<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        (self.report)(self.sent, self.total);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-shot HTTP server: answers the first request with `response` and hands back what
    /// it received (head and body).
    fn serve_once(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            (&stream).write_all(response.as_bytes()).unwrap();
            head + &String::from_utf8_lossy(&body)
        });
        (addr, handle)
    }

    fn error_of(response: &'static str) -> String {
        let (addr, handle) = serve_once(response);
        let err = Client::new(&addr)
            .unwrap()
            .presign("abcd1234", "secret", 10)
            .unwrap_err();
        handle.join().unwrap();
        err.to_string()
    }

    fn answer(status: &str, extra: &str, body: &str) -> &'static str {
        format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .leak()
    }

    #[test]
    fn upload_declares_type_and_exact_length_and_reports_progress() {
        let (addr, handle) = serve_once(answer("200 OK", "", ""));
        let body = vec![b'x'; 100_000];
        let mut last = (0, 0);
        Client::new(&addr)
            .unwrap()
            .upload(&format!("{addr}/blob/x?sig=1"), &body, &mut |s, t| {
                last = (s, t);
            })
            .unwrap();
        let request = handle.join().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("put /blob/x?sig=1 "), "{request}");
        assert!(request.contains("content-type: application/json\r\n"));
        assert!(request.contains("content-length: 100000\r\n"));
        assert!(!request.contains("transfer-encoding"));
        assert_eq!(last, (100_000, 100_000));
    }

    #[test]
    fn create_sends_session_id_share_id_and_size() {
        let (addr, handle) = serve_once(answer(
            "201 Created",
            "",
            r#"{"shareId":"abcdefgh","url":"http://s/share/abcdefgh","presignedUrl":"http://s/blob","secret":"sek","expiresAt":1}"#,
        ));
        let created = Client::new(&addr)
            .unwrap()
            .create("ses_1", Some("abcdefgh"), 42)
            .unwrap();
        assert_eq!(created.secret, "sek");
        let request = handle.join().unwrap();
        let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"sessionId": "ses_1", "shareId": "abcdefgh", "size": 42})
        );
    }

    #[test]
    fn server_errors_become_advice() {
        let e = error_of(answer(
            "403 Forbidden",
            "",
            r#"{"error":"wrong secret","code":"FORBIDDEN"}"#,
        ));
        assert!(
            e.contains("wrong secret") && e.contains("secret in your registry"),
            "{e}"
        );
        let e = error_of(answer(
            "404 Not Found",
            "",
            r#"{"error":"no such share","code":"SHARE_NOT_FOUND"}"#,
        ));
        assert!(e.contains("bshare unshare --local-only abcd1234"), "{e}");
        // A 404 of the route itself is not a lost share.
        let e = error_of(answer(
            "404 Not Found",
            "",
            r#"{"error":"no such endpoint","code":"NOT_FOUND"}"#,
        ));
        assert!(e.contains("is this a bshare server"), "{e}");
        let e = error_of(answer(
            "410 Gone",
            "",
            r#"{"error":"deleted","code":"GONE"}"#,
        ));
        assert!(e.contains("no longer exists"), "{e}");
        let e = error_of(answer(
            "413 Payload Too Large",
            "",
            r#"{"error":"documents are limited to 50 MiB","code":"TOO_LARGE"}"#,
        ));
        assert!(
            e.contains("limited to 50 MiB") && e.contains("10 bytes"),
            "{e}"
        );
        let e = error_of(answer(
            "429 Too Many Requests",
            "retry-after: 42\r\n",
            r#"{"error":"slow down","code":"RATE_LIMITED"}"#,
        ));
        assert!(e.contains("slow down; try again in 42 seconds"), "{e}");
        let e = error_of(answer("500 Internal Server Error", "", "oops"));
        assert!(e.contains("500: oops"), "{e}");
    }

    #[test]
    fn unreachable_server_names_the_address_and_the_fix() {
        // Bind and drop: nothing listens on the port any more.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("http://127.0.0.1:{port}");
        let e = Client::new(&server)
            .unwrap()
            .delete("abcd1234", "s")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&server) && e.contains("bshare serve") && e.contains(SERVER_ENV),
            "{e}"
        );
    }

    #[test]
    fn share_ids_are_checked_before_they_enter_a_path() {
        let client = Client::new("http://127.0.0.1:9").unwrap();
        let e = client.delete("../../blob/x", "s").unwrap_err();
        assert!(matches!(e, ClientError::BadShareId(_)), "{e}");
        let e = client.document("a/b?c=d").unwrap_err();
        assert!(matches!(e, ClientError::BadShareId(_)), "{e}");
    }

    #[test]
    fn server_addresses_are_checked() {
        assert_eq!(
            normalize_server("https://s.example/").unwrap(),
            "https://s.example"
        );
        assert_eq!(
            normalize_server("http://h:8080/base").unwrap(),
            "http://h:8080/base"
        );
        assert!(normalize_server("s.example").is_err());
        assert!(normalize_server("ftp://s.example").is_err());
        assert!(normalize_server("http://").is_err());
        assert_eq!(
            origin("https://s.example:1/share/x"),
            Some("https://s.example:1")
        );
        assert_eq!(origin("http://h"), Some("http://h"));
        assert_eq!(origin("nope"), None);
    }
}
