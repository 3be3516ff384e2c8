//! Small text helpers shared by the list and the preview: times, host names, terminal-safe text.

pub use crate::calendar::utc_date as date;

/// `2026-11-24 13:05` for epoch milliseconds (UTC).
pub fn date_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{} {:02}:{:02}", date(ms), secs / 3600, secs / 60 % 60)
}

/// How long ago `then` was, in the fewest characters that stay readable: `just now`, `5m ago`,
/// `3h ago`, `12d ago`, then the date. `never` for 0.
pub fn relative(now: i64, then: i64) -> String {
    if then <= 0 {
        return "never".into();
    }
    let secs = (now - then) / 1000;
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s if s < 30 * 86_400 => format!("{}d ago", s / 86_400),
        _ => date(then),
    }
}

/// The host (and port) of a server URL, which is what tells two servers apart in a narrow column.
pub fn host(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// Text from a session or a server made safe for a terminal cell: tabs become spaces and other
/// control characters (escape sequences in command output above all) are dropped, so nothing in a
/// document can move the cursor or recolour the screen.
pub fn clean(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date_time(1_795_479_563_248), "2026-11-24 00:19");
        assert_eq!(date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn relative_times() {
        let now = 1_000_000_000_000;
        assert_eq!(relative(now, 0), "never");
        assert_eq!(relative(now, now - 10_000), "just now");
        assert_eq!(relative(now, now - 5 * 60_000), "5m ago");
        assert_eq!(relative(now, now - 3 * 3_600_000), "3h ago");
        assert_eq!(relative(now, now - 2 * 86_400_000), "2d ago");
        assert_eq!(relative(now, now - 40 * 86_400_000), "2001-07-31");
    }

    #[test]
    fn hosts_and_cleaning() {
        assert_eq!(host("https://share.example.com/x"), "share.example.com");
        assert_eq!(host("http://127.0.0.1:8080"), "127.0.0.1:8080");
        assert_eq!(clean("a\tb\x1b[31mred\r\n"), "a    b[31mred");
    }
}
