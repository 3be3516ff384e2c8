//! Who may do what: creating a share may take a create token (`--create-token`); a share must
//! exist and be live, and changing it takes its secret. Handlers call these before acting; nothing
//! else compares secrets or tokens.

use super::context::Worker;
use super::{Request, routes};
use crate::crypto;
use crate::error::{Error, Result};
use crate::model::{is_valid_share_id, now_millis};
use crate::store::{ShareRow, ShareState};

/// The share `id` as stored, live or not: unknown (or an invalid id) → 404.
pub fn share(w: &mut Worker, id: &str) -> Result<ShareRow> {
    if !is_valid_share_id(id) {
        return Err(Error::ShareNotFound);
    }
    w.store()?.get_share(id)?.ok_or(Error::ShareNotFound)
}

/// `Err` (410) when `row` is deleted or expired now. Read from the row on every request, so an
/// expired share is gone at once on every server, whether or not the sweeper has been.
pub fn check_live(row: &ShareRow) -> Result<()> {
    match row.state(now_millis()) {
        ShareState::Live => Ok(()),
        ShareState::Deleted => Err(Error::ShareGone),
        ShareState::Expired => Err(Error::ShareExpired),
    }
}

/// The live share `id`: unknown → 404, deleted or expired → 410.
pub fn live_share(w: &mut Worker, id: &str) -> Result<ShareRow> {
    let row = share(w, id)?;
    check_live(&row)?;
    Ok(row)
}

/// The secret a request presents: the `X-Share-Secret` header, else the one from its body.
pub fn presented_secret<'a>(req: &'a Request, body_secret: Option<&'a str>) -> Option<&'a str> {
    req.header("x-share-secret")
        .or(body_secret)
        .filter(|s| !s.is_empty())
}

/// Whether `secret` is `row`'s (constant time).
pub fn secret_matches(row: &ShareRow, secret: Option<&str>) -> bool {
    secret.is_some_and(|s| crypto::secret_matches(s, &row.secret_hash))
}

/// The live share `id` for its owner: unknown → 404, deleted or expired → 410, then the secret: missing →
/// 401, wrong → 403.
pub fn owner(
    w: &mut Worker,
    req: &Request,
    id: &str,
    body_secret: Option<&str>,
) -> Result<ShareRow> {
    let row = live_share(w, id)?;
    let secret = presented_secret(req, body_secret).ok_or(Error::MissingSecret)?;
    if !secret_matches(&row, Some(secret)) {
        return Err(Error::WrongSecret);
    }
    Ok(row)
}

/// May this request create a share? Always, on a server without create tokens; else it must
/// present one, as `Authorization: Bearer <token>` or, for stock OpenCode, as the `/t/<token>`
/// path prefix: missing → 401 `TOKEN_REQUIRED`, wrong → 403. The token is hashed and compared
/// with every configured hash in constant time. Wrong tokens count against the client's request
/// limit, so they cannot be guessed faster than any other request is allowed.
pub fn creator(w: &mut Worker, req: &Request) -> Result<()> {
    let hashes = &w.app.config.create_token_hashes;
    if hashes.is_empty() {
        return Ok(());
    }
    let token = req
        .header("authorization")
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        })
        .map(|(_, t)| t.trim())
        .or_else(|| routes::split_token(&req.path).0)
        .filter(|t| !t.is_empty())
        .ok_or(Error::TokenRequired)?;
    let presented = crypto::sha256(token.as_bytes());
    let mut matched = subtle::Choice::from(0);
    for hash in hashes {
        matched |= subtle::ConstantTimeEq::ct_eq(&presented[..], &hash[..]);
    }
    if bool::from(matched) {
        return Ok(());
    }
    let client = w.app.client_hash(req.client);
    if let Err(retry_after) = w.app.limiter.check(client, now_millis()) {
        return Err(Error::RateLimited { retry_after });
    }
    Err(Error::WrongToken)
}
