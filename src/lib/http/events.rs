//! Live follow: the hub that holds every open event stream (`GET /share/:id/events`).
//!
//! A stream costs no worker and no connection thread. Its handler only checks the share and the
//! cap; the worker then takes the socket out of the request (`tiny_http::Request::into_stream`)
//! and hands it here, to the one hub thread, which writes the response head and then, to every
//! stream of a share:
//! - `event: change` when the share's content changed,
//! - `event: gone` when it was deleted or expired (the stream is then closed),
//! - a `: keep-alive` comment every `keepalive` (25 s by default).
//!
//! Writes never wait: a stream whose socket takes less than a whole event (its reader stopped
//! reading), that errors, or whose reader hung up is dropped. The reader's script then falls back
//! to polling the page.
//!
//! The hub learns of changes from `announce` (this server's own writes and issued upload URLs)
//! and from the store's `NOTIFY` listener (other servers). It then looks at the share itself, on
//! its own database connection: a tombstone is `gone`; otherwise the object's tag and the newest
//! journaled sync batch (`journal`) are compared with the last ones seen, and only a new one is a
//! `change`. A PUT straight to the bucket through an
//! issued upload URL is seen by nobody, so while a watched share has an upload URL open, the hub
//! checks the object's tag once a second.

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::blob::{BlobStore, ObjectTag};
use crate::model::{now_millis, object_key};
use crate::store::{Connector, MetaStore};

/// What the handler learnt when it accepted a stream: the response body of `/events`.
#[derive(Debug, Clone)]
pub struct EventStream {
    pub share: String,
    /// Until then (epoch ms) an issued upload URL may change the object unseen.
    pub upload_until: i64,
    /// When the share expires (epoch ms): its streams then get `gone`.
    pub expires_at: Option<i64>,
}

/// How often a watched share with an open upload URL has its object's tag checked, and how
/// often the hub looks for readers that hung up.
const TICK: Duration = Duration::from_secs(1);

/// Every open event stream, and the thread that writes to them.
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    max_streams: usize,
    keepalive: Duration,
    blobs: Arc<dyn BlobStore>,
    connector: Arc<dyn Connector>,
    /// Streams held or on their way in; the cap is checked against it.
    streams: AtomicUsize,
    stop: AtomicBool,
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    incoming: Vec<(EventStream, TcpStream, Vec<u8>)>,
    changed: HashSet<String>,
    all_changed: bool,
}

impl Hub {
    /// Start the hub thread. It ends when the hub is dropped.
    pub fn start(
        max_streams: usize,
        keepalive: Duration,
        blobs: Arc<dyn BlobStore>,
        connector: Arc<dyn Connector>,
    ) -> std::io::Result<Self> {
        let inner = Arc::new(Inner {
            max_streams,
            keepalive,
            blobs,
            connector,
            streams: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("events".to_owned())
            .spawn(move || run(&weak))?;
        Ok(Self { inner })
    }

    /// Whether another stream may open (`--max-event-streams`).
    pub fn has_room(&self) -> bool {
        self.inner.streams.load(Ordering::Acquire) < self.inner.max_streams
    }

    /// Streams held now.
    pub fn len(&self) -> usize {
        self.inner.streams.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Take over `socket`, whose request asked for `stream`; `head` is the response head. Over
    /// the cap (another stream took the last place since the handler looked) it gets a 503.
    pub fn add(&self, stream: EventStream, socket: TcpStream, head: Vec<u8>) {
        let taken = self
            .inner
            .streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.inner.max_streams).then_some(n + 1)
            });
        if taken.is_err() {
            let body = br#"{"error":"this server holds as many live pages as it may; the page polls for changes instead","code":"UNAVAILABLE"}"#;
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.set_nonblocking(true);
            let mut all = answer.into_bytes();
            all.extend_from_slice(body);
            let _ = (&socket).write(&all);
            let _ = socket.shutdown(Shutdown::Write);
            return;
        }
        self.queue().incoming.push((stream, socket, head));
        self.inner.wake.notify_one();
    }

