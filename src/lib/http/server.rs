//! `bshare serve`: opening the stores, binding, and the worker pool over tiny_http.
//!
//! N workers share one `tiny_http::Server`; each owns its own metadata connection (reconnected
//! after a failure, so the server recovers by itself when the database comes back). A panic in a
//! handler becomes a 500 for that request; the worker lives on.

use std::io::Read;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use super::cache::PageCache;
use super::ratelimit::RequestLimiter;
use super::{Request, Response, routes};
use crate::blob::{self, BlobStore};
use crate::config::{ObjectConfig, ServerConfig};
use crate::error::{Cause, Error, Result};
use crate::store::{self, Change, Connector, MetaStore};

/// Everything the workers share.
pub struct App {
    pub config: ServerConfig,
    pub connector: Arc<dyn Connector>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: PageCache,
    pub limiter: RequestLimiter,
    pub renderer: super::renderer::Renderer,
    /// Key of the client-address hashes (shared by all instances through the database).
    pub address_key: Vec<u8>,
    pub health: super::api::HealthCache,
}

impl App {
    /// Open the stores for `config` (whose `base_url` must be final). Fails with a sentence that
    /// says what is wrong.
    pub fn open(config: ServerConfig) -> Result<Arc<Self>> {
        let connector = store::open(&config.database)?;
        let mut conn = connector.connect()?;
        let address_key = conn.server_key("client-address")?;
        let signing_key = match &config.objects {
            ObjectConfig::Local { .. } => conn.server_key("local-upload-signing")?,
            ObjectConfig::S3(_) => Vec::new(),
        };
        let blobs = blob::open(&config.objects, config.base_url(), signing_key)?;
        let app = Arc::new(Self {
            cache: PageCache::new(config.page_cache_bytes),
            limiter: RequestLimiter::new(config.request_limit_per_minute),
            renderer: super::renderer::Renderer::start()?,
            config,
            connector,
            blobs,
            address_key,
            health: super::api::HealthCache::default(),
        });
        let weak = Arc::downgrade(&app);
        app.connector.listen(Arc::new(move |change| {
            if let Some(app) = weak.upgrade() {
                match change {
                    Change::Share(id) => app.cache.invalidate(&id),
                    Change::All => app.cache.clear(),
                }
            }
        }));
        Ok(app)
    }

    /// The keyed hash that stands for a client address wherever one is counted.
    pub fn client_hash(&self, client: IpAddr) -> [u8; 16] {
        let full = crate::crypto::hmac_sha256(&self.address_key, client.to_string().as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    pub fn worker(self: &Arc<Self>) -> Worker {
        Worker {
            app: Arc::clone(self),
            store: None,
            next_prune: 0,
        }
    }
}

/// One worker's state: its own database connection.
pub struct Worker {
    pub app: Arc<App>,
    store: Option<Box<dyn MetaStore>>,
    next_prune: i64,
}

impl Worker {
    /// This worker's connection, made on first use and after a failure.
    pub fn store(&mut self) -> Result<&mut dyn MetaStore> {
        if self.store.is_none() {
            self.store = Some(self.app.connector.connect()?);
        }
        match self.store.as_deref_mut() {
            Some(store) => Ok(store),
            None => Err(Error::internal("no database connection")),
        }
    }

    /// Handle one request, turning panics into a 500.
    pub fn handle(&mut self, req: &Request) -> Response {
        let result = catch_unwind(AssertUnwindSafe(|| routes::route(self, req)));
        let response = match result {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                eprintln!(
                    "bshare: handler panicked on {} {}: {what}",
                    req.method, req.path
                );
                // The connection may be mid-transaction: start afresh.
                self.store = None;
                Response::from_error(&Error::internal("handler panicked"))
            }
        };
        self.after_request(&response);
        response
    }

    fn after_request(&mut self, response: &Response) {
        if response.status == 503 {
            // A failed connection is dropped; the next request makes a new one.
            self.store = None;
        }
        let now = crate::model::now_millis();
        if now >= self.next_prune {
            self.next_prune = now + 10 * 60 * 1000;
            if let Ok(store) = self.store() {
                let _ = store.prune(now);
            }
        }
    }

    /// Log a failure the client sees only as a sentence.
    pub fn log_error(&self, req: &Request, err: &Error) {
        if err.status() >= 500 {
            eprintln!("bshare: {} {}: {}", req.method, req.path, err.chain());
        }
    }
}

/// A bound, running server.
pub struct Running {
    pub server: Arc<tiny_http::Server>,
    pub app: Arc<App>,
    pub addr: std::net::SocketAddr,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn join(self) {
        for w in self.workers {
            let _ = w.join();
        }
    }

    pub fn shutdown(self) {
        self.server.unblock();
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        self.join();
    }
}

/// Bind, open the stores and start the workers. `config.base_url` of `None` becomes
/// `http://<bound address>`.
pub fn start(mut config: ServerConfig) -> Result<Running> {
    let server = bind(&config.bind).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {}: {e}; is another server running there? choose another with --bind",
            config.bind
        ))
    })?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| Error::Config("the server is not bound to an IP address".into()))?;
    if config.base_url.is_none() {
        config.base_url = Some(format!("http://{addr}"));
    }
    let app = App::open(config)?;
    let server = Arc::new(server);
    let workers = (0..app.config.workers.max(1))
        .map(|i| {
            let server = Arc::clone(&server);
            let app = Arc::clone(&app);
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || serve_forever(&server, &app))
                .map_err(|e| Error::Config(format!("cannot start a worker thread: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Running {
        server,
        app,
        addr,
        workers,
    })
}

/// How long a connection may stay silent while the server waits to read or write.
const SOCKET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Bind with `TCP_NODELAY` on the listener, which accepted sockets inherit: tiny_http writes the
/// head and the body of a response separately, and with Nagle's algorithm the body of every
/// response after the first on a keep-alive connection would wait ~40 ms for the client's
/// delayed ACK.
fn bind(addr: &str) -> std::result::Result<tiny_http::Server, Cause> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or("the address resolves to nothing")?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    // Accepted sockets inherit these: a client that stops sending (a request body that never
    // comes) or stops reading holds a thread for at most this long.
    socket.set_read_timeout(Some(SOCKET_TIMEOUT))?;
    socket.set_write_timeout(Some(SOCKET_TIMEOUT))?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let listener: std::net::TcpListener = socket.into();
    tiny_http::Server::from_listener(listener, None)
}

