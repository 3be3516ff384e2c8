//! Local-disk object store: documents under `<data dir>/objects/`, uploaded through URLs the server
//! signs itself.
//!
//! An upload URL is `PUT {base}/blob/{key}?exp=&len=&n=&sig=`, where `sig` is HMAC-SHA256 over the
//! method, key, expiry, length, nonce and content type, under a key kept in the data directory. A URL
//! works once (its nonce is recorded), until it expires, for exactly its key. Bodies are written to a
//! temporary file, fsynced and renamed into place, so a reader sees the old or the new document,
//! never half of one, and a refused or broken upload leaves nothing behind.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::{BlobStore, ObjectTag};
use crate::crypto;
use crate::error::{Dependency, Error, Result};

/// The only content type an upload URL accepts.
pub const UPLOAD_CONTENT_TYPE: &str = "application/json";

pub struct LocalBlobStore {
    dir: PathBuf,
    base_url: String,
    key: Vec<u8>,
}

/// The verified parameters of an upload URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadGrant {
    pub key: String,
    pub expires_at: i64,
    pub length: Option<u64>,
    pub nonce: String,
}

impl LocalBlobStore {
    pub fn open(dir: &Path, base_url: &str, key: Vec<u8>) -> Result<Self> {
        fs::create_dir_all(dir.join("sessions")).map_err(|e| {
            Error::Config(format!(
                "cannot create the object directory {}: {e}",
                dir.display()
            ))
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            key,
        })
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        // Defence in depth: keys are built from validated ids, but a path is only ever made from
        // `sessions/<valid id>.json`.
        let id = key
            .strip_prefix("sessions/")
            .and_then(|rest| rest.strip_suffix(".json"))
            .filter(|id| crate::model::is_valid_share_id(id))
            .ok_or(Error::UploadRefused("the upload URL names no valid object"))?;
        Ok(self.dir.join("sessions").join(format!("{id}.json")))
    }

    fn signed_message(key: &str, exp: i64, len: Option<u64>, nonce: &str) -> Vec<u8> {
        let len = len.map(|l| l.to_string()).unwrap_or_default();
        format!("PUT\n{key}\n{exp}\n{len}\n{nonce}\n{UPLOAD_CONTENT_TYPE}").into_bytes()
    }

    /// Check an upload URL's query against its key. Refuses tampered, expired and malformed URLs;
    /// the one-use check (nonce) is the caller's, in the metadata store.
    pub fn verify_upload(&self, key: &str, query: &str, now: i64) -> Result<UploadGrant> {
        let mut exp = None;
        let mut len = None;
        let mut nonce = None;
        let mut sig = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "exp" => exp = value.parse::<i64>().ok(),
                "len" => len = Some(value),
                "n" => nonce = Some(value),
                "sig" => sig = crypto::base64url_decode(value),
                _ => {}
            }
        }
        let refused = Error::UploadRefused("the upload URL is malformed or its signature is wrong");
        let (Some(exp), Some(nonce), Some(sig)) = (exp, nonce, sig) else {
            return Err(refused);
        };
        let length = match len {
            None | Some("") => None,
            Some(l) => Some(l.parse::<u64>().map_err(|_| {
                Error::UploadRefused("the upload URL is malformed or its signature is wrong")
            })?),
        };
        if !crypto::hmac_verify(
            &self.key,
            &Self::signed_message(key, exp, length, nonce),
            &sig,
        ) {
            return Err(refused);
        }
        if exp <= now {
            return Err(Error::UploadRefused(
                "the upload URL has expired; ask the server for a new one",
            ));
        }
        self.path(key)?;
        Ok(UploadGrant {
            key: key.to_owned(),
            expires_at: exp,
            length,
            nonce: nonce.to_owned(),
        })
    }

    fn tag_of(meta: &fs::Metadata) -> ObjectTag {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{}-{mtime}", meta.len())
    }
}

fn io_unavailable(e: io::Error) -> Error {
    Error::unavailable(Dependency::ObjectStore, e)
}

