//! What a view of a share costs once: its rendered page, its Markdown transcript, its stored
//! document and OpenCode's item list, each kept plain and gzipped, so a repeat read costs no
//! database trip, no object-store read and no render.
//!
//! Small entries live in memory (`page_cache_bytes`); large ones (over an eighth of that) in
//! files on disk (`page_cache_disk_bytes`), unlinked as soon as they are written: the open file
//! is the entry, responses in flight keep it alive after an eviction, and nothing is left behind
//! by a crash. Both budgets are bounds: an entry that fits neither is served once and not kept.
//!
//! An entry may go stale in three ways, and each one reaches the cache:
//! - the server writes the document itself (local uploads, OpenCode sync merges) and drops the
//!   share's entries;
//! - the server issues an upload URL (create, re-sync): until that URL expires the object may
//!   change behind the server's back (a PUT straight to the bucket), so within that window a hit
//!   is checked against the object's tag (a HEAD) before it is served;
//! - another server did either: it announces the share id (Postgres NOTIFY, sent in the same
//!   transaction as the change) and our listener drops the entries. While the listener is not
//!   connected nothing is served from the cache or kept in it (`set_trusted`), since a change
//!   could go unheard.
//!
//! Every share id maps to one of [`SLOTS`] generation counters; dropping a share's entries bumps
//! its counter. A fill takes a [`Ticket`] before it reads anything, and its entry is kept only if
//! neither its counter nor the global one moved meanwhile: a page built from the old document
//! never outlives the change, and a busy share stops the caching of no other share (beyond the
//! rare one sharing its counter).
//!
//! Fills are single-flight ([`Flights`]): concurrent requests for one entry wait for one fill.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::Body;
use crate::error::{Error, Result};

/// Generation counters; a power of two.
const SLOTS: usize = 4096;

/// Which view of a share an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/share/:id`: the rendered page.
    Page,
    /// `/share/:id.md`: the transcript.
    Markdown,
    /// `/share/:id.json`, `/api/share/:id`: the stored document as it is.
    Document,
    /// `/api/share/:id/data`: the document as OpenCode's item list.
    Items,
}

/// Where an entry's bytes are.
#[derive(Debug)]
enum Stored {
    Memory {
        plain: Arc<[u8]>,
        /// Empty when compressing did not pay.
        gzip: Arc<[u8]>,
    },
    Disk {
        plain: (Arc<File>, u64),
        /// `None` when compressing did not pay.
        gzip: Option<(Arc<File>, u64)>,
    },
}

/// One cached view of a share.
#[derive(Debug)]
pub struct Entry {
    stored: Stored,
    /// Quoted strong ETag of the plain bytes; the gzipped bytes have their own (`gzip_etag`).
    pub etag: String,
    /// The object version the entry was built from.
    pub object_tag: String,
    /// Until then (epoch ms), an upload URL may change the object without the server seeing it.
    pub watch_until: i64,
    /// When the share expires (epoch ms): a hit at or after it is a miss, so the share answers 410
    /// on every server at once without any notification.
    pub expires_at: Option<i64>,
    seq: u64,
}

/// What an entry is built from, besides its bytes.
pub struct Meta {
    pub object_tag: String,
    pub watch_until: i64,
    pub expires_at: Option<i64>,
}

impl Entry {
    /// The share expired at `now`: the entry is gone at once, on every server (an expiry never
    /// changes, so the cached copy of it is as good as the database's).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// Within an upload URL's window at `now`: the object may have changed behind our back,
    /// so a hit must compare its tag first.
    pub fn watched(&self, now: i64) -> bool {
        now < self.watch_until
    }

    /// The strong ETag of the gzipped body: another representation, another tag.
    pub fn gzip_etag(&self) -> String {
        format!("{}-gz\"", self.etag.trim_end_matches('"'))
    }

    /// The plain body.
    pub fn plain(&self) -> Body {
        match &self.stored {
            Stored::Memory { plain, .. } => Body::Shared(Arc::clone(plain)),
            Stored::Disk { plain, .. } => Body::File(Arc::clone(&plain.0), plain.1),
        }
    }