fn serve_forever(server: &tiny_http::Server, app: &Arc<App>) {
    let mut worker = app.worker();
    loop {
        let Ok(mut request) = server.recv() else {
            return;
        };
        let started = Instant::now();
        let method = request.method().as_str().to_owned();
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_owned(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect();
        let peer = request
            .remote_addr()
            .map_or(IpAddr::from([127, 0, 0, 1]), std::net::SocketAddr::ip);
        let client =
            super::client_addr::client_address(&app.config.trusted_proxies, peer, &headers);
        let limit = routes::body_limit(&app.config, &method, path);
        let mut req = Request {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body: Vec::new(),
            client,
        };
        let head = req.method == "HEAD";
        let status = match read_body(&mut request, limit) {
            Ok(body) => {
                req.body = body;
                let response = worker.handle(&req);
                let status = response.status;
                let _ = send(request, response, head);
                status
            }
            Err(err) => {
                let status = err.status();
                let _ = send_unread(request, &Response::from_error(&err));
                status
            }
        };
        // The access log: never the query string (it carries signatures). Formatted first and
        // written once: stderr is unbuffered, and each formatted piece would be a system call.
        let line = format!(
            "{} {} {} {:.1}ms\n",
            req.method,
            req.path,
            status,
            started.elapsed().as_secs_f64() * 1000.0
        );
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
    }
}

/// Read the body up to `limit` bytes; larger bodies are refused, when declared without reading.
fn read_body(request: &mut tiny_http::Request, limit: u64) -> Result<Vec<u8>> {
    let too_large = |size| Error::TooLarge {
        what: "the request body",
        size,
        limit,
    };
    if let Some(declared) = request.body_length().filter(|&d| d as u64 > limit) {
        return Err(too_large(declared as u64));
    }
    let mut body = Vec::with_capacity(request.body_length().unwrap_or(0));
    request
        .as_reader()
        .take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::BadRequest(format!("could not read the request body: {e}")))?;
    if body.len() as u64 > limit {
        return Err(too_large(body.len() as u64));
    }
    Ok(body)
}

/// Write the response on the connection. tiny_http's own `respond` copies the body through an
/// 8 KiB buffer (a system call per 8 KiB) and chunks bodies over 32 KiB; an uncompressed share
/// page is ~70 KB, so the head and the body are written here in one write, or two for large
/// bodies. tiny_http
/// still owns the connection: keep-alive and the next request work as with `respond`.
fn send(request: tiny_http::Request, response: Response, head_only: bool) -> std::io::Result<()> {
    use std::fmt::Write as _;
    use std::io::Write as _;
    let body = response.body.as_bytes();
    let mut head = String::with_capacity(256);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        // Header values are ours, never the client's; a line break would still split the head.
        if !value.contains(['\r', '\n']) {
            let _ = write!(head, "{name}: {value}\r\n");
        }
    }
    if !matches!(response.status, 100..=199 | 204 | 304) {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    let _ = write!(head, "Date: {}\r\n\r\n", http_date_now());
    let send_body = !head_only && !matches!(response.status, 100..=199 | 204 | 304);
    let mut writer = request.into_writer();
    let result = (|| {
        if send_body && body.len() <= SINGLE_WRITE_LIMIT {
            // One system call: copying a small body is cheaper than a second write.
            let mut all = head.into_bytes();
            all.extend_from_slice(body);
            writer.write_all(&all)?;
        } else {
            writer.write_all(head.as_bytes())?;
            if send_body {
                writer.write_all(body)?;
            }
        }
        writer.flush()
    })();
    match result {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Answer a request whose body was refused unread. tiny_http skips the rest of a body when the
/// request is dropped; `respond` drops it after the answer is out, so the client learns at once
/// (and, told `Connection: close`, can stop sending). The skipping is bounded by the socket's
/// read timeout.
fn send_unread(request: tiny_http::Request, response: &Response) -> std::io::Result<()> {
    let mut answer = tiny_http::Response::from_data(response.body.as_bytes().to_vec())
        .with_status_code(response.status);
    for (name, value) in &response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            answer.add_header(header);
        }
    }
    if let Ok(header) = tiny_http::Header::from_bytes(&b"Connection"[..], &b"close"[..]) {
        answer.add_header(header);
    }
    request.respond(answer)
}

/// Bodies up to this size go out in the same write as the head.
const SINGLE_WRITE_LIMIT: usize = 32 * 1024;

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The current time as an HTTP date (`Tue, 24 Nov 2026 01:30:29 GMT`), formatted once a second
/// per worker.
fn http_date_now() -> String {
    thread_local! {
        static CACHED: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != now {
            *cached = (now, http_date(now));
        }
        cached.1.clone()
    })
}

fn http_date(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = crate::calendar::civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(1_795_483_829), "Tue, 24 Nov 2026 01:30:29 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    }
}
