//! Markdown to HTML with pulldown-cmark, made safe for untrusted text: raw HTML is shown as
//! text, links keep only `http(s)` and `mailto` targets, code blocks are highlighted.

use pulldown_cmark::{
    CodeBlockKind, CowStr, Event, HeadingLevel, LinkType, Options, Parser, Tag, TagEnd,
};

use super::highlight::Highlighter;
use super::util::escape_into;

const OPTIONS: Options = Options::ENABLE_TABLES
    .union(Options::ENABLE_FOOTNOTES)
    .union(Options::ENABLE_STRIKETHROUGH)
    .union(Options::ENABLE_TASKLISTS);

/// The href for a link target, or `None` when it must not become a link.
///
/// Only absolute `http:`, `https:` and `mailto:` targets pass: everything else (`javascript:`,
/// `data:`, relative paths that would resolve against this server) stays plain text.
pub fn safe_href(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url
        .get(..8)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let ok = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:");
    (ok && !url.chars().any(char::is_control)).then_some(url)
}

/// Appends an `<a>` start tag for a checked href.
pub fn open_link(out: &mut String, href: &str) {
    out.push_str("<a href=\"");
    escape_into(out, href);
    out.push_str("\" rel=\"nofollow noopener noreferrer\">");
}

/// Appends `text` rendered as markdown. `block` numbers the call within the page: footnote
/// labels are prefixed with it, so two messages' `[^1]` do not share an id.
pub fn render(out: &mut String, text: &str, hl: &mut Highlighter, block: usize) {
    let mut links: Vec<bool> = Vec::new();
    let mut code: Option<(String, String)> = None;
    let events = Parser::new_ext(text, OPTIONS).filter_map(|event| match event {
        // Raw HTML from the document is only ever text.
        Event::Html(s) | Event::InlineHtml(s) => {
            if let Some((_, buf)) = code.as_mut() {
                buf.push_str(&s);
                return None;
            }
            Some(Event::Text(s))
        }
        Event::Start(Tag::CodeBlock(kind)) => {
            let lang = match kind {
                CodeBlockKind::Fenced(info) => {
                    info.split([' ', ',', '{']).next().unwrap_or("").to_string()
                }
                CodeBlockKind::Indented => String::new(),
            };
            code = Some((lang, String::new()));
            None
        }
        Event::Text(s) if code.is_some() => {
            if let Some((_, buf)) = code.as_mut() {
                buf.push_str(&s);
            }
            None
        }
        Event::End(TagEnd::CodeBlock) => {
            let (lang, buf) = code.take().unwrap_or_default();
            let mut html = String::with_capacity(buf.len() * 2 + 64);
            html.push_str("<pre class=\"code\"><code>");
            hl.code(
                &mut html,
                &buf,
                Some(lang.as_str()).filter(|l| !l.is_empty()),
            );
            html.push_str("</code></pre>\n");
            Some(Event::Html(CowStr::from(html)))
        }
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            ..
        }) => {
            let target = if link_type == LinkType::Email {
                format!("mailto:{dest_url}")
            } else {
                dest_url.to_string()
            };
            let href = safe_href(&target);
            links.push(href.is_some());
            href.map(|h| {
                let mut tag = String::new();
                open_link(&mut tag, h);
                Event::InlineHtml(CowStr::from(tag))
            })
        }
        // An image would load from another host (and the CSP forbids it): show it as a link.
        Event::Start(Tag::Image { dest_url, .. }) => {
            let href = safe_href(&dest_url);
            links.push(href.is_some());
            let mut tag = String::new();
            if let Some(h) = href {
                open_link(&mut tag, h);
            }
            tag.push_str("[image: ");
            Some(Event::InlineHtml(CowStr::from(tag)))
        }
        Event::End(TagEnd::Image) => {
            let closes = links.pop().unwrap_or(false);
            Some(Event::InlineHtml(CowStr::from(if closes {
                "]</a>"
            } else {
                "]"
            })))
        }
        Event::End(TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then(|| Event::InlineHtml(CowStr::from("</a>"))),
        // The page has its own h1 and h2; headings in messages start below them.
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: shift(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => Some(Event::End(TagEnd::Heading(shift(level)))),
        Event::FootnoteReference(label) => Some(Event::FootnoteReference(CowStr::from(format!(
            "f{block}-{label}"
        )))),
        Event::Start(Tag::FootnoteDefinition(label)) => Some(Event::Start(
            Tag::FootnoteDefinition(CowStr::from(format!("f{block}-{label}"))),
        )),
        other => Some(other),
    });
    pulldown_cmark::html::push_html(out, events);
}

fn shift(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 => HeadingLevel::H3,
        HeadingLevel::H2 => HeadingLevel::H4,
        HeadingLevel::H3 => HeadingLevel::H5,
        _ => HeadingLevel::H6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(s: &str) -> String {
        let mut out = String::new();
        render(&mut out, s, &mut Highlighter::default(), 7);
        out
    }

    #[test]
    fn raw_html_is_text() {
        let out = md("hi <script>alert(1)</script>\n\n<div onclick=\"x\">block</div>\n");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<div"), "{out}");
        assert!(
            out.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{out}"
        );
    }

    #[test]
    fn links_keep_only_safe_schemes() {
        let out = md(
            "[a](javascript:alert(1)) [b](JaVaScRiPt:x) [c](data:text/html,x) [d](https://ok.example/?a=1&b=\"2\") <mailto:me@x.org> [e](/relative)",
        );
        // The refused targets stay as their plain link text; the safe ones become links, escaped.
        assert_eq!(
            out,
            "<p>a b c <a href=\"https://ok.example/?a=1&amp;b=&quot;2&quot;\" rel=\"nofollow noopener noreferrer\">d</a> \
             <a href=\"mailto:me@x.org\" rel=\"nofollow noopener noreferrer\">mailto:me@x.org</a> e</p>\n"
        );
    }

    #[test]
    fn images_become_links_and_load_nothing() {
        let out = md("![x](https://evil.example/t.png) ![y](javascript:alert(1)) ![z](/local.png)");
        assert_eq!(
            out,
            "<p><a href=\"https://evil.example/t.png\" rel=\"nofollow noopener noreferrer\">[image: x]</a> \
             [image: y] [image: z]</p>\n"
        );
    }

    #[test]
    fn gfm_features() {
        let out = md(
            "| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\n~~gone~~ note[^1]\n\n[^1]: the note\n\n# Big\n\n```python\nx = 1\n```\n",
        );
        assert!(out.contains("<table>"), "{out}");
        assert!(out.contains("type=\"checkbox\""), "{out}");
        assert!(out.contains("<del>gone</del>"), "{out}");
        assert!(
            out.contains("<div class=\"footnote-definition\" id=\"f7-1\">"),
            "{out}"
        );
        assert!(out.contains("href=\"#f7-1\""), "{out}");
        assert!(out.contains("<h3>Big</h3>"), "{out}");
        assert!(
            out.contains("<pre class=\"code\"><code><span class=\"s-"),
            "{out}"
        );
    }
}
