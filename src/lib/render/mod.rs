//! The share page: one ShareData document rendered into one self-contained HTML page (plus a
//! Markdown transcript and the status pages), pure and deterministic.
//!
//! Everything here is sans-IO: the HTTP layer hands in a parsed document and gets a string.
//! The page needs no JavaScript: it is whole without it. It loads nothing but
//! [`stylesheet_path`] and [`live_script_path`] from its own origin (the script follows the share
//! live: it adds new and changed messages), so it works under `default-src 'none'; script-src
//! 'self'; connect-src 'self'; style-src 'self'; img-src 'self' data:`. The script tag is the
//! page's only one, and nothing inline: a document cannot bring script.
//!
//! What the server adds: the page as `text/html; charset=utf-8` under the CSP above, the
//! transcript as `text/markdown; charset=utf-8` (it is the document's text, unescaped, so it
//! must never be served as HTML), both with `X-Content-Type-Options: nosniff`, and
//! [`STYLESHEET`] at [`stylesheet_path`] as `text/css`, cacheable forever.
//!
//! Invariants:
//! - every string from the document reaches the HTML through [`util::escape_into`], the
//!   markdown renderer (raw HTML becomes text, links are `http(s)`/`mailto` only) or syntect
//!   (which escapes); the only `data:` URLs emitted are checked raster images;
//! - a missing, mistyped or unknown field changes what is shown, never whether the page renders;
//! - the output depends only on the document (times come from it, in UTC), so pages can be
//!   cached and snapshot-tested;
//! - each subagent session of the document is rendered once, nested at most
//!   `model::MAX_NESTING` deep, whatever its calls claim (`model::SubagentPlan`);
//! - highlighting is bounded per block and per page (see [`highlight`]), so render time grows
//!   with the document's size and not with syntect's speed on it.

mod highlight;
mod markdown;
mod page;
mod tools;
mod transcript;
mod util;

#[cfg(test)]
mod tests;

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

pub use highlight::warm_up;
pub use page::render_page;
pub use transcript::render_transcript_markdown;

/// What the page needs to know about where it is served.
pub struct PageContext<'a> {
    /// Absolute URL of this page, for `og:url` and the link to the Markdown transcript.
    pub share_url: &'a str,
}

/// The one stylesheet of every page: layout, both colour schemes and the syntax colours.
pub const STYLESHEET: &str = include_str!("style.css");

static STYLESHEET_PATH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(STYLESHEET.as_bytes());
    let mut hex = String::with_capacity(10);
    for b in &digest[..5] {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("/assets/style-{hex}.css")
});

/// Where the page links [`STYLESHEET`]; the name carries a hash of the content, so the server
/// can serve it as immutable.
pub fn stylesheet_path() -> &'static str {
    STYLESHEET_PATH.as_str()
}

/// The live-follow script: listens to the share's event stream and adds what changed.
pub const LIVE_SCRIPT: &str = include_str!("live.js");

static LIVE_SCRIPT_PATH: LazyLock<String> =
    LazyLock::new(|| format!("/assets/live-{}.js", short_hash(LIVE_SCRIPT)));

/// Where the share page loads [`LIVE_SCRIPT`], under a content-hashed name.
pub fn live_script_path() -> &'static str {
    LIVE_SCRIPT_PATH.as_str()
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(10);
    for b in &digest[..5] {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The page's one script tag (the tests look for it, and for no other).
pub fn live_script_tag() -> String {
    format!("<script src=\"{}\" defer></script>", live_script_path())
}

/// Whether `id` can be a message's `data-id` on the page (see [`page::message_id`]).
pub fn is_message_id(id: &str) -> bool {
    page::is_message_id(id)
}

/// The part of a rendered page from the message whose `data-id` is `after` to the end of the
/// messages; every message when the page has no such one (or `after` is empty).
pub fn messages_from<'a>(html: &'a [u8], after: &str) -> &'a [u8] {
    page::messages_from(html, after)
}

/// A page for a share that cannot be shown (404, 410, 500...), in the same look as the share page.
pub fn render_status_page(status: u16, title: &str, sentence: &str) -> String {
    let mut out = String::with_capacity(1024);
    page::head(&mut out, title, sentence, None, false);
    out.push_str("<main class=\"status\"><p class=\"code-num\">");
    out.push_str(&status.to_string());
    out.push_str("</p><h1>");
    util::escape_into(&mut out, title);
    out.push_str("</h1><p>");
    util::escape_into(&mut out, sentence);
    out.push_str("</p></main>\n");
    page::foot(&mut out, None);
    out
}