    /// The gzipped body, if there is one.
    pub fn gzip(&self) -> Option<Body> {
        match &self.stored {
            Stored::Memory { gzip, .. } if gzip.is_empty() => None,
            Stored::Memory { gzip, .. } => Some(Body::Shared(Arc::clone(gzip))),
            Stored::Disk { gzip, .. } => gzip
                .as_ref()
                .map(|(file, len)| Body::File(Arc::clone(file), *len)),
        }
    }

    /// The plain bytes in memory (read from disk for a large entry).
    pub fn plain_bytes(&self) -> Result<std::borrow::Cow<'_, [u8]>> {
        match &self.stored {
            Stored::Memory { plain, .. } => Ok(std::borrow::Cow::Borrowed(plain)),
            Stored::Disk { plain, .. } => {
                let mut out = vec![0u8; plain.1 as usize];
                std::os::unix::fs::FileExt::read_exact_at(&*plain.0, &mut out, 0)
                    .map_err(Error::internal)?;
                Ok(std::borrow::Cow::Owned(out))
            }
        }
    }

    fn memory_size(&self) -> usize {
        match &self.stored {
            Stored::Memory { plain, gzip } => plain.len() + gzip.len() + 256,
            Stored::Disk { .. } => 256,
        }
    }

    fn disk_size(&self) -> u64 {
        match &self.stored {
            Stored::Memory { .. } => 0,
            Stored::Disk { plain, gzip } => plain.1 + gzip.as_ref().map_or(0, |g| g.1),
        }
    }
}

/// The state of the cache a fill started from; see the module comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    slot: u64,
    all: u64,
}

impl Ticket {
    /// A fill that started from `self` saw every change `earlier` had seen (the counters only
    /// grow), so its result answers a request that came with `earlier`.
    fn covers(self, earlier: Ticket) -> bool {
        self.slot >= earlier.slot && self.all >= earlier.all
    }
}

/// A share's cached views, by `Kind`.
type Views = [Option<Arc<Entry>>; 4];

#[derive(Default)]
struct Inner {
    /// By share id, so a lookup takes the id as it comes (no key to build per hit).
    entries: HashMap<String, Views>,
    memory: usize,
    disk: u64,
    next_seq: u64,
}

pub struct PageCache {
    memory_budget: usize,
    disk_budget: u64,
    /// Where large entries are written (and at once unlinked); `None`: kept in memory or not at all.
    disk_dir: Option<PathBuf>,
    inner: RwLock<Inner>,
    slots: Box<[AtomicU64]>,
    all: AtomicU64,
    trusted: AtomicBool,
    hits: AtomicU64,
    fills: AtomicU64,
}

impl PageCache {
    pub fn new(memory_budget: usize, disk_budget: u64, disk_dir: Option<PathBuf>) -> Self {
        Self {
            memory_budget,
            disk_budget,
            disk_dir: disk_dir.filter(|_| disk_budget > 0),
            inner: RwLock::new(Inner::default()),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            all: AtomicU64::new(0),
            trusted: AtomicBool::new(true),
            hits: AtomicU64::new(0),
            fills: AtomicU64::new(0),
        }
    }

    fn slot(id: &str) -> usize {
        // FNV-1a: cheap, and ids are random already.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in id.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        (h as usize) & (SLOTS - 1)
    }

    /// Taken before a fill reads the database and the object; passed back to `insert`.
    pub fn ticket(&self, id: &str) -> Ticket {
        Ticket {
            slot: self.slots[Self::slot(id)].load(Ordering::SeqCst),
            all: self.all.load(Ordering::SeqCst),
        }
    }

    pub fn get(&self, id: &str, kind: Kind) -> Option<Arc<Entry>> {
        let entry = self.peek(id, kind);
        if entry.is_some() {
            self.count_hit();
        }
        entry
    }

    /// [`PageCache::get`] without counting a hit: the caller counts it once it serves the entry.
    pub fn peek(&self, id: &str, kind: Kind) -> Option<Arc<Entry>> {
        if !self.trusted.load(Ordering::SeqCst) {
            return None;
        }
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .get(id)
            .and_then(|views| views[kind as usize].clone())
    }

