//! bshare: the bounded connection layer that replaces upstream's accept loop and
//! `ClientConnection`.
//!
//! Every resource a client can hold is bounded and named in [`Limits`]:
//! - open connections (one thread each, with the stack `thread_stack_bytes` gives), beyond which a new connection gets
//!   a fast 503 and is closed;
//! - the request line and each header line, the number of headers and the whole head, and the
//!   time the head may take from its first byte (a deadline per request, not per read);
//! - the keep-alive idle time;
//! - the body: its size (by route, from [`Limits::body_limit`]) and its pace (a minimum rate after
//!   a grace period). A body over the limit is refused without being drained.
//!
//! The connection's own thread reads the whole request, body included, before the request is
//! queued for a worker, and writes what the worker could not write at once: a client that
//! trickles or stops reading holds its connection thread, never a worker.
//!
//! Accepting never stops on a transient error (`EAGAIN`, `ECONNABORTED`, `EMFILE`, a failed
//! thread spawn...): those are logged at most once a second and backed off briefly. Any other
//! accept error ends accepting for good and is reported through [`AcceptEnd`], so the program can
//! exit and be restarted instead of living on without listening.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::MessagesQueue;
use crate::{HTTPVersion, Header, Method, Request};

/// How many body bytes a request to `(method, path)` may carry.
pub type BodyLimit = dyn Fn(&str, &str) -> u64 + Send + Sync;
/// The body (content type, bytes) of a response this layer sends by itself: 400, 408, 413, 414,
/// 417, 431, 503.
pub type ErrorBody = dyn Fn(u16) -> (&'static str, Vec<u8>) + Send + Sync;
/// Where this layer's log lines go (already rate-limited).
pub type LogSink = dyn Fn(&str) + Send + Sync;

/// The bounds of the HTTP edge.
#[derive(Clone)]
pub struct Limits {
    /// Open connections at most; each holds one thread and one descriptor.
    pub max_connections: usize,
    /// The request line and each header line, in bytes (more: 414 or 431).
    pub max_line_bytes: usize,
    /// Header lines at most (more: 431).
    pub max_headers: usize,
    /// The whole head, in bytes (more: 431).
    pub max_head_bytes: usize,
    /// The whole head must arrive within this long of its first byte (else 408).
    pub header_timeout: Duration,
    /// A connection with no request under way is closed after this long.
    pub idle_timeout: Duration,
    /// A body (and a response the client reads slowly) may take this long plus its size at
    /// `min_rate`.
    pub grace: Duration,
    /// Bytes per second a body or a slow response must keep up after `grace`.
    pub min_rate: u64,
    /// Refused bodies are read past at most this many bytes before the connection closes.
    pub linger_bytes: usize,
    /// Stack of each connection thread.
    pub thread_stack_bytes: usize,
    pub body_limit: Arc<BodyLimit>,
    pub error_body: Arc<ErrorBody>,
    pub log: Arc<LogSink>,
    /// bshare: answers the connection thread gives itself, without a worker.
    pub fast: Option<Arc<FastPath>>,
    /// bshare: offered every request the fast path did not answer, before it is queued.
    pub inline: Option<Arc<Inline>>,
}

/// bshare: an answer the application has at hand (a cached page), given by the connection's own
/// thread so that it crosses no thread and no queue. `None`: the request goes to the workers.
/// It must not wait on anything: it runs on the thread that reads the connection.
pub type FastPath = dyn Fn(&FastRequest<'_>) -> Option<FastAnswer> + Send + Sync;

/// bshare: the application may handle a whole request on the connection's own thread, when it
/// can at once (a free worker's state, say): it responds as a worker would and returns `None`.
/// `Some(request)` hands it back, and it is queued for the workers. The response is written as a
/// worker's is: what the socket does not take at once is written by this thread afterwards.
pub type Inline = dyn Fn(Request) -> Option<Request> + Send + Sync;

/// bshare: a request without a body, as the fast path sees it.
pub struct FastRequest<'a> {
    pub method: &'a Method,
    pub target: &'a str,
    pub headers: &'a [Header],
    pub peer: Option<SocketAddr>,
}

/// bshare: the fast path's answer: the head (with a small body after it, in one write) and a
/// body handed over whole; `close` ends the connection after it.
pub struct FastAnswer {
    pub head: Vec<u8>,
    pub tail: Option<crate::request::Tail>,
    pub close: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_line_bytes: 8 * 1024,
            max_headers: 100,
            max_head_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            grace: Duration::from_secs(10),
            min_rate: 16 * 1024,
            linger_bytes: 64 * 1024,
            thread_stack_bytes: 256 * 1024,
            body_limit: Arc::new(|_, _| 1024 * 1024),
            error_body: Arc::new(|status| ("text/plain", reason(status).as_bytes().to_vec())),
            log: Arc::new(|line| eprintln!("{line}")),
            fast: None,
            inline: None,
        }
    }
}

/// Why accepting ended for good.
#[derive(Default)]
pub(crate) struct AcceptEnd {
    reason: Mutex<Option<String>>,
    ended: Condvar,
}

impl AcceptEnd {
    fn set(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.ended.notify_all();
    }

