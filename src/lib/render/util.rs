//! Small helpers shared by the page and the transcript: lenient JSON access, escaping, and
//! the formatting of times, durations, money and token counts.

use crate::calendar::civil_from_days;

use serde_json::Value;
use std::fmt::Write as _;

/// Field `key` of `v` as a string; anything else (missing, number, object) is `None`.
pub fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Field `key` of `v` as a non-empty string.
pub fn nonempty<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    str_field(v, key).filter(|s| !s.trim().is_empty())
}

/// A number, also when a writer stored it as a numeric string.
pub fn num(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
}

pub fn num_field(v: &Value, key: &str) -> Option<f64> {
    num(v.get(key))
}

/// A count such as a token number: non-negative, saturating.
pub fn count_field(v: &Value, key: &str) -> u64 {
    num_field(v, key).map_or(0, |n| if n > 0.0 { n as u64 } else { 0 })
}

/// Epoch milliseconds at `v.time.<key>`.
pub fn time_field(v: &Value, key: &str) -> Option<i64> {
    v.get("time")
        .and_then(|t| num_field(t, key))
        .map(|n| n as i64)
}

/// Appends `s` with the five HTML-significant characters escaped; safe in text and in quoted
/// attribute values.
pub fn escape_into(out: &mut String, s: &str) {
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// The longest prefix of `s` with at most `max` bytes that ends on a character boundary.
pub fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One line of text for a summary: whitespace collapsed, cut at `max` characters with an ellipsis.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut n = 0;
    for word in s.split_whitespace() {
        if n > 0 {
            out.push(' ');
        }
        for c in word.chars() {
            if n >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            n += 1;
        }
        n += 1;
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `0.0221839` → `$0.0222`; amounts of a dollar or more get cents only.
pub fn money(c: f64) -> String {
    if c.abs() >= 1.0 {
        format!("${c:.2}")
    } else {
        format!("${c:.4}")
    }
}

/// Epoch milliseconds → `2026-11-24 01:19:23 UTC`; `None` outside years 1..=9999, where a
/// timestamp can only be garbage.
pub fn utc_datetime(ms: i64) -> Option<String> {
    // Years 1..=9999 are roughly ±253e12 ms around the epoch.
    if !(-62_135_596_800_000..=253_402_300_799_999).contains(&ms) {
        return None;
    }
    let secs = ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    Some(format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    ))
}

/// Epoch milliseconds → `01:19:23` (the date is in the page header).
pub fn utc_time(ms: i64) -> Option<String> {
    utc_datetime(ms).map(|s| s[11..19].to_string())
}

/// Machine-readable form for `<time datetime=...>`.
pub fn iso(ms: i64) -> Option<String> {
    utc_datetime(ms).map(|s| format!("{}T{}Z", &s[..10], &s[11..19]))
}

/// A duration in milliseconds → `850 ms`, `4.2 s`, `3 min 5 s`, `2 h 4 min`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms} ms");
    }
    if ms < 60_000 {
        return format!("{:.1} s", ms as f64 / 1000.0);
    }
    let s = ms / 1000;
    if s < 3600 {
        return format!("{} min {} s", s / 60, s % 60);
    }
    let mut out = String::new();
    let _ = write!(out, "{} h {} min", s / 3600, s / 60 % 60);
    out
}

/// Token counts of a message, a step or a session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub reasoning: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Tokens {
    pub fn from_value(v: Option<&Value>) -> Tokens {
        let Some(v) = v else {
            return Tokens::default();
        };
        let cache = v.get("cache").unwrap_or(&Value::Null);
        Tokens {
            input: count_field(v, "input"),
            output: count_field(v, "output"),
            reasoning: count_field(v, "reasoning"),
            cache_read: count_field(cache, "read"),
            cache_write: count_field(cache, "write"),
        }
    }

    pub fn add(&mut self, o: Tokens) {
        self.input = self.input.saturating_add(o.input);
        self.output = self.output.saturating_add(o.output);
        self.reasoning = self.reasoning.saturating_add(o.reasoning);
        self.cache_read = self.cache_read.saturating_add(o.cache_read);
        self.cache_write = self.cache_write.saturating_add(o.cache_write);
    }

    pub fn is_zero(self) -> bool {
        self == Tokens::default()
    }

    /// `8,068 in · 135 out · 34 reasoning · 4,249 cache read`, zero fields left out.
    pub fn summary(self) -> String {
        let mut parts = Vec::with_capacity(5);
        for (n, label) in [
            (self.input, "in"),
            (self.output, "out"),
            (self.reasoning, "reasoning"),
            (self.cache_read, "cache read"),
            (self.cache_write, "cache write"),
        ] {
            if n > 0 {
                parts.push(format!("{} {label}", thousands(n)));
            }
        }
        parts.join(" · ")
    }
}

/// Pretty JSON for the generic views; never fails.
pub fn pretty_json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// The file extension (or the whole name for `Makefile`-like files) used to pick a syntax.
pub fn syntax_token_for_path(path: &str) -> &str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => name,
    }
}

/// Shortens an absolute path under the session's directory to a relative one.
pub fn relative<'a>(path: &'a str, dir: Option<&str>) -> &'a str {
    if let Some(dir) = dir.filter(|d| d.len() > 1)
        && let Some(rest) = path.strip_prefix(dir)
        && let Some(rest) = rest.strip_prefix('/')
        && !rest.is_empty()
    {
        return rest;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(114_160), "114,160");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(money(0.022_183_9), "$0.0222");
        assert_eq!(money(12.345), "$12.35");
        assert_eq!(
            utc_datetime(1_795_479_558_853).as_deref(),
            Some("2026-11-24 00:19:18 UTC")
        );
        assert_eq!(utc_datetime(0).as_deref(), Some("1970-01-01 00:00:00 UTC"));
        assert_eq!(utc_datetime(i64::MAX), None);
        assert_eq!(iso(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(4_200), "4.2 s");
        assert_eq!(duration(185_000), "3 min 5 s");
        assert_eq!(duration(7_440_000), "2 h 4 min");
        assert_eq!(clip("héllo", 2), "h");
        assert_eq!(one_line("a\n  b   c", 10), "a b c");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(syntax_token_for_path("/x/y/util.py"), "py");
        assert_eq!(syntax_token_for_path("Makefile"), "Makefile");
        assert_eq!(syntax_token_for_path(".bashrc"), ".bashrc");
        assert_eq!(
            relative("/home/dev/calc/src/a.py", Some("/home/dev/calc")),
            "src/a.py"
        );
        assert_eq!(
            relative("/etc/passwd", Some("/home/dev/calc")),
            "/etc/passwd"
        );
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
