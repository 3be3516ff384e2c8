//! The library's one error type and its mapping to HTTP statuses and machine codes.
//!
//! 4xx errors carry a sentence meant for the person or program that sent the request. 5xx errors
//! say nothing internal in the response; the whole chain goes to the server log.

use std::fmt;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed cause kept for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("this request needs the share's secret in the X-Share-Secret header")]
    MissingSecret,
    #[error("the share secret does not match this share")]
    WrongSecret,
    #[error("no share with this id exists")]
    ShareNotFound,
    #[error("this share has no content yet: its owner has not uploaded the session")]
    NotUploaded,
    #[error("this share was deleted by its owner")]
    ShareGone,
    #[error("this share has expired; its content is no longer available")]
    ShareExpired,
    #[error(
        "this server only lets holders of a create token make shares: send it as `Authorization: Bearer <token>`, or for OpenCode put it in the URL (https://<host>/t/<token>)"
    )]
    TokenRequired,
    #[error("this create token is not one this server accepts; ask its operator for a valid one")]
    WrongToken,
    #[error(
        "a share with this id exists or existed before; choose another id or let the server pick one"
    )]
    ShareExists,
    #[error("{what} is {size} bytes, over this server's limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: u64,
        limit: u64,
    },
    #[error(
        "this sync batch has {count} items, over this server's limit of {limit} items per batch; send it in smaller batches"
    )]
    TooManyItems { count: usize, limit: usize },
    /// The stored document cannot be read as a session document: it is not JSON, or not of the
    /// expected shape. The object store answered, but with something unusable (502).
    #[error(
        "the stored session document of this share is damaged ({reason}); its owner can fix it by sharing the session again"
    )]
    DamagedDocument { reason: String },
    #[error("too many requests from this address; try again in {retry_after} seconds")]
    RateLimited { retry_after: u64 },
    #[error(
        "the stored session document is over this server's limit of {limit} bytes, so it is not shown; its owner can share a shorter session"
    )]
    StoredTooLarge { limit: u64 },
    #[error("upload refused: {0}")]
    UploadRefused(&'static str),
    #[error("no such endpoint")]
    RouteNotFound,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("the {dependency} is unavailable; try again shortly")]
    Unavailable {
        dependency: Dependency,
        #[source]
        source: Cause,
    },
    #[error(
        "this server follows as many live pages as it may; the page checks for changes every 10 seconds instead"
    )]
    TooManyStreams,
    /// The queue of pages waiting to be rendered is full.
    #[error("the server is busy rendering other pages; try again in {retry_after} seconds")]
    Busy { retry_after: u64 },
    #[error("internal error")]
    Internal(#[source] Cause),
    /// A configuration the server cannot start with; only ever seen at startup.
    #[error("{0}")]
    Config(String),
}

/// What a 503 was waiting on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Database,
    ObjectStore,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Database => "database",
            Dependency::ObjectStore => "object store",
        })
    }
}

impl Error {
    pub fn internal(cause: impl Into<Cause>) -> Self {
        Error::Internal(cause.into())
    }

    pub fn unavailable(dependency: Dependency, cause: impl Into<Cause>) -> Self {
        Error::Unavailable {
            dependency,
            source: cause.into(),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::BadRequest(_) => 400,
            Error::MissingSecret | Error::TokenRequired => 401,
            Error::WrongSecret | Error::WrongToken | Error::UploadRefused(_) => 403,
            Error::ShareNotFound | Error::NotUploaded | Error::RouteNotFound => 404,
            Error::MethodNotAllowed => 405,
            Error::ShareExists => 409,
            Error::ShareGone | Error::ShareExpired => 410,
            Error::TooLarge { .. } | Error::TooManyItems { .. } => 413,
            Error::RateLimited { .. } => 429,
            Error::Internal(_) | Error::Config(_) => 500,
            Error::StoredTooLarge { .. } | Error::DamagedDocument { .. } => 502,
            Error::Unavailable { .. } | Error::TooManyStreams | Error::Busy { .. } => 503,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::BadRequest(_) => "BAD_REQUEST",
            Error::MissingSecret => "SECRET_REQUIRED",
            Error::WrongSecret => "SECRET_MISMATCH",
            Error::UploadRefused(_) => "UPLOAD_REFUSED",
            Error::ShareNotFound => "SHARE_NOT_FOUND",
            Error::NotUploaded => "NOT_UPLOADED",
            Error::RouteNotFound => "NOT_FOUND",
            Error::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Error::ShareExists => "SHARE_EXISTS",
            Error::ShareGone => "SHARE_DELETED",
            Error::ShareExpired => "SHARE_EXPIRED",
            Error::TokenRequired => "TOKEN_REQUIRED",
            Error::WrongToken => "TOKEN_MISMATCH",
            Error::TooLarge { .. } | Error::TooManyItems { .. } => "TOO_LARGE",
            Error::DamagedDocument { .. } => "DAMAGED_DOCUMENT",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::Internal(_) | Error::Config(_) => "INTERNAL",
            Error::StoredTooLarge { .. } => "DOCUMENT_TOO_LARGE",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::TooManyStreams => "TOO_MANY_STREAMS",
            Error::Busy { .. } => "BUSY",
        }
    }

    /// The sentence for the response body: the message for 4xx and 503, nothing internal for 500.
    pub fn public_message(&self) -> String {
        match self {
            Error::Config(_) => "internal error".to_owned(),
            _ => self.to_string(),
        }
    }

    /// The same error again, for every request that waited on one piece of work (a page render
    /// shared by its concurrent requests); causes are kept as their text.
    #[must_use]
    pub fn duplicate(&self) -> Self {
        let cause = |c: &Cause| -> Cause { c.to_string().into() };
        match self {
            Error::BadRequest(s) => Error::BadRequest(s.clone()),
            Error::MissingSecret => Error::MissingSecret,
            Error::WrongSecret => Error::WrongSecret,
            Error::ShareNotFound => Error::ShareNotFound,
            Error::NotUploaded => Error::NotUploaded,
            Error::ShareGone => Error::ShareGone,
            Error::ShareExpired => Error::ShareExpired,
            Error::TokenRequired => Error::TokenRequired,
            Error::WrongToken => Error::WrongToken,
            Error::ShareExists => Error::ShareExists,
            Error::TooLarge { what, size, limit } => Error::TooLarge {
                what,
                size: *size,
                limit: *limit,
            },
            Error::TooManyItems { count, limit } => Error::TooManyItems {
                count: *count,
                limit: *limit,
            },
            Error::DamagedDocument { reason } => Error::DamagedDocument {
                reason: reason.clone(),
            },
            Error::RateLimited { retry_after } => Error::RateLimited {
                retry_after: *retry_after,
            },
            Error::StoredTooLarge { limit } => Error::StoredTooLarge { limit: *limit },
            Error::UploadRefused(s) => Error::UploadRefused(s),
            Error::RouteNotFound => Error::RouteNotFound,
            Error::MethodNotAllowed => Error::MethodNotAllowed,
            Error::Unavailable { dependency, source } => Error::Unavailable {
                dependency: *dependency,
                source: cause(source),
            },
            Error::TooManyStreams => Error::TooManyStreams,
            Error::Busy { retry_after } => Error::Busy {
                retry_after: *retry_after,
            },
            Error::Internal(c) => Error::Internal(cause(c)),
            Error::Config(s) => Error::Config(s.clone()),
        }
    }

    /// The full chain, for the log only.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            source = cause.source();
        }
        out
    }
}