    /// Wait up to `timeout` for accepting to end; the reason when it has.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<String> {
        let slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        let (slot, _) = self
            .ended
            .wait_timeout_while(slot, timeout, |r| r.is_none())
            .unwrap_or_else(|e| e.into_inner());
        slot.clone()
    }
}

/// What the accept thread and the connection threads share with the `Server`.
pub(crate) struct Shared {
    pub(crate) limits: Limits,
    pub(crate) messages: Arc<MessagesQueue<crate::Message>>,
    /// Open connections (accepted and not yet closed).
    pub(crate) open: AtomicUsize,
    /// Connections with a request under way (its first byte read, its response not yet out).
    pub(crate) busy: AtomicUsize,
    /// Set by `Server::stop_accepting`: no new connection, no new request.
    pub(crate) closing: AtomicBool,
    pub(crate) accept_end: AcceptEnd,
    /// The accept thread has dropped the listener.
    pub(crate) listener_closed: (Mutex<bool>, Condvar),
    log_state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    last: Option<Instant>,
    suppressed: u64,
}

impl Shared {
    pub(crate) fn new(limits: Limits, messages: Arc<MessagesQueue<crate::Message>>) -> Self {
        Self {
            limits,
            messages,
            open: AtomicUsize::new(0),
            busy: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            accept_end: AcceptEnd::default(),
            listener_closed: (Mutex::new(false), Condvar::new()),
            log_state: Mutex::new(LogState::default()),
        }
    }

    /// Log at most one line a second; the lines skipped meanwhile are counted in the next one.
    fn log(&self, line: &str) {
        let mut state = self.log_state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if state
            .last
            .is_some_and(|last| now.duration_since(last) < Duration::from_secs(1))
        {
            state.suppressed += 1;
            return;
        }
        let suppressed = std::mem::take(&mut state.suppressed);
        state.last = Some(now);
        drop(state);
        if suppressed > 0 {
            (self.limits.log)(&format!("{line} ({suppressed} similar lines skipped)"));
        } else {
            (self.limits.log)(line);
        }
    }
}

/// Counts a resource for as long as the guard lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::AcqRel);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accept error after which accepting goes on.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::WouldBlock
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::ConnectionAborted
            | ErrorKind::ConnectionReset
            | ErrorKind::OutOfMemory
    ) || matches!(
        err.raw_os_error(),
        // EMFILE, ENFILE, ENOBUFS, ENOMEM, EPROTO, EPERM (a firewall), ENETDOWN, ENOPROTOOPT,
        // EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH (Linux's accept(2) list of
        // errors of the pending connection rather than of the listener).
        Some(24 | 23 | 105 | 12 | 71 | 1 | 100 | 92 | 112 | 64 | 113 | 95 | 101)
    )
}

/// Accept until `closing` is set or accepting fails for good. Owns the listener: when this
/// returns, the port is closed.
pub(crate) fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        accept_until_closed(&listener, &shared)
    }));
    drop(listener);
    {
        let (closed, cv) = &shared.listener_closed;
        *closed.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(err)) => shared.accept_end.set(format!("accept failed: {err}")),
        Err(_) => shared.accept_end.set("the accept thread panicked".to_owned()),
    }
}

