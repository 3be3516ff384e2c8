//! `bshare serve`: opening the stores, binding, and the worker pool over tiny_http.
//!
//! At most N requests are handled at once (`--workers`), each with one of N workers' states
//! ([`Pool`]), each its own metadata connection (reconnected after a failure, so the server
//! recovers by itself when the database comes back). A request's connection thread handles it
//! when a state is free; otherwise it is queued for the N worker threads. A panic in a handler
//! becomes a 500 for that request; the state lives on.

use std::io::Read;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use super::context::App;
use super::{Body, Request, Response, routes};
use crate::config::ServerConfig;
use crate::error::{Cause, Error, Result};

/// A bound, running server.
pub struct Running {
    pub server: Arc<tiny_http::Server>,
    pub app: Arc<App>,
    pub addr: std::net::SocketAddr,
}

impl Running {
    /// Stop accepting (the port closes at once) and give requests under way up to `timeout` to
    /// finish. Returns how many were still under way when it gave up.
    pub fn drain(&self, timeout: std::time::Duration) -> usize {
        self.server.stop_accepting();
        let deadline = Instant::now() + timeout;
        loop {
            let left = self.server.requests_in_flight();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Block until accepting has failed for good; the reason.
    pub fn wait_accept_failure(&self) -> String {
        loop {
            if let Some(reason) = self
                .server
                .wait_accept_failure(std::time::Duration::from_secs(3600))
            {
                return reason;
            }
        }
    }
}

/// Bind, open the stores and start the workers. `config.base_url` of `None` becomes
/// `http://<bound address>`.
pub fn start(mut config: ServerConfig) -> Result<Running> {
    let listener = bind(&config.bind).map_err(|e| {
        Error::Config(format!(
            "cannot listen on {}: {e}; is another server running there? choose another with --bind",
            config.bind
        ))
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Config(format!("the listening socket has no address: {e}")))?;
    if config.base_url.is_none() {
        config.base_url = Some(format!("http://{addr}"));
    }
    let app = App::open(config)?;
    let pool = Arc::new(Pool::new(&app));
    let server = tiny_http::Server::from_listener(listener, edge_limits(&app, &pool))
        .map_err(|e| Error::Config(format!("cannot start accepting connections: {e}")))?;
    let server = Arc::new(server);
    // The worker threads live as long as the process: `drain` waits for what they (and the
    // connection threads) have under way.
    for i in 0..app.config.workers.max(1) {
        let server = Arc::clone(&server);
        let app = Arc::clone(&app);
        let pool = Arc::clone(&pool);
        std::thread::Builder::new()
            .name(format!("worker-{i}"))
            .spawn(move || serve_forever(&server, &app, &pool))
            .map_err(|e| Error::Config(format!("cannot start a worker thread: {e}")))?;
    }
    Ok(Running { server, app, addr })
}

/// The edge's bounds from the configuration; the body limit of each request comes from the
/// route table, so the connection thread can refuse a body before it arrives.
fn edge_limits(app: &Arc<App>, pool: &Arc<Pool>) -> tiny_http::Limits {
    let edge = &app.config.edge;
    let config = app.config.clone();
    tiny_http::Limits {
        max_connections: edge.max_connections,
        header_timeout: edge.header_timeout,
        idle_timeout: edge.idle_timeout,
        min_rate: edge.min_body_rate,
        body_limit: Arc::new(move |method, target| {
            let path = target.split_once('?').map_or(target, |(p, _)| p);
            routes::body_limit(&config, method, path)
        }),
        error_body: Arc::new(edge_error_body),
        log: Arc::new(|line| {
            let line = format!("bshare: {line}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }),
        fast: Some(Arc::new({
            let app = Arc::downgrade(app);
            move |request: &tiny_http::FastRequest<'_>| fast_answer(&*app.upgrade()?, request)
        })),
        // A request that finds a worker's state free is handled on its connection's thread: a
        // hand-off to a worker thread and back cost two context switches, which on a create
        // was as much as its database statement.
        inline: Some(Arc::new({
            let app = Arc::downgrade(app);
            let pool = Arc::downgrade(pool);
            move |request: tiny_http::Request| {
                let (Some(app), Some(pool)) = (app.upgrade(), pool.upgrade()) else {
                    return Some(request);
                };
                let Some(mut lease) = pool.try_lease() else {
                    return Some(request);
                };
                serve_one(&app, &mut lease, request);
                None
            }
        })),
        // Handlers run on connection threads too: the stack a worker thread has.
        thread_stack_bytes: 2 * 1024 * 1024,
        ..tiny_http::Limits::default()
    }
}

/// The JSON error of a response the edge sends by itself.
fn edge_error_body(status: u16) -> (&'static str, Vec<u8>) {
    let (error, code) = match status {
        400 => ("the request is not well-formed HTTP/1.1", "BAD_REQUEST"),
        408 => (
            "the request did not arrive in time; send it at once and at a steady pace",
            "REQUEST_TIMEOUT",
        ),
        413 => (
            "the request body is larger than this route accepts",
            "TOO_LARGE",
        ),
        414 => ("the request line is longer than 8 KiB", "URI_TOO_LONG"),
        417 => (
            "only `Expect: 100-continue` is understood",
            "EXPECTATION_FAILED",
        ),
        431 => (
            "the request head is too large: at most 100 headers of 8 KiB each, 64 KiB in all",
            "HEADERS_TOO_LARGE",
        ),
        503 => (
            "the server is busy or shutting down; try again in a moment",
            "UNAVAILABLE",
        ),
        _ => ("the request cannot be served", "BAD_REQUEST"),
    };
    let body = serde_json::json!({ "error": error, "code": code });
    ("application/json", body.to_string().into_bytes())
}

/// Bind with `TCP_NODELAY` on the listener, which accepted sockets inherit: tiny_http writes the
/// head and the body of a response separately, and with Nagle's algorithm the body of every
/// response after the first on a keep-alive connection would wait ~40 ms for the client's
/// delayed ACK. No timeouts here: they go on each accepted socket, per read and per write.
fn bind(addr: &str) -> std::result::Result<std::net::TcpListener, Cause> {
    use socket2::{Domain, Socket, Type};
    let addr: std::net::SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or("the address resolves to nothing")?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// A view the cache has fresh, answered on the connection's own thread (`views::cached_view`):
/// no queue, no worker, no database. Everything else goes to the workers.
fn fast_answer(app: &App, request: &tiny_http::FastRequest<'_>) -> Option<tiny_http::FastAnswer> {
    let method = request.method.as_str();
    if !matches!(method, "GET" | "HEAD") {
        return None;
    }
    let segment = request.target.strip_prefix("/share/")?;
    if segment.contains(['/', '?']) {
        return None;
    }
    let started = Instant::now();
    let req = Request {
        method: method.to_owned(),
        path: request.target.to_owned(),
        query: String::new(),
        headers: request
            .headers
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_owned(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
        client: request
            .peer
            .map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip()),
    };
    let response = super::views::cached_view(app, &req, segment)?;
    let status = response.status;
    let (head, tail) = wire(response, method == "HEAD");
    access_log(&req, status, started);
    Some(tiny_http::FastAnswer {
        head,
        tail,
        close: false,
    })
}

/// The workers' states (each with its own database connection), taken by whichever thread
/// handles a request: a worker thread, or a connection's thread that finds one free. At most
/// `--workers` requests are handled at once either way. A worker thread waiting for a state is
/// served first: a connection's thread takes one only when none waits, so a queued request is
/// never overtaken for long.
pub struct Pool {
    free: std::sync::Mutex<(Vec<super::context::Worker>, usize)>,
    freed: std::sync::Condvar,
}

impl Pool {
    fn new(app: &Arc<App>) -> Self {
        let workers = (0..app.config.workers.max(1))
            .map(|_| app.worker())
            .collect();
        Self {
            free: std::sync::Mutex::new((workers, 0)),
            freed: std::sync::Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<super::context::Worker>, usize)> {
        self.free
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A free state, if one is free and no worker thread waits for one.
    fn try_lease(&self) -> Option<Lease<'_>> {
        let mut free = self.lock();
        if free.1 > 0 {
            return None;
        }
        let worker = free.0.pop()?;
        Some(Lease {
            pool: self,
            worker: Some(worker),
        })
    }

    /// A state, waiting for one to be given back.
    fn lease(&self) -> Lease<'_> {
        let mut free = self.lock();
        free.1 += 1;
        let worker = loop {
            if let Some(worker) = free.0.pop() {
                break worker;
            }
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        };
        free.1 -= 1;
        Lease {
            pool: self,
            worker: Some(worker),
        }
    }
}

/// A worker's state, given back to the pool when dropped (a panic included).
struct Lease<'a> {
    pool: &'a Pool,
    worker: Option<super::context::Worker>,
}

impl std::ops::Deref for Lease<'_> {
    type Target = super::context::Worker;
    fn deref(&self) -> &Self::Target {
        self.worker
            .as_ref()
            .expect("a lease holds its worker until dropped")
    }
}

impl std::ops::DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.worker
            .as_mut()
            .expect("a lease holds its worker until dropped")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            let mut free = self.pool.lock();
            free.0.push(worker);
            // A wake is a system call: only when a worker thread waits.
            if free.1 > 0 {
                drop(free);
                self.pool.freed.notify_one();
            }
        }
    }
}

fn serve_forever(server: &tiny_http::Server, app: &Arc<App>, pool: &Pool) {
    loop {
        let Ok(request) = server.recv() else {
            return;
        };
        let mut lease = pool.lease();
        serve_one(app, &mut lease, request);
    }
}

/// Handle one request with `worker`'s state and write its response.
fn serve_one(app: &Arc<App>, worker: &mut super::context::Worker, mut request: tiny_http::Request) {
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
    let client = super::client_addr::client_address(&app.config.trusted_proxies, peer, &headers);
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
            if let super::Body::Events(stream) = &response.body
                && !head
            {
                // The stream is written by the event hub from now on: this worker, and the
                // connection's thread, are free at once.
                let head = response_head(&response, None);
                if let Some(socket) = request.into_stream() {
                    app.events.add(stream.clone(), socket, head.into_bytes());
                }
            } else {
                let _ = send(request, response, head);
            }
            status
        }
        Err(err) => {
            let status = err.status();
            let _ = send_unread(request, &Response::from_error(&err));
            status
        }
    };
    access_log(&req, status, started);
}

