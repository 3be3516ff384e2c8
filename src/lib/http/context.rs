//! The per-request context: `App` (what every worker shares: configuration, stores, caches,
//! limits) and `Worker` (one worker's own database connection). Handlers take a `&mut Worker`;
//! nothing here knows the HTTP library underneath.

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::cache::PageCache;
use super::ratelimit::RequestLimiter;
use super::{Request, Response, routes};
use crate::blob::{self, BlobStore};
use crate::config::{ObjectConfig, ServerConfig};
use crate::error::{Error, Result};
use crate::store::{self, Change, Connector, MetaStore};

/// How long after an upload URL expires an upload begun with it may still be finishing (at
/// most: no longer than the URL lived). Cached views check the object that much longer, and the
/// sweep waits as long before it removes a tombstone's object.
pub const PURGE_GRACE: std::time::Duration = std::time::Duration::from_secs(300);

/// Everything the workers share.
pub struct App {
    pub config: ServerConfig,
    pub connector: Arc<dyn Connector>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: PageCache,
    /// Fills of the cache under way, one per entry.
    pub flights: super::cache::Flights,
    pub limiter: RequestLimiter,
    /// Cache misses per client address.
    pub miss_limiter: RequestLimiter,
    pub renderer: super::renderer::Renderer,
    /// Every open event stream (live pages), held by one thread.
    pub events: super::events::Hub,
    /// Key of the client-address hashes (shared by all instances through the database).
    pub address_key: Vec<u8>,
    pub health: super::api::HealthCache,
    /// Folds sync journals that grew by half their document, or whose share went quiet
    /// (`journal`).
    pub folder: super::journal::Folder,
}