fn accept_until_closed(listener: &TcpListener, shared: &Arc<Shared>) -> io::Result<()> {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = listener.accept();
        if shared.closing.load(Ordering::Acquire) {
            return Ok(());
        }
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) if is_transient(&err) => {
                if matches!(err.kind(), ErrorKind::Interrupted) {
                    continue;
                }
                shared.log(&format!(
                    "accept: {err}; accepting again in {} ms",
                    backoff.as_millis()
                ));
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(500));
                continue;
            }
            Err(err) => return Err(err),
        };
        backoff = Duration::from_millis(5);
        if shared.open.load(Ordering::Acquire) >= shared.limits.max_connections {
            refuse_busy(stream, &shared.limits);
            shared.log(&format!(
                "{} connections are open (--max-connections); answering new ones 503",
                shared.limits.max_connections
            ));
            continue;
        }
        let guard_shared = Arc::clone(shared);
        shared.open.fetch_add(1, Ordering::AcqRel);
        let spawned = thread::Builder::new()
            .name("conn".to_owned())
            .stack_size(shared.limits.thread_stack_bytes)
            .spawn(move || {
                let shared = guard_shared;
                struct Release<'a>(&'a AtomicUsize);
                impl Drop for Release<'_> {
                    fn drop(&mut self) {
                        self.0.fetch_sub(1, Ordering::AcqRel);
                    }
                }
                let _open = Release(&shared.open);
                Connection::new(stream, Some(peer), &shared).serve();
            });
        if let Err(err) = spawned {
            // The closure (and the stream in it) was dropped; undo its count.
            shared.open.fetch_sub(1, Ordering::AcqRel);
            shared.log(&format!(
                "cannot start a connection thread: {err}; accepting again in {} ms",
                backoff.as_millis()
            ));
            thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// Over the connection cap: a 503 written without waiting, then close.
fn refuse_busy(stream: TcpStream, limits: &Limits) {
    let _ = stream.set_nonblocking(true);
    let response = simple_response(503, limits, &[("Retry-After", "1")]);
    let _ = (&stream).write(&response);
    let _ = stream.shutdown(Shutdown::Write);
    // What the client already sent would turn the close into a reset that can overtake the
    // answer; read what is there, without waiting.
    let mut sink = [0u8; 4096];
    let _ = (&stream).read(&mut sink);
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        417 => "Expectation Failed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A whole response with `Connection: close`.
fn simple_response(status: u16, limits: &Limits, extra: &[(&str, &str)]) -> Vec<u8> {
    let (content_type, body) = (limits.error_body)(status);
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Why reading a request stopped.
#[derive(Debug)]
enum Stop {
    /// The peer closed, reset, or the connection failed: nothing to answer.
    Closed,
    /// Answer with this status and close.
    Refuse(u16),
}

impl From<io::Error> for Stop {
    fn from(err: io::Error) -> Self {
        match err.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => Stop::Refuse(408),
            _ => Stop::Closed,
        }
    }
}

/// How the body of a request is framed.
#[derive(Debug, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
}

struct Head {
    method: Method,
    target: String,
    version: HTTPVersion,
    headers: Vec<Header>,
}

impl Head {
    fn values<'a>(&'a self, name: &'static str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    }

    fn has_token(&self, name: &'static str, token: &str) -> bool {
        self.values(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the client may send another request after this one.
    fn keeps_alive(&self) -> bool {
        if self.has_token("Connection", "close") || self.has_token("Connection", "upgrade") {
            return false;
        }
        self.version == HTTPVersion(1, 1) || self.has_token("Connection", "keep-alive")
    }

    fn framing(&self) -> Result<Framing, Stop> {
        let mut codings = self
            .values("Transfer-Encoding")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .peekable();
        let lengths: Vec<&str> = self
            .values("Content-Length")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        if codings.peek().is_some() {
            // Both framings at once is how requests are smuggled past proxies: refuse.
            if !lengths.is_empty() || self.version != HTTPVersion(1, 1) {
                return Err(Stop::Refuse(400));
            }
            let codings: Vec<&str> = codings.collect();
            return match codings.as_slice() {
                [one] if one.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
                _ => Err(Stop::Refuse(400)),
            };
        }
        let Some(first) = lengths.first() else {
            return Ok(Framing::None);
        };
        if lengths.iter().any(|l| l != first)
            || first.is_empty()
            || !first.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Stop::Refuse(400));
        }
        // Longer than any u64: certainly over the limit.
        Ok(Framing::Length(first.parse().unwrap_or(u64::MAX)))
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One connection: reads requests with every bound, queues them for the workers, and finishes
/// what a worker could not write at once.
struct Connection<'a> {
    /// Shared with the worker's writer: no descriptor is duplicated per request.
    stream: Arc<TcpStream>,
    peer: Option<SocketAddr>,
    shared: &'a Shared,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// The receive timeout last set on the socket: a keep-alive connection's idle waits all use
    /// the same one, and a system call per request to set it again is measurable.
    read_timeout: Option<Duration>,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, peer: Option<SocketAddr>, shared: &'a Shared) -> Self {
        let size = shared.limits.max_line_bytes + 8 * 1024;
        Self {
            stream: Arc::new(stream),
            peer,
            shared,
            buf: vec![0u8; size].into_boxed_slice(),
            start: 0,
            end: 0,
            read_timeout: None,
        }
    }

    fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    fn serve(mut self) {
        loop {
            // Between requests: wait for the first byte of the next one, at most the idle time.
            if self.start == self.end {
                let idle = Instant::now() + self.limits().idle_timeout;
                match self.fill(idle) {
                    Ok(n) if n > 0 => {}
                    _ => return,
                }
            }
            let _busy = Counted::new(&self.shared.busy);
            match self.one_request() {
                Ok(true) => {}
                Ok(false) | Err(Stop::Closed) => return,
                Err(Stop::Refuse(status)) => {
                    self.refuse(status);
                    return;
                }
            }
        }
    }

    /// Read one request, hand it to a worker, write what remains of its response. `Ok(true)`
    /// when the connection may carry another request.
    fn one_request(&mut self) -> Result<bool, Stop> {
        let head_deadline = Instant::now() + self.limits().header_timeout;
        let head = self.read_head(head_deadline)?;
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(Stop::Refuse(503));
        }
        let framing = head.framing()?;
        let mut keep_alive = head.keeps_alive();
        let limit = (self.limits().body_limit)(head.method.as_str(), &head.target);
        let declared = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        if declared > limit {
            return Err(Stop::Refuse(413));
        }
        let mut expects_continue = false;
        for value in head.values("Expect") {
            if value.eq_ignore_ascii_case("100-continue") {
                expects_continue = true;
            } else {
                return Err(Stop::Refuse(417));
            }
        }
        if expects_continue && !matches!(framing, Framing::None | Framing::Length(0)) {
            let deadline = Instant::now() + self.limits().grace;
            self.write_all_by(b"HTTP/1.1 100 Continue\r\n\r\n", deadline)?;
        }
        let body = match framing {
            Framing::None => Vec::new(),
            Framing::Length(n) => self.read_exact_body(n)?,
            Framing::Chunked => self.read_chunked_body(limit)?,
        };
        // bshare: what the application answers at hand is written from here, without a worker.
        let fast = if body.is_empty() {
            self.limits().fast.clone()
        } else {
            None
        };
        if let Some(fast) = fast {
            let request = FastRequest {
                method: &head.method,
                target: &head.target,
                headers: &head.headers,
                peer: self.peer,
            };
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fast(&request)))
                .ok()
                .flatten();
            if let Some(answer) = answer {
                self.write_paced(&answer.head)?;
                match answer.tail {
                    Some(crate::request::Tail::Bytes(bytes)) => self.write_paced(&bytes)?,
                    Some(crate::request::Tail::File(file, len)) => {
                        self.write_file_paced(&file, len)?;
                    }
                    None => {}
                }
                return Ok(keep_alive
                    && !answer.close
                    && !self.shared.closing.load(Ordering::Acquire));
            }
        }

        let (done_tx, done_rx) = sync_channel(1);
        let writer = ResponseWriter {
            stream: Arc::clone(&self.stream),
            nonblocking: false,
            pending: Vec::new(),
            tail: None,
            head: HeadScan::default(),
            failed: false,
            detached: false,
            done: Some(done_tx),
        };
        let request = crate::request::from_parts(
            head.method,
            head.target,
            head.version,
            head.headers,
            self.peer,
            body,
            writer,
        );
        // bshare: handled here when the application can, else queued for a worker.
        let mut panicked = false;
        let queued = match self.limits().inline.clone() {
            Some(inline) => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inline(request))) {
                    Ok(back) => back,
                    Err(_) => {
                        panicked = true;
                        None
                    }
                }
            }
            None => Some(request),
        };
        if let Some(request) = queued {
            self.shared
                .messages
                .push(crate::Message::NewRequest(request));
        }
        // The worker answers; whatever it could not write without waiting comes back here.
        let done = if panicked {
            // The request was dropped as the hook unwound, so its writer has sent what it holds:
            // the rest of a response begun before the panic, or the 500 the drop wrote. Unless
            // the hook gave the request away: then nothing is known to be written, and the
            // connection closes.
            keep_alive = false;
            done_rx.try_recv().ok()
        } else {
            done_rx.recv().ok()
        };
        let Some(done) = done else {
            return Ok(false);
        };
        if done.detached {
            // The socket went to whoever called `Request::into_stream`: close this copy only.
            return Ok(false);
        }
        if done.close {
            keep_alive = false;
        }
        if !done.pending.is_empty() || done.tail.is_some() {
            let _ = self.stream.set_nonblocking(false);
            self.write_paced(&done.pending)?;
            match done.tail {
                Some(Held::Bytes(bytes, from)) => self.write_paced(&bytes[from..])?,
                Some(Held::File(file, len)) => self.write_file_paced(&file, len)?,
                None => {}
            }
        }
        Ok(keep_alive && !self.shared.closing.load(Ordering::Acquire))
    }

    /// Read into the buffer, waiting at most until `deadline`. Ok(0) at end of stream.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ErrorKind::TimedOut.into());
        }
        let wait = (deadline - now).max(Duration::from_millis(1));
        // Within 5 ms of the last setting is close enough to the deadline.
        let close_enough = self.read_timeout.is_some_and(|t| {
            t <= wait && wait - t < Duration::from_millis(5)
                || t > wait && t - wait < Duration::from_millis(5)
        });
        if !close_enough {
            self.stream.set_read_timeout(Some(wait))?;
            self.read_timeout = Some(wait);
        }
        loop {
            match (&*self.stream).read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// One line ending in CRLF, without it. `too_long` is the status for a line over the limit;
    /// `head_left` counts down the bytes the head may still take.
    fn read_line(
        &mut self,
        deadline: Instant,
        too_long: u16,
        head_left: &mut usize,
        request_line: bool,
    ) -> Result<Vec<u8>, Stop> {
        let max = self.limits().max_line_bytes;
        loop {
            let pending = &self.buf[self.start..self.end];
            if let Some(at) = pending.iter().position(|&b| b == b'\n') {
                let line = &pending[..at];
                // A bare LF is refused: readers that disagree on line ends are how requests
                // are smuggled.
                if line.last() != Some(&b'\r') {
                    return Err(Stop::Refuse(400));
                }
                if line.len() - 1 > max {
                    return Err(Stop::Refuse(too_long));
                }
                if at + 1 > *head_left {
                    return Err(Stop::Refuse(431));
                }
                let line = line[..line.len() - 1].to_vec();
                *head_left -= at + 1;
                self.start += at + 1;
                return Ok(line);
            }
            // A CR must end a line: a bare one is refused at once rather than waited past.
            if pending
                .windows(2)
                .any(|w| w[0] == b'\r' && w[1] != b'\n')
            {
                return Err(Stop::Refuse(400));
            }
            if request_line
                && pending
                    .iter()
                    .any(|&b| !(0x20..0x7f).contains(&b) && b != b'\r')
            {
                // Not HTTP (TLS, HTTP/2 frames, binary): no use waiting for a line end.
                return Err(Stop::Refuse(400));
            }
            if pending.len() > max + 1 {
                return Err(Stop::Refuse(too_long));
            }
            if pending.len() > *head_left {
                return Err(Stop::Refuse(431));
            }
            match self.fill(deadline) {
                Ok(0) => return Err(Stop::Closed),
                Ok(_) => {}
                Err(err) => return Err(err.into()),
            }
        }
    }

    fn read_head(&mut self, deadline: Instant) -> Result<Head, Stop> {
        let mut head_left = self.limits().max_head_bytes;
        let line = self.read_line(deadline, 414, &mut head_left, true)?;
        let (method, target, version) = parse_request_line(&line)?;
        let mut headers = Vec::new();
        loop {
            let line = self.read_line(deadline, 431, &mut head_left, false)?;
            if line.is_empty() {
                break;
            }
            if headers.len() == self.limits().max_headers {
                return Err(Stop::Refuse(431));
            }
            headers.push(parse_header(&line)?);
        }
        Ok(Head {
            method,
            target,
            version,
            headers,
        })
    }

    /// The latest moment by which `done` bytes of a body or a slow response must have moved.
    fn paced_deadline(&self, started: Instant, done: usize) -> Instant {
        let limits = self.limits();
        started
            + limits.grace
            + Duration::from_secs_f64(done as f64 / limits.min_rate.max(1) as f64)
    }

    fn read_exact_body(&mut self, len: u64) -> Result<Vec<u8>, Stop> {
        let len = len as usize;
        let started = Instant::now();
        // The declared length is the client's word: grow with what arrives, doubling, but never
        // past the declared length (a body of 4.7 MB takes 4.7 MB, not the 8 MB doubling gives).
        let mut body = Vec::with_capacity(len.min(64 * 1024));
        while body.len() < len {
            if self.start == self.end {
                let deadline = self.paced_deadline(started, body.len());
                if self.fill(deadline)? == 0 {
                    return Err(Stop::Closed);
                }
            }
            let take = (len - body.len()).min(self.end - self.start);
            if body.capacity() - body.len() < take {
                let grow = body.capacity().max(take).min(len - body.len());
                body.reserve_exact(grow);
            }
            body.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
        }
        Ok(body)
    }

    fn read_chunked_body(&mut self, limit: u64) -> Result<Vec<u8>, Stop> {
        let started = Instant::now();
        let mut body: Vec<u8> = Vec::new();
        let mut lines_left = usize::MAX;
        loop {
            let deadline = self.paced_deadline(started, body.len());
            let line = self.read_line(deadline, 400, &mut lines_left, false)?;
            let size = line.split(|&b| b == b';').next().unwrap_or_default();
            let size = std::str::from_utf8(size).map_err(|_| Stop::Refuse(400))?.trim();
            if size.is_empty() || size.len() > 15 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Stop::Refuse(400));
            }
            let size = u64::from_str_radix(size, 16).map_err(|_| Stop::Refuse(400))?;
            if size == 0 {
                break;
            }
            if body.len() as u64 + size > limit {
                return Err(Stop::Refuse(413));
            }
            let chunk = self.read_exact_body_from(size as usize, started, body.len())?;
            body.extend_from_slice(&chunk);
            let deadline = self.paced_deadline(started, body.len());
            let end = self.read_line(deadline, 400, &mut lines_left, false)?;
            if !end.is_empty() {
                return Err(Stop::Refuse(400));
            }
        }
        // Trailers: read and dropped, within the head's bounds.
        let mut head_left = self.limits().max_head_bytes;
        for _ in 0..=self.limits().max_headers {
            let deadline = self.paced_deadline(started, body.len());
            if self.read_line(deadline, 431, &mut head_left, false)?.is_empty() {
                return Ok(body);
            }
        }
        Err(Stop::Refuse(431))
    }

    fn read_exact_body_from(
        &mut self,
        len: usize,
        started: Instant,
        before: usize,
    ) -> Result<Vec<u8>, Stop> {
        let mut out = Vec::with_capacity(len.min(64 * 1024));
        while out.len() < len {
            if self.start == self.end {
                let deadline = self.paced_deadline(started, before + out.len());
                if self.fill(deadline)? == 0 {
                    return Err(Stop::Closed);
                }
            }
            let take = (len - out.len()).min(self.end - self.start);
            out.extend_from_slice(&self.buf[self.start..self.start + take]);
            self.start += take;
        }
        Ok(out)
    }

    fn write_all_by(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), Stop> {
        let mut written = 0;
        while written < bytes.len() {
            let now = Instant::now();
            if now >= deadline {
                return Err(Stop::Closed);
            }
            self.stream
                .set_write_timeout(Some((deadline - now).max(Duration::from_millis(1))))
                .map_err(|_| Stop::Closed)?;
            match (&*self.stream).write(&bytes[written..]) {
                Ok(0) => return Err(Stop::Closed),
                Ok(n) => written += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(Stop::Closed),
            }
        }
        Ok(())
    }

    /// Write a response the client reads slowly, as long as it keeps up the minimum rate.
    fn write_paced(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        let started = Instant::now();
        let mut written = 0;
        while written < bytes.len() {
            let deadline = self.paced_deadline(started, written);
            let end = (written + 64 * 1024).min(bytes.len());
            self.write_all_by(&bytes[written..end], deadline)?;
            written = end;
        }
        Ok(())
    }

    /// Write the first `len` bytes of `file` (a response body on disk), as `write_paced` does:
    /// 64 KiB in memory at a time, however slowly the client reads.
    fn write_file_paced(&mut self, file: &std::fs::File, len: u64) -> Result<(), Stop> {
        let started = Instant::now();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut written = 0u64;
        while written < len {
            let want = chunk.len().min((len - written) as usize);
            let n = match crate::request::read_at(file, &mut chunk[..want], written) {
                Ok(0) | Err(_) => return Err(Stop::Closed),
                Ok(n) => n,
            };
            let deadline = self.paced_deadline(started, written as usize);
            self.write_all_by(&chunk[..n], deadline)?;
            written += n as u64;
        }
        Ok(())
    }

    /// Answer `status` and close. What the client still sends is read past up to a small bound,
    /// so that the close does not become a reset that overtakes the answer.
    fn refuse(&mut self, status: u16) {
        let response = simple_response(status, self.limits(), &[]);
        let deadline = Instant::now() + Duration::from_secs(2);
        if self.write_all_by(&response, deadline).is_err() {
            return;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        let linger_until = Instant::now() + Duration::from_secs(1);
        let mut left = self.limits().linger_bytes;
        let mut sink = [0u8; 8192];
        while left > 0 && Instant::now() < linger_until {
            let wait = linger_until.saturating_duration_since(Instant::now());
            self.read_timeout = None;
            if self
                .stream
                .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                .is_err()
            {
                return;
            }
            match (&*self.stream).read(&mut sink) {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

fn parse_request_line(line: &[u8]) -> Result<(Method, String, HTTPVersion), Stop> {
    let bad = || Stop::Refuse(400);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if method.is_empty() || method.len() > 32 || !method.iter().all(|&b| is_token_byte(b)) {
        return Err(bad());
    }
    // Origin form only: a path that starts with `/`, visible ASCII (non-ASCII is
    // percent-encoded by every client).
    if target.first() != Some(&b'/') || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(bad());
    }
    let version = match version {
        b"HTTP/1.1" => HTTPVersion(1, 1),
        b"HTTP/1.0" => HTTPVersion(1, 0),
        _ => return Err(bad()),
    };
    let method = std::str::from_utf8(method)
        .ok()
        .and_then(|m| m.parse().ok())
        .ok_or_else(bad)?;
    let target = String::from_utf8(target.to_vec()).map_err(|_| bad())?;
    Ok((method, target, version))
}

fn parse_header(line: &[u8]) -> Result<Header, Stop> {
    let bad = || Stop::Refuse(400);
    let colon = line.iter().position(|&b| b == b':').ok_or_else(bad)?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // No whitespace before the colon, no folded lines (RFC 9112 §5.1, §5.2).
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(bad());
    }
    let value = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map_or(&value[..0], |from| {
            let to = value
                .iter()
                .rposition(|&b| b != b' ' && b != b'\t')
                .unwrap_or(from);
            &value[from..=to]
        });
    if !value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
    {
        return Err(bad());
    }
    Header::from_bytes(name, value).map_err(|()| bad())
}

/// What the worker's writer hands back to the connection thread.
struct Done {
    /// Bytes of the response the socket would not take without waiting.
    pending: Vec<u8>,
    /// The body handed over whole (`Tail`), from where the socket stopped taking it.
    tail: Option<Held>,
    /// The response said `Connection: close`, or writing failed.
    close: bool,
    /// The socket was handed over (`Request::into_stream`): leave it alone.
    detached: bool,
}

/// A response body the connection thread finishes writing: shared bytes from an offset, or a
/// file's first bytes.
enum Held {
    Bytes(Arc<[u8]>, usize),
    File(Arc<std::fs::File>, u64),
}

/// Finds `Connection: close` in the head of the response a worker writes.
#[derive(Default)]
struct HeadScan {
    seen: Vec<u8>,
    complete: bool,
    close: bool,
}

impl HeadScan {
    fn feed(&mut self, bytes: &[u8]) {
        if self.complete {
            return;
        }
        let room = (16 * 1024usize).saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if let Some(end) = find(&self.seen, b"\r\n\r\n") {
            self.complete = true;
            let head = String::from_utf8_lossy(&self.seen[..end]).to_ascii_lowercase();
            self.close = head.lines().any(|line| {
                line.split_once(':').is_some_and(|(name, value)| {
                    name.trim() == "connection" && value.split(',').any(|t| t.trim() == "close")
                })
            });
            self.seen = Vec::new();
        } else if room == 0 {
            self.complete = true;
            self.seen = Vec::new();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The worker's side of a response: writes what the socket takes without waiting and keeps the
/// rest for the connection thread, so a client that reads slowly never holds a worker.
pub(crate) struct ResponseWriter {
    stream: Arc<TcpStream>,
    nonblocking: bool,
    pending: Vec<u8>,
    tail: Option<Held>,
    head: HeadScan,
    failed: bool,
    detached: bool,
    done: Option<SyncSender<Done>>,
}

impl Write for ResponseWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        self.head.feed(buf);
        if !self.pending.is_empty() {
            self.pending.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let mut written = 0;
        while written < buf.len() {
            match self.write_now(&buf[written..]) {
                Ok(0) => {
                    self.failed = true;
                    return Err(ErrorKind::WriteZero.into());
                }
                Ok(n) => written += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.pending.extend_from_slice(&buf[written..]);
                    break;
                }
                Err(err) => {
                    self.failed = true;
                    return Err(err);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ResponseWriter {
    /// Write what the socket takes without waiting (`WouldBlock` when it takes nothing).
    #[cfg(target_os = "linux")]
    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        // MSG_DONTWAIT: non-blocking for this call only, without two fcntl calls per response.
        const MSG_DONTWAIT: i32 = 0x40;
        socket2::SockRef::from(&*self.stream).send_with_flags(buf, MSG_DONTWAIT)
    }

    #[cfg(not(target_os = "linux"))]
    fn write_now(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.nonblocking {
            self.stream.set_nonblocking(true)?;
            self.nonblocking = true;
        }
        (&*self.stream).write(buf)
    }
}

impl crate::request::Sink for ResponseWriter {
    fn send_tail(&mut self, tail: crate::request::Tail) -> io::Result<()> {
        use crate::request::Tail;
        if self.failed {
            return Err(ErrorKind::BrokenPipe.into());
        }
        let bytes = match tail {
            Tail::File(file, len) => {
                // Read from disk by the connection thread, never by the worker.
                self.tail = Some(Held::File(file, len));
                return Ok(());
            }
            Tail::Bytes(bytes) if !self.pending.is_empty() => {
                self.tail = Some(Held::Bytes(bytes, 0));
                return Ok(());
            }
            Tail::Bytes(bytes) => bytes,
        };
        let mut written = 0;
        while written < bytes.len() {
            match self.write_now(&bytes[written..]) {
                Ok(0) => {
                    self.failed = true;
                    return Err(ErrorKind::WriteZero.into());
                }
                Ok(n) => written += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.tail = Some(Held::Bytes(bytes, written));
                    return Ok(());
                }
                Err(err) => {
                    self.failed = true;
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    fn into_stream(mut self: Box<Self>) -> Option<TcpStream> {
        // Bytes still waiting would be lost with the connection thread: keep the socket there.
        if self.failed || !self.pending.is_empty() || self.tail.is_some() {
            self.failed = true;
            return None;
        }
        match self.stream.try_clone() {
            Ok(stream) => {
                self.detached = true;
                Some(stream)
            }
            Err(_) => {
                self.failed = true;
                None
            }
        }
    }
}

impl Drop for ResponseWriter {
    fn drop(&mut self) {
        if self.nonblocking {
            let _ = self.stream.set_nonblocking(false);
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(Done {
                pending: std::mem::take(&mut self.pending),
                tail: self.tail.take(),
                close: self.head.close || self.failed,
                detached: self.detached,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert!(parse_request_line(b"GET /share/abc HTTP/1.1").is_ok());
        for bad in [
            &b"GET /share/abc"[..],
            b"GET  /x HTTP/1.1",
            b"GET x HTTP/1.1",
            b"GET /x HTTP/2.0",
            b"GET /x HTTP/0.9",
            b"G(T /x HTTP/1.1",
            b"GET /\xc3\xa9 HTTP/1.1",
            b"GET /a\x00b HTTP/1.1",
            b"PRI * HTTP/2.0",
        ] {
            assert!(parse_request_line(bad).is_err(), "{:?}", bad);
        }
    }

    #[test]
    fn headers() {
        let h = parse_header(b"Content-Length:  12 ").unwrap();
        assert_eq!(h.value.as_str(), "12");
        assert!(parse_header(b"Bad Name: x").is_err());
        assert!(parse_header(b"NoColon").is_err());
        assert!(parse_header(b" folded: x").is_err());
        assert!(parse_header(b"X: caf\xc3\xa9").is_err());
        assert!(parse_header(b"Empty:").is_ok());
    }

    fn head(version: HTTPVersion, headers: &[(&str, &str)]) -> Head {
        Head {
            method: Method::Post,
            target: "/".into(),
            version,
            headers: headers
                .iter()
                .map(|(n, v)| Header::from_bytes(*n, *v).unwrap())
                .collect(),
        }
    }

    #[test]
    fn framing() {
        let v11 = HTTPVersion(1, 1);
        assert_eq!(head(v11.clone(), &[]).framing().unwrap(), Framing::None);
        assert_eq!(
            head(v11.clone(), &[("Content-Length", "5")]).framing().unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            head(v11.clone(), &[("Content-Length", "5"), ("content-length", "5")])
                .framing()
                .unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            head(v11.clone(), &[("Content-Length", "99999999999999999999999")])
                .framing()
                .unwrap(),
            Framing::Length(u64::MAX)
        );
        assert_eq!(
            head(v11.clone(), &[("Transfer-Encoding", "chunked")])
                .framing()
                .unwrap(),
            Framing::Chunked
        );
        for bad in [
            &[("Content-Length", "-1")][..],
            &[("Content-Length", "5"), ("Content-Length", "6")],
            &[("Content-Length", "5, 6")],
            &[("Content-Length", "")],
            &[("Content-Length", "0x10")],
            &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            &[("Transfer-Encoding", "gzip, chunked")],
            &[("Transfer-Encoding", "identity")],
        ] {
            assert!(head(v11.clone(), bad).framing().is_err(), "{:?}", bad);
        }
        assert!(head(HTTPVersion(1, 0), &[("Transfer-Encoding", "chunked")])
            .framing()
            .is_err());
    }

    #[test]
    fn keep_alive() {
        assert!(head(HTTPVersion(1, 1), &[]).keeps_alive());
        assert!(!head(HTTPVersion(1, 1), &[("Connection", "close")]).keeps_alive());
        assert!(!head(HTTPVersion(1, 0), &[]).keeps_alive());
        assert!(head(HTTPVersion(1, 0), &[("Connection", "Keep-Alive")]).keeps_alive());
    }

    #[test]
    fn head_scan_finds_close() {
        let mut scan = HeadScan::default();
        scan.feed(b"HTTP/1.1 413 Too Large\r\nConn");
        scan.feed(b"ection: close\r\n\r\nbody");
        assert!(scan.close);
        let mut scan = HeadScan::default();
        scan.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert!(!scan.close);
    }

    #[test]
    fn into_stream_hands_the_socket_over() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = crate::Server::from_listener(listener, Limits::default()).unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
            .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let request = server.recv().unwrap();
        let mut socket = request.into_stream().expect("the socket");
        // The connection thread has ended: the socket no longer counts as a connection.
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.num_connections() > 0 || server.requests_in_flight() > 0 {
            assert!(Instant::now() < deadline, "the connection thread lives on");
            thread::sleep(Duration::from_millis(10));
        }
        socket.write_all(b"HTTP/1.1 200 OK\r\n\r\nhello").unwrap();
        drop(socket);
        // Nothing but what the new owner wrote, and the end when it closed.
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "HTTP/1.1 200 OK\r\n\r\nhello");
    }

    /// The inline hook answers on the connection's thread, keep-alive goes on after it, and a
    /// request it hands back reaches the workers; a panic in it answers 500 and closes, and a
    /// panic after it answered closes once the whole answer is written.
    #[test]
    fn inline_answers_or_hands_back() {
        const LATE: usize = 16 << 20;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = Limits {
            inline: Some(Arc::new(|request: Request| {
                match request.url() {
                    "/here" => {
                        let name = thread::current().name().unwrap_or("").to_owned();
                        let body = format!("on {name}");
                        let head =
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                        request.respond_raw(head.as_bytes(), None).unwrap();
                        None
                    }
                    "/panic" => panic!("the hook failed"),
                    "/panic-late" => {
                        // More than the socket takes at once: the rest is the connection
                        // thread's to write, panic or not.
                        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {LATE}\r\n\r\n");
                        let body: Arc<[u8]> = vec![b'x'; LATE].into();
                        request
                            .respond_raw(head.as_bytes(), Some(crate::request::Tail::Bytes(body)))
                            .unwrap();
                        panic!("the hook failed after answering")
                    }
                    _ => Some(request),
                }
            })),
            ..Limits::default()
        };
        let server = crate::Server::from_listener(listener, limits).unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let read_answer = |client: &mut TcpStream, want: &str| {
            let mut got = Vec::new();
            let mut byte = [0u8; 1];
            while !String::from_utf8_lossy(&got).ends_with(want) {
                assert_eq!(client.read(&mut byte).unwrap(), 1, "got {:?}", String::from_utf8_lossy(&got));
                got.push(byte[0]);
            }
        };
        client.write_all(b"GET /here HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        read_answer(&mut client, "on conn");
        // The same connection again, and a request the hook hands back, which a worker answers.
        client.write_all(b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let request = server.recv().unwrap();
        assert_eq!(request.url(), "/queued");
        request
            .respond_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nby worker", None)
            .unwrap();
        read_answer(&mut client, "by worker");
        client.write_all(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        // The request, dropped unanswered as the hook unwound, answered 500; then the end.
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.starts_with("HTTP/1.1 500 "), "{:?}", rest);
        assert!(rest.ends_with("\r\n\r\n"), "{:?}", rest);

        let mut client = TcpStream::connect(addr).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        client
            .write_all(b"GET /panic-late HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        // Read only once the hook has surely panicked: what the socket took at once cannot be
        // all of it.
        thread::sleep(Duration::from_millis(300));
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).unwrap();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {LATE}\r\n\r\n");
        assert!(rest.starts_with(head.as_bytes()));
        assert_eq!(rest.len() - head.len(), LATE, "the whole body, then the end");
    }

    #[test]
    fn transient_accept_errors() {
        assert!(is_transient(&io::Error::from(ErrorKind::WouldBlock)));
        assert!(is_transient(&io::Error::from(ErrorKind::ConnectionAborted)));
        assert!(is_transient(&io::Error::from_raw_os_error(24)));
        assert!(is_transient(&io::Error::from_raw_os_error(23)));
        assert!(!is_transient(&io::Error::from_raw_os_error(9)));
        assert!(!is_transient(&io::Error::from_raw_os_error(22)));
    }
}
