//! Placeholder renderer (replaced by the full share page renderer).

use crate::model::ShareData;

pub struct PageContext<'a> {
    pub share_url: &'a str,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub fn render_page(doc: &ShareData, ctx: &PageContext) -> String {
    let title = doc.session["title"].as_str().unwrap_or("OpenCode session");
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>{}</title><link rel=\"stylesheet\" href=\"{}\"><meta property=\"og:url\" content=\"{}\"></head><body><h1>{}</h1>",
        esc(title),
        stylesheet_path(),
        esc(ctx.share_url),
        esc(title)
    );
    for m in &doc.messages {
        for p in &m.parts {
            if let Some(t) = p["text"].as_str() {
                out.push_str(&format!("<p>{}</p>", esc(t)));
            }
        }
    }
    out.push_str("</body></html>");
    out
}

pub fn render_transcript_markdown(doc: &ShareData) -> String {
    let mut out = String::new();
    for m in &doc.messages {
        for p in &m.parts {
            if let Some(t) = p["text"].as_str() {
                out.push_str(t);
                out.push_str("\n\n");
            }
        }
    }
    out
}

pub fn render_status_page(status: u16, title: &str, sentence: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\"><title>{status} {}</title></head><body><h1>{}</h1><p>{}</p></body></html>",
        esc(title),
        esc(title),
        esc(sentence)
    )
}

pub const STYLESHEET: &str = "body{font-family:sans-serif}";

pub fn stylesheet_path() -> &'static str {
    "/assets/style-placeholder.css"
}
