//! The text tables of `bshare sessions` and `bshare ls`, and the way times read in them.

use std::fmt::Write as _;

use crate::calendar::utc_date;

use crate::opencode::SessionInfo;
use crate::sharing::{Origin, Share};

/// "just now", "5 min ago", "3 h ago", "2 d ago", then the UTC date.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= 0 {
        return "never".into();
    }
    let secs = (now_ms - then_ms) / 1000;
    match secs {
        ..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        86_400..604_800 => format!("{} d ago", secs / 86_400),
        _ => utc_date(then_ms),
    }
}

/// When a share expires, as `bshare ls` and the TUI show it: "in 5 min", "in 3 h", "in 2 d", the
/// UTC date beyond a week, "expired" once past, "never" without an expiry.
pub fn expires(at_ms: Option<i64>, now_ms: i64) -> String {
    let Some(at) = at_ms else {
        return "never".into();
    };
    let secs = (at - now_ms) / 1000;
    match secs {
        ..=0 => "expired".into(),
        1..60 => "in <1 min".into(),
        60..3600 => format!("in {} min", secs / 60),
        3600..86_400 => format!("in {} h", secs / 3600),
        86_400..604_800 => format!("in {} d", secs / 86_400),
        _ => utc_date(at),
    }
}

fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, cell) in cells.enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad));
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// `bshare sessions`: one line per session, newest first.
pub fn sessions_table(sessions: &[SessionInfo], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let title = if s.parent_id.is_some() {
                format!("↳ {}", s.title)
            } else {
                s.title.clone()
            };
            vec![
                s.id.clone(),
                ago(s.updated, now_ms),
                s.messages.to_string(),
                shorten(&title, 50),
                s.directory.clone(),
            ]
        })
        .collect();
    table(&["SESSION", "UPDATED", "MSGS", "TITLE", "DIRECTORY"], &rows)
}

/// `bshare ls`: one line per share, with who made it and whether the session is still there.
pub fn shares_table(shares: &[Share], now_ms: i64) -> String {
    let rows: Vec<Vec<String>> = shares
        .iter()
        .map(|s| {
            let mut notes = Vec::new();
            if s.origin == Origin::OpenCode {
                notes.push("made by OpenCode");
            }
            if s.session_exists == Some(false) {
                notes.push("session deleted");
            }
            if s.origin == Origin::Bshare && s.updated_at == 0 {
                notes.push("upload unfinished");
            }
            vec![
                s.share_id.clone(),
                shorten(&s.title, 40),
                ago(s.updated_at, now_ms),
                expires(s.expires_at, now_ms),
                s.url.clone(),
                notes.join(", "),
            ]
        })
        .collect();
    table(
        &["SHARE", "TITLE", "SYNCED", "EXPIRES", "URL", "NOTE"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        let now = 1_795_479_703_884;
        assert_eq!(ago(now - 5_000, now), "just now");
        assert_eq!(ago(now - 5 * 60_000, now), "5 min ago");
        assert_eq!(ago(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(ago(now - 2 * 86_400_000, now), "2 d ago");
        assert_eq!(ago(now - 30 * 86_400_000, now), "2026-10-25");
        assert_eq!(ago(0, now), "never");
        assert_eq!(expires(None, now), "never");
        assert_eq!(expires(Some(now - 1), now), "expired");
        assert_eq!(expires(Some(now + 90_000), now), "in 1 min");
        assert_eq!(expires(Some(now + 7 * 3_600_000), now), "in 7 h");
        assert_eq!(expires(Some(now + 3 * 86_400_000), now), "in 3 d");
        assert_eq!(expires(Some(now + 30 * 86_400_000), now), "2026-12-24");
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["long cell".into(), "x".into()],
                vec!["é".into(), String::new()],
            ],
        );
        assert_eq!(t, "A          BB\nlong cell  x\né\n");
    }
}
