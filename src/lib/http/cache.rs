//! Rendered share pages kept in memory, so a repeat view costs no database trip and no render.
//!
//! A page may change in three ways, and each one reaches the cache:
//! - the server writes the document itself (local uploads, OpenCode sync merges) and drops the entry;
//! - the server issues an upload URL (create, re-sync): until that URL expires the object may change
//!   behind the server's back (a PUT straight to the bucket), so within that window a hit is checked
//!   against the object's tag (a HEAD) before it is served;
//! - another server did either: it announces the share id (Postgres NOTIFY) and our listener drops
//!   the entry.
//!
//! An insertion that raced with an invalidation is discarded (`epoch`), so a page rendered from the
//! old document can never outlive the change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// One rendered page.
#[derive(Debug)]
pub struct CachedPage {
    pub html: Arc<[u8]>,
    pub gzip: Arc<[u8]>,
    /// Quoted strong ETag of the HTML.
    pub etag: String,
    /// The object version the page was rendered from.
    pub object_tag: String,
    /// Until then (epoch ms), an upload URL may change the object without the server seeing it.
    pub watch_until: i64,
    /// When the share expires (epoch ms): a hit at or after it is a miss, so the share answers 410
    /// on every server at once without any notification.
    pub expires_at: Option<i64>,
    seq: u64,
}

impl CachedPage {
    pub fn new(
        html: Vec<u8>,
        gzip: Vec<u8>,
        etag: String,
        object_tag: String,
        watch_until: i64,
    ) -> Self {
        Self {
            html: html.into(),
            gzip: gzip.into(),
            etag,
            object_tag,
            watch_until,
            expires_at: None,
            seq: 0,
        }
    }

    #[must_use]
    pub fn with_expiry(mut self, expires_at: Option<i64>) -> Self {
        self.expires_at = expires_at;
        self
    }

    fn size(&self) -> usize {
        self.html.len() + self.gzip.len() + 128
    }
}

#[derive(Default)]
struct Inner {
    pages: HashMap<String, Arc<CachedPage>>,
    bytes: usize,
    next_seq: u64,
}

pub struct PageCache {
    budget: usize,
    inner: RwLock<Inner>,
    epoch: AtomicU64,
}

impl PageCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            budget: budget_bytes,
            inner: RwLock::new(Inner::default()),
            epoch: AtomicU64::new(0),
        }
    }

    /// Taken before reading the database and object for a miss; passed back to `insert`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    pub fn get(&self, id: &str) -> Option<Arc<CachedPage>> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pages
            .get(id)
            .cloned()
    }

    /// Keep a page, unless an invalidation happened since `epoch` was taken. Returns the page,
    /// kept or not.
    pub fn insert(&self, id: &str, mut page: CachedPage, epoch: u64) -> Arc<CachedPage> {
        let size = page.size();
        if size > self.budget {
            return Arc::new(page);
        }
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return Arc::new(page);
        }
        inner.next_seq += 1;
        page.seq = inner.next_seq;
        let page = Arc::new(page);
        if let Some(old) = inner.pages.insert(id.to_owned(), Arc::clone(&page)) {
            inner.bytes -= old.size();
        }
        inner.bytes += size;
        // Over budget: drop the oldest insertions first.
        while inner.bytes > self.budget {
            let Some(oldest) = inner
                .pages
                .iter()
                .min_by_key(|(_, p)| p.seq)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(old) = inner.pages.remove(&oldest) {
                inner.bytes -= old.size();
            }
        }
        page
    }

    pub fn invalidate(&self, id: &str) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = inner.pages.remove(id) {
            inner.bytes -= old.size();
        }
    }

    pub fn clear(&self) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        inner.pages.clear();
        inner.bytes = 0;
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pages
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(n: usize) -> CachedPage {
        CachedPage::new(vec![0; n], vec![], "\"e\"".into(), "t".into(), 0)
    }

    #[test]
    fn insert_get_invalidate() {
        let c = PageCache::new(10_000);
        let e = c.epoch();
        c.insert("a", page(10), e);
        assert!(c.get("a").is_some());
        c.invalidate("a");
        assert!(c.get("a").is_none());
    }

    #[test]
    fn insert_after_invalidation_is_discarded() {
        let c = PageCache::new(10_000);
        let e = c.epoch();
        c.invalidate("a");
        c.insert("a", page(10), e);
        assert!(c.get("a").is_none(), "rendered before the change: not kept");
    }

    #[test]
    fn budget_evicts_oldest() {
        let c = PageCache::new(1000);
        for id in ["a", "b", "c"] {
            c.insert(id, page(300), c.epoch());
        }
        c.insert("d", page(300), c.epoch());
        assert!(c.get("a").is_none());
        assert!(c.get("d").is_some());
        assert_eq!(c.len(), 2);
    }
}