/// The access log: never the query string (it carries signatures), and a create token in the
/// path masked. Formatted first and written once: stderr is unbuffered, and each formatted piece
/// would be a system call.
fn access_log(req: &Request, status: u16, started: Instant) {
    let line = format!(
        "{} {} {} {:.1}ms\n",
        log_safe(&req.method),
        log_safe(&routes::log_path(&req.path)),
        status,
        started.elapsed().as_secs_f64() * 1000.0
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
}

/// Text for the access log: control characters and whitespace escaped, so a request cannot
/// forge or split log lines. The edge admits only visible ASCII in the method and path; this
/// holds for any other caller too (and keeps the `…` of a masked token).
fn log_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| !c.is_control() && !c.is_whitespace();
    if text.chars().all(plain) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if plain(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Take the body the edge has read (it refused bodies over the route's limit before they
/// arrived); the size is checked again here so that no path depends on the edge alone.
fn read_body(request: &mut tiny_http::Request, limit: u64) -> Result<Vec<u8>> {
    let too_large = |size| Error::TooLarge {
        what: "the request body",
        size,
        limit,
    };
    if let Some(declared) = request.body_length().filter(|&d| d as u64 > limit) {
        return Err(too_large(declared as u64));
    }
    // Read by the connection thread already: taken as it is, not copied.
    if let Some(body) = request.take_body() {
        if body.len() as u64 > limit {
            return Err(too_large(body.len() as u64));
        }
        return Ok(body);
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
/// 8 KiB buffer (a system call per 8 KiB) and chunks bodies over 32 KiB; here a small body goes
/// out with its head in one write, and a large one (a shared cached page, or a file on disk) is
/// handed to the edge whole (`respond_raw`), which writes what the socket takes and leaves the
/// rest, uncopied, to the connection's thread. tiny_http still owns the connection: keep-alive
/// and the next request work as with `respond`.
fn send(request: tiny_http::Request, response: Response, head_only: bool) -> std::io::Result<()> {
    let (head, tail) = wire(response, head_only);
    let result = request.respond_raw(&head, tail);
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

/// `response` as it goes on the wire: its head, with a small body after it (one system call:
/// copying a small body is cheaper than a second write), and a large body handed over whole.
fn wire(response: Response, head_only: bool) -> (Vec<u8>, Option<tiny_http::Tail>) {
    use tiny_http::Tail;
    let head = response_head(&response, Some(response.body.len()));
    let send_body = !head_only && !matches!(response.status, 100..=199 | 204 | 304);
    let small = response.body.len() <= SINGLE_WRITE_LIMIT;
    match response.body {
        _ if !send_body => (head.into_bytes(), None),
        Body::Owned(_) | Body::Shared(_) if small => {
            let mut all = head.into_bytes();
            all.extend_from_slice(response.body.as_bytes());
            (all, None)
        }
        // What a slow reader has not taken yet is neither copied nor waited for by a worker;
        // the connection's thread finishes it.
        Body::Owned(bytes) => (head.into_bytes(), Some(Tail::Bytes(bytes.into()))),
        Body::Shared(bytes) => (head.into_bytes(), Some(Tail::Bytes(bytes))),
        Body::File(file, len) => (head.into_bytes(), Some(Tail::File(file, len))),
        Body::Events(_) => (head.into_bytes(), None),
    }
}

/// The head of `response`, with `Content-Length` when the body has one.
fn response_head(response: &Response, content_length: Option<usize>) -> String {
    use std::fmt::Write as _;
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
    if let Some(length) = content_length
        && !matches!(response.status, 100..=199 | 204 | 304)
    {
        let _ = write!(head, "Content-Length: {length}\r\n");
    }
    let _ = write!(head, "Date: {}\r\n\r\n", http_date_now());
    head
}

/// Answer a request whose body was refused, and close the connection (`Connection: close`).
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

    #[test]
    fn access_log_text_is_escaped() {
        assert_eq!(log_safe("/share/abc"), "/share/abc");
        assert_eq!(
            log_safe("/a\nGET /forged 200"),
            "/a\\u{a}GET\\u{20}/forged\\u{20}200"
        );
        assert_eq!(log_safe("\u{1b}[31m"), "\\u{1b}[31m");
        assert_eq!(log_safe("/t/\u{2026}/api/share"), "/t/\u{2026}/api/share");
        assert_eq!(log_safe("/a\u{2028}b"), "/a\\u{2028}b");
    }
}