    /// Share `id` may have changed (or been deleted).
    pub fn changed(&self, id: &str) {
        let mut q = self.queue();
        if !q.all_changed {
            q.changed.insert(id.to_owned());
        }
        drop(q);
        self.inner.wake.notify_one();
    }

    /// Any share may have changed (the change listener lost its connection for a while).
    pub fn all_changed(&self) {
        let mut q = self.queue();
        q.all_changed = true;
        q.changed.clear();
        drop(q);
        self.inner.wake.notify_one();
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }
}

/// The streams of one share, as the hub thread keeps them.
struct Watched {
    sockets: Vec<TcpStream>,
    /// The object's tag and the newest journaled sync batch when last looked at; `None`
    /// before the first look.
    version: Option<(Option<ObjectTag>, i64)>,
    upload_until: i64,
    expires_at: Option<i64>,
}

/// The hub thread's own state.
struct Thread {
    shares: HashMap<String, Watched>,
    store: Option<Box<dyn MetaStore>>,
    next_tick: Instant,
    next_keepalive: Instant,
}

const CHANGE: &[u8] = b"event: change\ndata: {}\n\n";
const GONE: &[u8] = b"event: gone\ndata: {}\n\n";
const KEEPALIVE: &[u8] = b": keep-alive\n\n";

fn run(weak: &Weak<Inner>) {
    let mut t = Thread {
        shares: HashMap::new(),
        store: None,
        next_tick: Instant::now() + TICK,
        next_keepalive: Instant::now(),
    };
    if let Some(inner) = weak.upgrade() {
        t.next_keepalive = Instant::now() + inner.keepalive;
    }
    loop {
        let Some(inner) = weak.upgrade() else {
            return;
        };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let wake_at = t.next_tick.min(t.next_keepalive);
        let (incoming, changed, all) = {
            let mut q = inner
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let nothing =
                |q: &mut Queue| q.incoming.is_empty() && q.changed.is_empty() && !q.all_changed;
            if nothing(&mut q) {
                let wait = wake_at.saturating_duration_since(Instant::now());
                q = inner
                    .wake
                    .wait_timeout_while(q, wait, |q| {
                        nothing(q) && !inner.stop.load(Ordering::Acquire)
                    })
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
            (
                std::mem::take(&mut q.incoming),
                std::mem::take(&mut q.changed),
                std::mem::take(&mut q.all_changed),
            )
        };
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.step(&inner, incoming, changed, all);
        }));
        if panicked.is_err() {
            // Whatever went wrong, the streams are dropped, never wedged: readers fall back to
            // polling.
            eprintln!("bshare: the event hub failed; its streams are closed");
            t.shares.clear();
            t.store = None;
        }
        let held: usize = t.shares.values().map(|w| w.sockets.len()).sum();
        let queued = inner
            .queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .incoming
            .len();
        inner.streams.store(held + queued, Ordering::Release);
    }
}