    /// Count one hit (`/healthz`).
    pub fn count_hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Build an entry from `plain`: compressed, and in memory or (if large) on disk.
    pub fn build(&self, plain: Vec<u8>, meta: Meta) -> Entry {
        let etag = etag_of(&plain);
        let gzip = gzip(&plain);
        // Compressing a tiny body does not pay; serve it plain.
        let gzip = if gzip.len() + 64 < plain.len() {
            gzip
        } else {
            Vec::new()
        };
        let size = plain.len() + gzip.len();
        let stored = match &self.disk_dir {
            Some(dir) if size > self.memory_budget / 8 && size as u64 <= self.disk_budget => {
                let gzip_file = if gzip.is_empty() {
                    Ok(None)
                } else {
                    unlinked_file(dir, &gzip).map(|g| Some((Arc::new(g), gzip.len() as u64)))
                };
                match (unlinked_file(dir, &plain), gzip_file) {
                    (Ok(p), Ok(g)) => Some(Stored::Disk {
                        plain: (Arc::new(p), plain.len() as u64),
                        gzip: g,
                    }),
                    (Err(e), _) | (_, Err(e)) => {
                        eprintln!("bshare: cannot keep a large page in {}: {e}", dir.display());
                        None
                    }
                }
            }
            _ => None,
        };
        Entry {
            stored: stored.unwrap_or_else(|| Stored::Memory {
                plain: plain.into(),
                gzip: gzip.into(),
            }),
            etag,
            object_tag: meta.object_tag,
            watch_until: meta.watch_until,
            expires_at: meta.expires_at,
            seq: 0,
        }
    }

    /// Keep an entry, unless the share changed since `ticket` was taken, the cache is not
    /// trusted, or it fits no budget. Returns the entry, kept or not.
    pub fn insert(&self, id: &str, kind: Kind, mut entry: Entry, ticket: Ticket) -> Arc<Entry> {
        self.fills.fetch_add(1, Ordering::Relaxed);
        let (memory, disk) = (entry.memory_size(), entry.disk_size());
        if memory > self.memory_budget || disk > self.disk_budget {
            return Arc::new(entry);
        }
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.ticket(id) != ticket || !self.trusted.load(Ordering::SeqCst) {
            return Arc::new(entry);
        }
        inner.next_seq += 1;
        entry.seq = inner.next_seq;
        let entry = Arc::new(entry);
        let old = inner.entries.entry(id.to_owned()).or_default()[kind as usize]
            .replace(Arc::clone(&entry));
        if let Some(old) = old {
            inner.memory -= old.memory_size();
            inner.disk -= old.disk_size();
        }
        inner.memory += memory;
        inner.disk += disk;
        // Over a budget: drop the oldest insertions of that kind of storage first.
        while inner.memory > self.memory_budget || inner.disk > self.disk_budget {
            let on_disk = inner.disk > self.disk_budget;
            let Some((oldest, at)) = inner
                .entries
                .iter()
                .flat_map(|(id, views)| {
                    views
                        .iter()
                        .enumerate()
                        .filter_map(move |(at, e)| Some((id, at, e.as_ref()?)))
                })
                .filter(|(_, _, e)| (e.disk_size() > 0) == on_disk)
                .min_by_key(|(_, _, e)| e.seq)
                .map(|(id, at, _)| (id.clone(), at))
            else {
                break;
            };
            let Some(views) = inner.entries.get_mut(&oldest) else {
                break;
            };
            let old = views[at].take();
            if views.iter().all(Option::is_none) {
                inner.entries.remove(&oldest);
            }
            if let Some(old) = old {
                inner.memory -= old.memory_size();
                inner.disk -= old.disk_size();
            }
        }
        entry
    }

