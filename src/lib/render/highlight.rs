//! Syntax highlighting with syntect into CSS classes (the colours live in `style.css`), with
//! budgets so a huge session cannot make a page render slowly.

use std::sync::LazyLock;

use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

use super::util::escape_into;

/// Class prefix of every syntect span, so theme classes never meet the page's own.
pub const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "s-" };

/// Largest block that is highlighted at all; bigger ones are shown as plain text.
pub const BLOCK_LIMIT: usize = 16 * 1024;
/// Bytes highlighted per page, in document order; code after that is plain text.
///
/// syntect is slow on some grammars (a few MB/s for Python on the reference machine), so this caps
/// highlighting at tens of milliseconds however long the session is, while the rest of the page
/// renders at hundreds of MB/s.
pub const PAGE_LIMIT: usize = 64 * 1024;

/// Loaded on first use: parsing the syntax dump takes tens of milliseconds.
static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(two_face::syntax::extra_newlines);

/// Forces the syntax set to load (the server may call this at start, benchmarks do).
pub fn warm_up() {
    LazyLock::force(&SYNTAXES);
}

/// Highlighting state of one page render.
pub struct Highlighter {
    remaining: usize,
}

impl Default for Highlighter {
    fn default() -> Self {
        Highlighter {
            remaining: PAGE_LIMIT,
        }
    }
}

impl Highlighter {
    /// Appends `code` as the inside of a `<pre><code>`: highlighted when a syntax matches
    /// `token` (a fence language, a file extension or a file name) and the budgets allow,
    /// escaped plain text otherwise.
    pub fn code(&mut self, out: &mut String, code: &str, token: Option<&str>) {
        if let Some(syntax) = self.pick(code, token)
            && let Some(html) = highlight(code, syntax)
        {
            self.remaining -= code.len();
            out.push_str(&html);
            return;
        }
        escape_into(out, code);
    }

    fn pick(&self, code: &str, token: Option<&str>) -> Option<&'static SyntaxReference> {
        let token = token?.trim();
        if token.is_empty()
            || code.is_empty()
            || code.len() > BLOCK_LIMIT
            || code.len() > self.remaining
        {
            return None;
        }
        let set: &'static SyntaxSet = &SYNTAXES;
        let syntax = set
            .find_syntax_by_token(token)
            .or_else(|| set.find_syntax_by_token(&token.to_ascii_lowercase()))?;
        // Plain text gains nothing from a parse.
        (syntax.name != "Plain Text").then_some(syntax)
    }
}

fn highlight(code: &str, syntax: &SyntaxReference) -> Option<String> {
    let set: &SyntaxSet = &SYNTAXES;
    let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, set, CLASS_STYLE);
    for line in LinesWithEndings::from(code) {
        generator
            .parse_html_for_line_which_includes_newline(line)
            .ok()?;
    }
    Some(generator.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_known_languages_and_escapes_the_rest() {
        let mut h = Highlighter::default();
        let mut out = String::new();
        h.code(&mut out, "def f(x):\n    return \"<b>\"\n", Some("py"));
        assert!(out.contains("<span class=\"s-"), "{out}");
        assert!(out.contains("&lt;b&gt;"), "{out}");
        assert!(!out.contains("<b>"));

        let mut out = String::new();
        h.code(&mut out, "<script>x</script>", Some("no-such-language"));
        assert_eq!(out, "&lt;script&gt;x&lt;/script&gt;");
    }

    #[test]
    fn budgets_fall_back_to_plain_text() {
        let mut h = Highlighter::default();
        let big = "x = 1\n".repeat(BLOCK_LIMIT / 6 + 1);
        let mut out = String::new();
        h.code(&mut out, &big, Some("py"));
        assert!(!out.contains("<span"));

        let line = "x = 1\n".repeat(1000);
        let mut spans = 0;
        for _ in 0..(PAGE_LIMIT / line.len() + 5) {
            let mut out = String::new();
            h.code(&mut out, &line, Some("py"));
            spans += usize::from(out.contains("<span"));
        }
        assert_eq!(spans, PAGE_LIMIT / line.len());
    }
}
