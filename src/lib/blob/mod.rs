//! Session documents: one trait, two implementations (an S3-compatible bucket when `S3_BUCKET` is
//! set, the data directory otherwise).
//!
//! Clients cannot tell them apart: they PUT to whatever upload URL they are given. Keys reaching
//! this module were built by `model::object_key` from a validated share id.

pub mod local;
pub mod s3;

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;

/// Identifies one version of an object (an S3 ETag, or size and modification time on disk).
pub type ObjectTag = String;

pub trait BlobStore: Send + Sync {
    /// A URL the client PUTs the document to, valid for `lifetime`, binding
    /// `Content-Type: application/json` and, when given, the exact `Content-Length`.
    fn presign_put(&self, key: &str, length: Option<u64>, lifetime: Duration) -> Result<String>;
    /// The object's bytes and tag; `None` when it does not exist.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectTag)>>;
    /// The object's bytes and tag, reading at most `limit + 1` bytes: `None` when it does not
    /// exist, `Err(StoredTooLarge)` when it is larger than `limit`. Nothing larger than the limit
    /// is ever held in memory.
    fn get_within(&self, key: &str, limit: u64) -> Result<Option<(Vec<u8>, ObjectTag)>>;
    /// The object's tag; `None` when it does not exist.
    fn head(&self, key: &str) -> Result<Option<ObjectTag>>;
    /// Write an object the server produced itself (merged OpenCode sync batches).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ObjectTag>;
    /// Remove the object; removing a missing object is not an error.
    fn delete(&self, key: &str) -> Result<()>;
    /// Whether the store answers.
    fn ping(&self) -> Result<()>;
    /// A sentence for the startup line, without credentials.
    fn describe(&self) -> String;
    /// The local store, which also serves its own upload URLs.
    fn as_local(&self) -> Option<&local::LocalBlobStore> {
        None
    }
}

/// Build the object store for the configuration. Fails with a sentence that says what is wrong
/// when the bucket cannot be reached or used.
pub fn open(
    config: &crate::config::ObjectConfig,
    base_url: &str,
    signing_key: Vec<u8>,
) -> Result<Arc<dyn BlobStore>> {
    match config {
        crate::config::ObjectConfig::S3(s3) => Ok(Arc::new(s3::S3BlobStore::open(s3)?)),
        crate::config::ObjectConfig::Local { dir } => Ok(Arc::new(local::LocalBlobStore::open(
            dir,
            base_url,
            signing_key,
        )?)),
    }
}