    /// Drop every entry of share `id`; fills under way for it will not be kept.
    pub fn invalidate(&self, id: &str) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.slots[Self::slot(id)].fetch_add(1, Ordering::SeqCst);
        for old in inner.entries.remove(id).into_iter().flatten().flatten() {
            inner.memory -= old.memory_size();
            inner.disk -= old.disk_size();
        }
    }

    /// Drop everything; fills under way will not be kept.
    pub fn clear(&self) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.all.fetch_add(1, Ordering::SeqCst);
        inner.entries.clear();
        inner.memory = 0;
        inner.disk = 0;
    }

    /// Whether changes made by other servers reach this cache (its change listener is
    /// connected). Untrusted, it serves and keeps nothing; either way it starts empty.
    pub fn set_trusted(&self, trusted: bool) {
        self.clear();
        self.trusted.store(trusted, Ordering::SeqCst);
        self.clear();
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::SeqCst)
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .values()
            .flatten()
            .filter(|e| e.is_some())
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hits and fills so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.fills.load(Ordering::Relaxed),
        )
    }
}

/// A quoted strong ETag for `body`.
pub fn etag_of(body: &[u8]) -> String {
    format!(
        "\"{}\"",
        &crate::crypto::hex(&crate::crypto::sha256(body))[..24]
    )
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 4),
        flate2::Compression::new(6),
    );
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

/// A file in `dir` holding `bytes`, already unlinked: it lives as long as it is open.
fn unlinked_file(dir: &std::path::Path, bytes: &[u8]) -> std::io::Result<File> {
    let name = dir.join(format!(
        "entry-{}.tmp",
        crate::crypto::hex(&crate::crypto::random_bytes::<12>())
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&name)?;
    let _ = std::fs::remove_file(&name);
    file.write_all(bytes)?;
    Ok(file)
}

/// Remove what a crash may have left in the directory of large entries (a file written but not
/// yet unlinked), and make sure it exists.
pub fn prepare_disk_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.starts_with("entry-")
                && std::path::Path::new(n)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("tmp"))
        }) {
            let _ = std::fs::remove_file(path);
        }
    }
    Ok(())
}

/// Fills under way, one per entry: the first request for a missing entry fills it, and the
/// requests that come meanwhile wait for its result instead of filling it again.
///
/// Every waiting request holds a worker, so waiting is bounded where a fill is slow. A fill
/// marks itself heavy once it finds a large document ([`Progress::heavy`]); the leader of a fill,
/// and every request waiting for a heavy one, takes one of `places` (at most half the workers),
/// and beyond them is answered 503 `BUSY` at once, so the other workers stay free for hits.
/// Requests for a light fill (a small page, milliseconds) wait without a place, for at most
/// [`LIGHT_WAIT`]: a burst of first views of a new link all get their page.
pub struct Flights {
    map: Mutex<HashMap<(String, Kind), Arc<Flight>>>,
    places: usize,
    taken: std::sync::atomic::AtomicUsize,
}

/// How long a request waits for a light fill without a place.
pub const LIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What a fill tells the requests waiting for it while it runs.
#[derive(Clone, Default)]
pub struct Progress(Arc<AtomicBool>);

impl Progress {
    /// This fill will take a while (a large document): waiting for it needs a place.
    pub fn heavy(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn is_heavy(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

struct Flight {
    ticket: Ticket,
    progress: Progress,
    done: Mutex<Option<Result<Arc<Entry>>>>,
    finished: Condvar,
}

/// One of the places of requests that may wait for fills.
struct Place<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Completes a flight (with an error, if its filler panicked) and takes it off the map.
struct Lead<'a> {
    flights: &'a Flights,
    key: (String, Kind),
    flight: Arc<Flight>,
}

impl Lead<'_> {
    fn finish(&self, result: Result<Arc<Entry>>) {
        let mut done = self
            .flight
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if done.is_some() {
            return;
        }
        {
            // Off the map, if it is still this flight there (a later one may have taken its key).
            let mut map = self
                .flights
                .map
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if map
                .get(&self.key)
                .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
            {
                map.remove(&self.key);
            }
        }
        *done = Some(result);
        self.flight.finished.notify_all();
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        self.finish(Err(Error::internal("the page fill stopped")));
    }
}

/// How a waiting request stopped waiting.
enum Waited {
    Done(Result<Arc<Entry>>),
    /// The fill turned heavy: wait on only with a place.
    Heavy,
}

impl Flights {
    /// Fills at once, at most `places` requests waiting for heavy ones.
    pub fn new(places: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            places: places.max(1),
            taken: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    fn place(&self) -> Result<Place<'_>> {
        if self.taken.fetch_add(1, Ordering::SeqCst) >= self.places {
            self.taken.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Busy { retry_after: 2 });
        }
        Ok(Place(&self.taken))
    }