impl App {
    /// How long after an upload URL expires an upload begun with it may still land, in ms: the
    /// URL's lifetime, at most [`PURGE_GRACE`].
    pub fn upload_grace(&self) -> i64 {
        self.config.upload_url_lifetime.min(PURGE_GRACE).as_millis() as i64
    }

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
        // Large cached views go to disk; without a usable directory they are kept in memory
        // within its budget, or not at all.
        let cache_dir = (config.page_cache_disk_bytes > 0).then(|| config.data_dir.join("cache"));
        let cache_dir = cache_dir.filter(|dir| match super::cache::prepare_disk_dir(dir) {
            Ok(()) => true,
            Err(e) => {
                eprintln!(
                    "bshare: large pages are not cached: cannot use {}: {e}",
                    dir.display()
                );
                false
            }
        });
        let events = super::events::Hub::start(
            config.edge.max_event_streams,
            config.edge.event_keepalive,
            Arc::clone(&blobs),
            Arc::clone(&connector),
        )
        .map_err(|e| Error::Config(format!("cannot start the event stream thread: {e}")))?;
        let (folder, folds) = super::journal::Folder::new();
        let app = Arc::new(Self {
            folder,
            events,
            cache: PageCache::new(
                config.page_cache_bytes,
                config.page_cache_disk_bytes,
                cache_dir,
            ),
            // At most half the workers wait for fills: the others stay free for hits.
            flights: super::cache::Flights::new(config.workers / 2),
            limiter: RequestLimiter::new(config.request_limit_per_minute),
            miss_limiter: RequestLimiter::new(config.page_miss_limit_per_minute),
            renderer: super::renderer::Renderer::start()?,
            config,
            connector,
            blobs,
            address_key,
            health: super::api::HealthCache::default(),
        });
        app.start_sweeper()?;
        super::journal::Folder::start(&app, folds)
            .map_err(|e| Error::Config(format!("cannot start the journal fold thread: {e}")))?;
        // Nothing is cached until the change listener is in place (`Change::All`).
        app.cache.set_trusted(false);
        let weak = Arc::downgrade(&app);
        app.connector.listen(Arc::new(move |change| {
            if let Some(app) = weak.upgrade() {
                match change {
                    Change::Share(id) => super::announce::changed(&app, &id),
                    Change::Lost => app.cache.set_trusted(false),
                    Change::All => {
                        app.cache.set_trusted(true);
                        app.events.all_changed();
                    }
                }
            }
        }));
        // Serve once the listener is connected (at once without one), so the first views are
        // cached; a database slow to take the listener only delays caching.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !app.cache.is_trusted() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(app)
    }

    /// Start the thread that deletes the documents of expired shares every `sweep_interval`, and
    /// prunes what the rate limits no longer need.
    /// Expired shares answer 410 from the moment they expire (every route checks the stored
    /// expiry); the sweep only frees their storage and turns their row into a tombstone.
    fn start_sweeper(self: &Arc<Self>) -> Result<()> {
        let weak = Arc::downgrade(self);
        let interval = self.config.sweep_interval;
        std::thread::Builder::new()
            .name("expiry-sweep".into())
            .spawn(move || {
                let mut store = None;
                loop {
                    std::thread::sleep(interval);
                    let Some(app) = weak.upgrade() else {
                        return;
                    };
                    if let Err(e) = app.sweep(&mut store) {
                        eprintln!("bshare: deleting expired shares: {}", e.chain());
                        store = None;
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| Error::Config(format!("cannot start the expiry sweeper: {e}")))
    }

    /// Delete the objects of every share expired by now and tombstone their rows, then remove
    /// the objects of tombstones whose last upload URL has expired; returns how many objects it
    /// deleted. Several servers may sweep at once: deleting an object twice is harmless, and only
    /// one tombstones each row.
    pub fn sweep(self: &Arc<Self>, store: &mut Option<Box<dyn MetaStore>>) -> Result<usize> {
        const BATCH: u32 = 100;
        let store = store::connection(store, &*self.connector)?;
        // Rate-limit counters of past windows (keyed hashes of client addresses) and used
        // nonces go as soon as they serve no limit.
        store.prune(crate::model::now_millis())?;
        let mut swept = 0;
        loop {
            let now = crate::model::now_millis();
            let ids = store.expired_shares(now, BATCH)?;
            for id in &ids {
                // The object first: until the row is a tombstone the next sweep finds it again,
                // so a failed delete is retried.
                self.blobs.delete(&crate::model::object_key(id))?;
                if store.mark_deleted(id, now)? {
                    super::announce::changed(self, id);
                }
                swept += 1;
            }
            if ids.len() < BATCH as usize {
                break;
            }
        }
        // Journals of shares quiet for a while, to the fold thread: the object then holds the
        // whole session, for anyone reading the bucket itself. Not while an upload may still
        // replace the object: the batches wait for it in the journal (`journal`).
        let grace = self.upload_grace();
        let now = crate::model::now_millis();
        let quiet = now - super::journal::FOLD_QUIET.as_millis() as i64;
        for id in store.quiet_journals(quiet, now - grace, BATCH)? {
            self.folder.request(&id);
        }
        // Tombstones whose object an upload URL issued before the delete could have put back:
        // once the last such URL has expired (and an upload begun before then has had as long
        // again to finish), the object is removed for good.
        loop {
            let now = crate::model::now_millis();
            let ids = store.unpurged_shares(now - grace, BATCH)?;
            for id in &ids {
                self.blobs.delete(&crate::model::object_key(id))?;
                store.mark_purged(id, now)?;
                swept += 1;
            }
            if ids.len() < BATCH as usize {
                return Ok(swept);
            }
        }
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
        }
    }
}

/// One worker's state: its own database connection.
pub struct Worker {
    pub app: Arc<App>,
    store: Option<Box<dyn MetaStore>>,
}

impl Worker {
    /// This worker's connection, made on first use, after a failure, and when it went stale.
    pub fn store(&mut self) -> Result<&mut dyn MetaStore> {
        store::connection(&mut self.store, &*self.app.connector)
    }

    /// Fold share `id`'s sync journal (for `what`) on the render thread, on this worker's
    /// connection (`journal::fold`).
    pub fn fold(&mut self, id: &str, what: super::journal::Fold) -> Result<()> {
        self.store()?;
        let Some(store) = self.store.take() else {
            return Err(Error::internal("no database connection"));
        };
        let app = Arc::clone(&self.app);
        let (store, result) = super::journal::fold(&app, store, id, what);
        self.store = store;
        result
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
                    req.method,
                    routes::log_path(&req.path)
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
    }

    /// Log a failure the client sees only as a sentence.
    pub fn log_error(&self, req: &Request, err: &Error) {
        if err.status() >= 500 {
            eprintln!(
                "bshare: {} {}: {}",
                req.method,
                routes::log_path(&req.path),
                err.chain()
            );
        }
    }
}