impl Thread {
    fn step(
        &mut self,
        inner: &Inner,
        incoming: Vec<(EventStream, TcpStream, Vec<u8>)>,
        changed: HashSet<String>,
        all: bool,
    ) {
        for (stream, socket, head) in incoming {
            if socket.set_nonblocking(true).is_err() || !send(&socket, &head) {
                continue;
            }
            let watched = self
                .shares
                .entry(stream.share.clone())
                .or_insert_with(|| Watched {
                    sockets: Vec::new(),
                    version: None,
                    upload_until: 0,
                    expires_at: stream.expires_at,
                });
            watched.upload_until = watched.upload_until.max(stream.upload_until);
            watched.sockets.push(socket);
            if watched.version.is_none() {
                let version = self.version(inner, &stream.share);
                if let Some(w) = self.shares.get_mut(&stream.share) {
                    w.version = version;
                }
            }
        }
        let dirty: Vec<String> = if all {
            self.shares.keys().cloned().collect()
        } else {
            changed
                .into_iter()
                .filter(|id| self.shares.contains_key(id))
                .collect()
        };
        for id in dirty {
            self.look_at(inner, &id);
        }
        let now = Instant::now();
        if now >= self.next_tick {
            self.next_tick = now + TICK;
            // An expiry never changes: no need to ask the database.
            let expired: Vec<String> = self
                .shares
                .iter()
                .filter(|(_, w)| w.expires_at.is_some_and(|at| now_millis() >= at))
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                self.gone(&id);
            }
            let open: Vec<String> = self
                .shares
                .iter()
                .filter(|(_, w)| w.upload_until > now_millis())
                .map(|(id, _)| id.clone())
                .collect();
            for id in open {
                self.check_tag(inner, &id);
            }
            for w in self.shares.values_mut() {
                w.sockets.retain(still_open);
            }
        }
        if now >= self.next_keepalive {
            self.next_keepalive = now + inner.keepalive;
            for w in self.shares.values_mut() {
                w.sockets.retain(|s| send(s, KEEPALIVE));
            }
        }
        self.shares.retain(|_, w| !w.sockets.is_empty());
    }

    /// Share `id` was announced: gone, changed, or only given a new upload URL.
    fn look_at(&mut self, inner: &Inner, id: &str) {
        let Ok(row) = self.store(inner).and_then(|s| s.get_share(id)) else {
            // The database is away: tell the readers to look for themselves.
            self.store = None;
            self.broadcast(id, CHANGE);
            return;
        };
        match row {
            Some(row) if row.state(now_millis()) == crate::store::ShareState::Live => {
                if let Some(w) = self.shares.get_mut(id) {
                    w.upload_until = w.upload_until.max(row.upload_until);
                }
                self.check_tag(inner, id);
            }
            _ => self.gone(id),
        }
    }

    /// Share `id` was deleted or expired: `gone` to its streams, which then end.
    fn gone(&mut self, id: &str) {
        if let Some(w) = self.shares.remove(id) {
            for s in w.sockets {
                if send(&s, GONE) {
                    let _ = s.shutdown(Shutdown::Write);
                }
            }
        }
    }

    /// The share's content version: its object's tag and its newest journaled sync batch (a
    /// batch changes the content without touching the object). `None` when either cannot be
    /// read.
    /// The journal first, as every reader does: a fold between the two reads then shows as a
    /// new tag, never as an old tag with the journal already emptied.
    fn version(&mut self, inner: &Inner, id: &str) -> Option<(Option<ObjectTag>, i64)> {
        let Ok(head) = self.store(inner).and_then(|s| s.journal_head(id)) else {
            self.store = None;
            return None;
        };
        let tag = inner.blobs.head(&object_key(id)).ok()?;
        Some((tag, head))
    }

    /// Send `change` to share `id`'s streams when its content version is not the one last seen.
    fn check_tag(&mut self, inner: &Inner, id: &str) {
        let Some(version) = self.version(inner, id) else {
            return;
        };
        let Some(w) = self.shares.get_mut(id) else {
            return;
        };
        if w.version.as_ref() == Some(&version) {
            return;
        }
        w.version = Some(version);
        self.broadcast(id, CHANGE);
    }

    fn broadcast(&mut self, id: &str, event: &[u8]) {
        if let Some(w) = self.shares.get_mut(id) {
            w.sockets.retain(|s| send(s, event));
        }
    }

    fn store(&mut self, inner: &Inner) -> crate::error::Result<&mut dyn MetaStore> {
        crate::store::connection(&mut self.store, &*inner.connector)
    }
}

/// Write all of `bytes` without waiting; `false` (drop the stream) when the socket takes less.
fn send(socket: &TcpStream, bytes: &[u8]) -> bool {
    loop {
        match (&*socket).write(bytes) {
            Ok(n) => return n == bytes.len(),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Whether the reader is still there: an end of stream or an error means it hung up. Whatever a
/// reader sends on an event stream is read and ignored.
fn still_open(socket: &TcpStream) -> bool {
    let mut sink = [0u8; 512];
    for _ in 0..8 {
        match (&*socket).read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    // A reader that keeps sending is not reading events.
    false
}