    /// The entry `(id, kind)` filled by `fill`, or by the fill already under way when that one
    /// started from the same `ticket` (nothing changed between its start and this request).
    pub fn run(
        &self,
        id: &str,
        kind: Kind,
        ticket: Ticket,
        fill: impl FnOnce(Progress) -> Result<Arc<Entry>>,
    ) -> Result<Arc<Entry>> {
        let key = (id.to_owned(), kind);
        let mut fill = Some(fill);
        loop {
            let (flight, lead) = {
                let mut map = self
                    .map
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match map.get(&key) {
                    Some(flight) => (Arc::clone(flight), false),
                    None => {
                        let flight = Arc::new(Flight {
                            ticket,
                            progress: Progress::default(),
                            done: Mutex::new(None),
                            finished: Condvar::new(),
                        });
                        map.insert(key.clone(), Arc::clone(&flight));
                        (flight, true)
                    }
                }
            };
            if lead {
                let lead = Lead {
                    flights: self,
                    key,
                    flight,
                };
                let _place = match self.place() {
                    Ok(place) => place,
                    Err(busy) => {
                        lead.finish(Err(busy.duplicate()));
                        return Err(busy);
                    }
                };
                let result =
                    (fill.take().expect("a flight is led once"))(lead.flight.progress.clone());
                let answer = match &result {
                    Ok(entry) => Ok(Arc::clone(entry)),
                    Err(e) => Err(e.duplicate()),
                };
                lead.finish(answer);
                return result;
            }
            let result = match Self::wait(&flight, false) {
                Waited::Done(result) => result,
                Waited::Heavy => {
                    let _place = self.place()?;
                    match Self::wait(&flight, true) {
                        Waited::Done(result) => result,
                        Waited::Heavy => unreachable!("waited to the end"),
                    }
                }
            };
            if flight.ticket.covers(ticket) {
                return result;
            }
            // That fill started before a change this request must see: fill again.
        }
    }