impl BlobStore for LocalBlobStore {
    fn presign_put(&self, key: &str, length: Option<u64>, lifetime: Duration) -> Result<String> {
        self.path(key)?;
        let exp = crate::model::now_millis() + lifetime.as_millis() as i64;
        let nonce = crypto::random_hex(12);
        let sig = crypto::base64url(&crypto::hmac_sha256(
            &self.key,
            &Self::signed_message(key, exp, length, &nonce),
        ));
        let len = length.map(|l| l.to_string()).unwrap_or_default();
        Ok(format!(
            "{}/blob/{key}?exp={exp}&len={len}&n={nonce}&sig={sig}",
            self.base_url
        ))
    }

    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectTag)>> {
        let path = self.path(key)?;
        let mut file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_unavailable(e)),
        };
        let meta = file.metadata().map_err(io_unavailable)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        io::Read::read_to_end(&mut file, &mut bytes).map_err(io_unavailable)?;
        Ok(Some((bytes, Self::tag_of(&meta))))
    }

    fn get_within(&self, key: &str, limit: u64) -> Result<Option<(Vec<u8>, ObjectTag)>> {
        let path = self.path(key)?;
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_unavailable(e)),
        };
        let meta = file.metadata().map_err(io_unavailable)?;
        if meta.len() > limit {
            return Err(Error::StoredTooLarge { limit });
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        io::Read::read_to_end(&mut io::Read::take(file, limit + 1), &mut bytes)
            .map_err(io_unavailable)?;
        if bytes.len() as u64 > limit {
            return Err(Error::StoredTooLarge { limit });
        }
        Ok(Some((bytes, Self::tag_of(&meta))))
    }

    fn head(&self, key: &str) -> Result<Option<ObjectTag>> {
        match fs::metadata(self.path(key)?) {
            Ok(meta) => Ok(Some(Self::tag_of(&meta))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_unavailable(e)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ObjectTag> {
        let path = self.path(key)?;
        let dir = path.parent().unwrap_or(&self.dir);
        let tmp = dir.join(format!(".upload-{}", crypto::random_hex(8)));
        let result = (|| {
            let mut file = fs::File::create_new(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            // The rename itself must survive a crash too.
            fs::File::open(dir)?.sync_all()
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(io_unavailable(e));
        }
        self.head(key)?
            .ok_or_else(|| Error::internal("object vanished after write"))
    }

    fn delete(&self, key: &str) -> Result<()> {
        match fs::remove_file(self.path(key)?) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_unavailable(e)),
        }
    }

    fn ping(&self) -> Result<()> {
        fs::metadata(self.dir.join("sessions"))
            .map(|_| ())
            .map_err(io_unavailable)
    }

    fn describe(&self) -> String {
        format!("local disk at {}", self.dir.display())
    }

    fn as_local(&self) -> Option<&LocalBlobStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(dir.path(), "http://h", vec![7; 32]).unwrap();
        (dir, s)
    }

    fn query(url: &str) -> &str {
        url.split_once('?').unwrap().1
    }

    #[test]
    fn signed_url_verifies_and_binds_everything() {
        let (_d, s) = store();
        let key = "sessions/abcdefgh.json";
        let url = s
            .presign_put(key, Some(10), Duration::from_secs(60))
            .unwrap();
        assert!(url.starts_with("http://h/blob/sessions/abcdefgh.json?"));
        let now = crate::model::now_millis();
        let g = s.verify_upload(key, query(&url), now).unwrap();
        assert_eq!(g.length, Some(10));
        // Another key, a changed length, a changed expiry: all refused.
        assert!(
            s.verify_upload("sessions/zzzzzzzz.json", query(&url), now)
                .is_err()
        );
        let tampered = query(&url).replace("len=10", "len=11");
        assert!(s.verify_upload(key, &tampered, now).is_err());
        let tampered = query(&url).replace("exp=", "exp=9");
        assert!(s.verify_upload(key, &tampered, now).is_err());
        // Expired.
        assert!(s.verify_upload(key, query(&url), now + 61_000).is_err());
    }

    #[test]
    fn put_get_delete() {
        let (_d, s) = store();
        let key = "sessions/abcdefgh.json";
        assert!(s.get(key).unwrap().is_none());
        let tag = s.put(key, b"{}").unwrap();
        let (bytes, tag2) = s.get(key).unwrap().unwrap();
        assert_eq!((bytes.as_slice(), tag), (&b"{}"[..], tag2));
        s.delete(key).unwrap();
        s.delete(key).unwrap();
        assert!(s.head(key).unwrap().is_none());
        assert!(s.put("../etc/passwd", b"x").is_err());
    }
}
