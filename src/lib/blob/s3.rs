//! S3-compatible object store (R2, AWS S3, MinIO, Garage, ...) through `rust-s3`.
//!
//! The server signs upload URLs; clients PUT documents straight to the bucket, so session bytes
//! never pass through the API. The server reads objects to render pages and writes them only for
//! OpenCode's sync protocol.

use std::time::Duration;

use http::HeaderMap;
use s3::error::S3Error;
use s3::{Bucket, Region, creds::Credentials};

use super::{BlobStore, ObjectTag};
use crate::config::{Addressing, S3Config};
use crate::error::{Dependency, Error, Result};

pub struct S3BlobStore {
    bucket: Box<Bucket>,
    described: String,
}

impl S3BlobStore {
    pub fn open(config: &S3Config) -> Result<Self> {
        // Fail fast while the bucket is unreachable (503 to the client) instead of sleeping through
        // rust-s3's retries on a worker thread.
        s3::set_retries(0);
        let region = match &config.endpoint {
            Some(endpoint) => Region::Custom {
                region: config.region.clone(),
                endpoint: endpoint.trim_end_matches('/').to_owned(),
            },
            None => config.region.parse().map_err(|e| {
                Error::Config(format!("S3_REGION {:?} is not valid: {e}", config.region))
            })?,
        };
        let credentials = Credentials::new(
            Some(&config.access_key_id),
            Some(&config.secret_access_key),
            None,
            None,
            None,
        )
        .map_err(|e| Error::Config(format!("the S3 credentials are not usable: {e}")))?;
        let mut bucket = Bucket::new(&config.bucket, region, credentials)
            .map_err(|e| Error::Config(format!("the S3 bucket settings are not usable: {e}")))?
            .with_request_timeout(Duration::from_secs(15))
            .map_err(|e| Error::Config(format!("the S3 bucket settings are not usable: {e}")))?;
        if config.addressing == Addressing::Path {
            bucket = bucket.with_path_style();
        }
        let store = Self {
            described: format!(
                "S3 bucket {:?} at {}",
                config.bucket,
                config.endpoint.as_deref().unwrap_or("AWS S3")
            ),
            bucket,
        };
        store.check_bucket().map_err(|e| {
            Error::Config(format!(
                "cannot use the S3 bucket {:?}: {e}; check S3_BUCKET, S3_ENDPOINT, S3_REGION and the access keys",
                config.bucket
            ))
        })?;
        Ok(store)
    }

    /// List one key: proves the bucket exists and the credentials may read it.
    fn check_bucket(&self) -> std::result::Result<(), String> {
        match self
            .bucket
            .list_page("sessions/".into(), None, None, None, Some(1))
        {
            Ok((_, status)) if (200..300).contains(&status) => Ok(()),
            Ok((_, status)) => Err(format!("the bucket answered HTTP {status}")),
            Err(S3Error::HttpFailWithBody(status, body)) => Err(format!(
                "the bucket answered HTTP {status} {}",
                s3_error_code(&body)
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The `<Code>` of an S3 XML error body, for a readable startup error.
fn s3_error_code(body: &str) -> String {
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| format!("({code})"))
        .unwrap_or_default()
}

fn unavailable(e: S3Error) -> Error {
    Error::unavailable(Dependency::ObjectStore, e)
}

fn clean_tag(tag: &str) -> ObjectTag {
    tag.trim_matches('"').to_owned()
}

impl BlobStore for S3BlobStore {
    fn presign_put(&self, key: &str, length: Option<u64>, lifetime: Duration) -> Result<String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(super::local::UPLOAD_CONTENT_TYPE),
        );
        if let Some(length) = length {
            headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(length),
            );
        }
        self.bucket
            .presign_put(key, lifetime.as_secs() as u32, Some(headers), None)
            .map_err(|e| Error::internal(format!("cannot sign an upload URL: {e}")))
    }

    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, ObjectTag)>> {
        match self.bucket.get_object(key) {
            Ok(response) => {
                let tag = response
                    .headers()
                    .get("etag")
                    .map(|t| clean_tag(t))
                    .unwrap_or_default();
                // Taken over, not copied: the body of a large document is in memory once.
                Ok(Some((Vec::<u8>::from(response.into_bytes()), tag)))
            }
            Err(S3Error::HttpFailWithBody(404, _)) => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn get_within(&self, key: &str, limit: u64) -> Result<Option<(Vec<u8>, ObjectTag)>> {
        // A range request: the bucket sends at most limit + 1 bytes, so one more than the limit
        // shows the object is too large without reading the rest of it.
        match self.bucket.get_object_range(key, 0, Some(limit)) {
            Ok(response) => {
                if response.bytes().len() as u64 > limit {
                    return Err(Error::StoredTooLarge { limit });
                }
                let tag = response
                    .headers()
                    .get("etag")
                    .map(|t| clean_tag(t))
                    .unwrap_or_default();
                // Taken over, not copied: the body of a large document is in memory once.
                Ok(Some((Vec::<u8>::from(response.into_bytes()), tag)))
            }
            Err(S3Error::HttpFailWithBody(404, _)) => Ok(None),
            // No byte satisfies the range: the object is empty.
            Err(S3Error::HttpFailWithBody(416, _)) => self.get(key),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn head(&self, key: &str) -> Result<Option<ObjectTag>> {
        match self.bucket.head_object(key) {
            Ok((head, 200)) => Ok(Some(
                head.e_tag.as_deref().map(clean_tag).unwrap_or_default(),
            )),
            Ok((_, 404)) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(None),
            Ok((_, status)) => Err(Error::unavailable(
                Dependency::ObjectStore,
                format!("HEAD {key} answered HTTP {status}"),
            )),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ObjectTag> {
        let response = self
            .bucket
            .put_object_with_content_type(key, bytes, super::local::UPLOAD_CONTENT_TYPE)
            .map_err(unavailable)?;
        Ok(response
            .headers()
            .get("etag")
            .map(|t| clean_tag(t))
            .unwrap_or_default())
    }

    fn delete(&self, key: &str) -> Result<()> {
        match self.bucket.delete_object(key) {
            Ok(_) | Err(S3Error::HttpFailWithBody(404, _)) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    fn ping(&self) -> Result<()> {
        self.check_bucket()
            .map_err(|e| Error::unavailable(Dependency::ObjectStore, e))
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