    /// Wait for `flight`: to its end with a place, else while it is light, for [`LIGHT_WAIT`].
    fn wait(flight: &Flight, placed: bool) -> Waited {
        let deadline = std::time::Instant::now() + LIGHT_WAIT;
        let mut done = flight
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            if let Some(result) = done.as_ref() {
                return Waited::Done(match result {
                    Ok(entry) => Ok(Arc::clone(entry)),
                    Err(e) => Err(e.duplicate()),
                });
            }
            let now = std::time::Instant::now();
            if !placed && (flight.progress.is_heavy() || now >= deadline) {
                return Waited::Heavy;
            }
            // Woken by the end of the fill; looks at its weight every 50 ms.
            let step = if placed {
                std::time::Duration::from_secs(1)
            } else {
                (deadline - now).min(std::time::Duration::from_millis(50))
            };
            done = flight
                .finished
                .wait_timeout(done, step)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            object_tag: "t".into(),
            watch_until: 0,
            expires_at: None,
        }
    }

    fn memory_cache(budget: usize) -> PageCache {
        PageCache::new(budget, 0, None)
    }

    #[test]
    fn insert_get_invalidate() {
        let c = memory_cache(10_000);
        let e = c.build(vec![b'a'; 10], meta());
        c.insert("a", Kind::Page, e, c.ticket("a"));
        let e = c.build(vec![b'a'; 10], meta());
        c.insert("a", Kind::Markdown, e, c.ticket("a"));
        assert!(c.get("a", Kind::Page).is_some());
        assert!(c.get("a", Kind::Items).is_none());
        c.invalidate("a");
        assert!(c.get("a", Kind::Page).is_none());
        assert!(c.get("a", Kind::Markdown).is_none(), "every kind goes");
        assert_eq!(c.counts().0, 1);
    }

    #[test]
    fn insert_after_invalidation_of_that_share_is_discarded_and_of_another_is_kept() {
        let c = memory_cache(10_000);
        let (ta, tb) = (c.ticket("aaaaaaaa"), c.ticket("bbbbbbbb"));
        assert_ne!(PageCache::slot("aaaaaaaa"), PageCache::slot("bbbbbbbb"));
        c.invalidate("aaaaaaaa");
        c.insert("aaaaaaaa", Kind::Page, c.build(vec![1; 10], meta()), ta);
        c.insert("bbbbbbbb", Kind::Page, c.build(vec![1; 10], meta()), tb);
        assert!(
            c.get("aaaaaaaa", Kind::Page).is_none(),
            "built before the change: not kept"
        );
        assert!(
            c.get("bbbbbbbb", Kind::Page).is_some(),
            "another share's change does not stop caching"
        );
        let t = c.ticket("bbbbbbbb");
        c.clear();
        c.insert("bbbbbbbb", Kind::Page, c.build(vec![1; 10], meta()), t);
        assert!(c.get("bbbbbbbb", Kind::Page).is_none(), "a clear stops all");
    }

    #[test]
    fn untrusted_cache_serves_and_keeps_nothing() {
        let c = memory_cache(10_000);
        c.insert("a", Kind::Page, c.build(vec![1; 10], meta()), c.ticket("a"));
        c.set_trusted(false);
        assert!(c.get("a", Kind::Page).is_none());
        c.insert("a", Kind::Page, c.build(vec![1; 10], meta()), c.ticket("a"));
        assert!(c.is_empty());
        c.set_trusted(true);
        c.insert("a", Kind::Page, c.build(vec![1; 10], meta()), c.ticket("a"));
        assert!(c.get("a", Kind::Page).is_some());
    }

    #[test]
    fn budget_evicts_oldest() {
        // Random bytes: gzip does not pay, so each entry is its plain bytes and 256 more.
        let random = |n: usize| {
            (0..n)
                .map(|_| crate::crypto::random_bytes::<1>()[0])
                .collect()
        };
        let c = memory_cache(2000);
        for id in ["a", "b", "c", "d"] {
            let e = c.build(random(150), meta());
            assert!(e.gzip().is_none());
            c.insert(id, Kind::Page, e, c.ticket(id));
        }
        assert_eq!(c.len(), 4, "1,624 bytes fit");
        let e = c.build(random(300), meta());
        c.insert("e", Kind::Page, e, c.ticket("e"));
        assert!(c.get("a", Kind::Page).is_none(), "the oldest went");
        for id in ["b", "c", "d", "e"] {
            assert!(c.get(id, Kind::Page).is_some(), "{id} stays");
        }
    }

    #[test]
    fn a_later_fill_answers_an_earlier_request_but_not_the_reverse() {
        let c = memory_cache(10_000);
        let before = c.ticket("a");
        c.invalidate("a");
        let after = c.ticket("a");
        assert!(after.covers(before));
        assert!(!before.covers(after));
        c.clear();
        assert!(!after.covers(c.ticket("a")));
    }

    #[test]
    fn large_entries_go_to_unlinked_files_within_the_disk_budget() {
        let dir = tempfile::tempdir().unwrap();
        let c = PageCache::new(8 << 10, 100 << 10, Some(dir.path().to_owned()));
        let plain: Vec<u8> = (0..40_000u32).flat_map(u32::to_le_bytes).collect();
        let e = c.build(plain.clone(), meta());
        // 160 KB does not fit the 100 KB disk budget, nor the memory one: served once, not kept.
        assert!(matches!(e.plain(), Body::Shared(_)));
        let kept = c.insert("big", Kind::Page, e, c.ticket("big"));
        assert!(c.get("big", Kind::Page).is_none());
        assert_eq!(&*kept.plain_bytes().unwrap(), &plain[..]);

        let plain = plain[..60_000].to_vec();
        let e = c.build(plain.clone(), meta());
        let Body::File(file, len) = e.plain() else {
            panic!("a large entry is on disk");
        };
        assert_eq!(len, 60_000);
        c.insert("big", Kind::Page, e, c.ticket("big"));
        let hit = c.get("big", Kind::Page).unwrap();
        assert_eq!(&*hit.plain_bytes().unwrap(), &plain[..]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "nothing is left on disk by name"
        );
        c.invalidate("big");
        drop(hit);
        // A response still holding the file reads it whole after the eviction.
        let mut back = vec![0u8; 60_000];
        std::os::unix::fs::FileExt::read_exact_at(&*file, &mut back, 0).unwrap();
        assert_eq!(back, plain);
    }

    #[test]
    fn concurrent_requests_share_one_fill() {
        let c = memory_cache(10_000);
        let flights = Flights::new(4);
        let fills = AtomicU64::new(0);
        let t = c.ticket("a");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let entry = flights
                        .run("a", Kind::Page, t, |_| {
                            fills.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(300));
                            Ok(Arc::new(c.build(vec![1; 10], meta())))
                        })
                        .unwrap();
                    assert_eq!(entry.etag, etag_of(&[1; 10]));
                });
            }
        });
        assert_eq!(fills.load(Ordering::SeqCst), 1);

        // An error reaches every waiter; a later request fills again.
        let fails = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let r = flights.run("b", Kind::Page, t, |_| {
                        fails.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        Err(Error::NotUploaded)
                    });
                    assert!(matches!(r, Err(Error::NotUploaded)));
                });
            }
        });
        assert_eq!(fails.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_request_after_a_change_does_not_take_the_older_fill() {
        let c = memory_cache(10_000);
        let flights = Flights::new(4);
        let before = c.ticket("a");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                flights
                    .run("a", Kind::Page, before, |_| {
                        started_tx.send(()).unwrap();
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        Ok(Arc::new(c.build(b"old".to_vec(), meta())))
                    })
                    .unwrap()
            });
            started_rx.recv().unwrap();
            c.invalidate("a");
            let after = c.ticket("a");
            let entry = flights
                .run("a", Kind::Page, after, |_| {
                    Ok(Arc::new(c.build(b"new".to_vec(), meta())))
                })
                .unwrap();
            assert_eq!(&*entry.plain_bytes().unwrap(), b"new");
        });
    }

    #[test]
    fn waiting_for_a_heavy_fill_needs_a_place_and_a_light_one_does_not() {
        let c = memory_cache(10_000);
        let flights = Flights::new(2);
        let t = c.ticket("a");
        let statuses = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..6 {
                let (flights, c, statuses) = (&flights, &c, &statuses);
                s.spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(i * 20));
                    let r = flights.run("a", Kind::Page, t, |progress| {
                        progress.heavy();
                        std::thread::sleep(std::time::Duration::from_millis(600));
                        Ok(Arc::new(c.build(vec![1; 10], meta())))
                    });
                    statuses.lock().unwrap().push(r.is_ok());
                });
            }
        });
        let statuses = statuses.into_inner().unwrap();
        assert_eq!(
            statuses.iter().filter(|ok| **ok).count(),
            2,
            "the leader and one waiter: {statuses:?}"
        );

        let statuses = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for i in 0..6 {
                let (flights, c, statuses) = (&flights, &c, &statuses);
                s.spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(i * 20));
                    let r = flights.run("b", Kind::Page, t, |_| {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        Ok(Arc::new(c.build(vec![1; 10], meta())))
                    });
                    statuses.lock().unwrap().push(r.is_ok());
                });
            }
        });
        assert!(
            statuses.into_inner().unwrap().iter().all(|ok| *ok),
            "a light fill is waited for by all"
        );
    }

    #[test]
    fn a_panicking_fill_releases_its_waiters() {
        let c = memory_cache(10_000);
        let flights = Flights::new(4);
        let t = c.ticket("a");
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            flights.run("a", Kind::Page, t, |_| panic!("boom"))
        }));
        assert!(r.is_err());
        let entry = flights.run("a", Kind::Page, t, |_| {
            Ok(Arc::new(c.build(vec![1; 10], meta())))
        });
        assert!(entry.is_ok(), "the flight was taken off the map");
    }
}
