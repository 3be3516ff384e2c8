//! Drawing the app: `impl Widget for &App`, so a frame is a pure function of the state and tests
//! draw into ratatui's `TestBackend`.
//!
//! The list writes only the rows that fit on screen, straight into the buffer: with 10,000 shares a
//! frame still touches a screenful of rows, never builds one widget per share.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};

use super::app::{App, Busy, Focus, Mode, PreviewPane, PreviewState, Status};
use super::backend::{LocalState, ShareRow};
use super::fmt::{clean, host, relative};

const DIM: Style = Style::new().fg(Color::DarkGray);
const HEADER: Style = Style::new().add_modifier(Modifier::BOLD);
const BUSY: Style = Style::new().fg(Color::Yellow);
const ERROR: Style = Style::new().fg(Color::Red);

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        // An error gets up to three lines, so a long reason is read, not cut.
        let status_lines = match &self.status {
            Some(Status::Error(e)) if self.mode != Mode::Filter => (e.chars().count() + 2)
                .div_ceil(area.width.max(1) as usize)
                .clamp(1, 3)
                as u16,
            _ => 1,
        };
        let [top, body, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(status_lines),
        ])
        .areas(area);
        self.render_title(top, buf);
        match &self.preview {
            Some(pane) => {
                let [list, preview] =
                    Layout::horizontal([Constraint::Percentage(38), Constraint::Percentage(62)])
                        .areas(body);
                self.render_list(list, buf, true);
                self.render_preview(pane, preview, buf);
            }
            None => self.render_list(body, buf, false),
        }
        self.render_status(bottom, buf);
        match &self.mode {
            Mode::Confirm(row) => render_confirm(row, area, buf),
            Mode::Review(row, review) => render_review(row, review, area, buf),
            Mode::Help => render_help(area, buf),
            Mode::Normal | Mode::Filter => {}
        }
    }
}

impl App {
    fn render_title(&self, area: Rect, buf: &mut Buffer) {
        let count = if self.filter.is_empty() {
            format!("{} shares", self.rows.len())
        } else {
            format!(
                "{} of {} shares match /{}",
                self.visible.len(),
                self.rows.len(),
                clean(&self.filter)
            )
        };
        let line = Line::from(vec![
            Span::styled(" bshare ", Style::new().fg(Color::Black).bg(Color::Cyan)),
            Span::raw(" "),
            Span::styled(count, DIM),
        ]);
        buf.set_line(area.x, area.y, &line, area.width);
    }

    fn render_list(&self, area: Rect, buf: &mut Buffer, narrow: bool) {
        let block = Block::new().borders(if narrow {
            Borders::RIGHT
        } else {
            Borders::NONE
        });
        let inner = block.inner(area);
        block.border_style(DIM).render(area, buf);
        if inner.height < 2 || inner.width < 10 {
            return;
        }
        let columns = Columns::for_width(inner.width, narrow);
        let header = Rect { height: 1, ..inner };
        columns.draw_header(header, buf);
        let rows_area = Rect {
            y: inner.y + 1,
            height: inner.height - 1,
            ..inner
        };
        let height = rows_area.height as usize;
        self.list_height.set(height);

        if self.visible.is_empty() {
            let text = if self.loading {
                format!("{} Loading shares…", self.spinner())
            } else if self.rows.is_empty() && matches!(self.status, Some(Status::Error(_))) {
                "Could not read the list of shares; the reason is below. Press r to try again."
                    .into()
            } else if self.rows.is_empty() {
                "No shares yet. Share a session with `bshare share` or from OpenCode.".into()
            } else {
                format!("No share matches “{}”.", clean(&self.filter))
            };
            Paragraph::new(text)
                .style(DIM)
                .wrap(Wrap { trim: true })
                .render(
                    Rect {
                        x: rows_area.x + 1,
                        width: rows_area.width - 1,
                        ..rows_area
                    },
                    buf,
                );
            return;
        }

        // Keep the selection on screen, moving the window as little as possible.
        let mut offset = self.list_offset.get();
        if self.selected < offset {
            offset = self.selected;
        } else if self.selected >= offset + height {
            offset = self.selected + 1 - height;
        }
        offset = offset.min(self.visible.len().saturating_sub(height));
        self.list_offset.set(offset);

        let end = (offset + height).min(self.visible.len());
        for (y, pos) in (offset..end).enumerate() {
            let row = &self.rows[self.visible[pos]];
            let line_area = Rect {
                y: rows_area.y + y as u16,
                height: 1,
                ..rows_area
            };
            let selected = pos == self.selected;
            let style = match (selected, self.focus) {
                (false, _) => Style::new(),
                (true, Focus::List) => Style::new().add_modifier(Modifier::REVERSED),
                (true, Focus::Preview) => Style::new().bg(Color::DarkGray),
            };
            buf.set_style(line_area, style);
            columns.draw_row(self, row, line_area, buf);
        }
    }

    fn render_preview(&self, pane: &PreviewPane, area: Rect, buf: &mut Buffer) {
        let title = if pane.row.title.is_empty() {
            pane.row.share_id.clone()
        } else {
            clean(&pane.row.title)
        };
        let border = if self.focus == Focus::Preview {
            Style::new().fg(Color::Cyan)
        } else {
            DIM
        };
        let block = Block::new()
            .borders(Borders::TOP)
            .border_style(border)
            .title(Line::from(format!(" {title} ")).style(HEADER));
        let inner = block.inner(area);
        block.render(area, buf);
        let inner = Rect {
            x: inner.x + 1,
            width: inner.width.saturating_sub(1),
            ..inner
        };
        pane.height.set(inner.height as usize);
        match &pane.state {
            PreviewState::Loading => {
                Paragraph::new(format!("{} Loading {}…", self.spinner(), pane.row.share_id))
                    .style(BUSY)
                    .render(inner, buf);
            }
            PreviewState::Failed(e) => {
                Paragraph::new(format!("Could not load the session: {}", clean(e)))
                    .style(ERROR)
                    .wrap(Wrap { trim: true })
                    .render(inner, buf);
            }
            PreviewState::Ready(preview) => {
                let (scroll, at_end) = preview.render(inner, buf, pane.scroll.get());
                pane.scroll.set(scroll);
                let position = if scroll == 0 {
                    " top ".to_owned()
                } else if at_end {
                    " end ".to_owned()
                } else {
                    format!(" line {} ", scroll + 1)
                };
                let w = position.chars().count() as u16;
                if area.width > w + 2 {
                    buf.set_string(area.right() - w - 1, area.y, position, border);
                }
            }
        }
    }

    fn render_status(&self, area: Rect, buf: &mut Buffer) {
        if self.mode == Mode::Filter {
            let line = Line::from(vec![
                Span::styled("/", Style::new().fg(Color::Cyan)),
                Span::raw(clean(&self.filter)),
                Span::styled("█", DIM),
                Span::styled("   enter: keep  esc: clear", DIM),
            ]);
            buf.set_line(area.x, area.y, &line, area.width);
            return;
        }
        let mut spans = Vec::new();
        if let Some(busy) = self.busy_summary() {
            spans.push(Span::styled(format!("{} {busy}", self.spinner()), BUSY));
            spans.push(Span::raw("  "));
        } else if self.loading && !self.rows.is_empty() {
            spans.push(Span::styled(
                format!("{} refreshing…", self.spinner()),
                BUSY,
            ));
            spans.push(Span::raw("  "));
        }
        match &self.status {
            Some(Status::Error(e)) => spans.push(Span::styled(format!("✗ {}", clean(e)), ERROR)),
            Some(Status::Info(m)) => spans.push(Span::raw(clean(m))),
            None if spans.is_empty() => {
                let hints = if self.focus == Focus::Preview && self.preview.is_some() {
                    "j k scroll  space b page  g G top/end  tab list  esc back  s sync  d unshare  o open  c copy  ? help"
                } else {
                    "enter preview  / filter  s sync  d unshare  o open  c copy  r refresh  ? help  q quit"
                };
                spans.push(Span::styled(hints, DIM));
            }
            None => {}
        }
        Paragraph::new(Line::from(spans))
            .wrap(Wrap { trim: false })
            .render(area, buf);
    }

    /// "syncing share0001…", or how many jobs run when there are several.
    fn busy_summary(&self) -> Option<String> {
        let mut jobs: Vec<_> = self.busy.iter().collect();
        jobs.sort_by(|a, b| a.0.share_id.cmp(&b.0.share_id));
        let (key, kind) = jobs.first()?;
        let verb = busy_word(**kind);
        Some(if jobs.len() == 1 {
            format!("{verb} {}…", key.share_id)
        } else {
            format!("{verb} {} and {} more…", key.share_id, jobs.len() - 1)
        })
    }
}

fn busy_word(kind: Busy) -> &'static str {
    match kind {
        Busy::Syncing => "syncing",
        Busy::Unsharing => "unsharing",
    }
}

/// Column widths of the list for one screen width; columns that do not fit are left out.
struct Columns {
    title: u16,
    id: u16,
    server: u16,
    shared: u16,
    synced: u16,
    local: u16,
}

impl Columns {
    fn for_width(width: u16, narrow: bool) -> Self {
        let synced = 13;
        if narrow {
            return Self {
                title: width.saturating_sub(synced + 1),
                id: 0,
                server: 0,
                shared: 0,
                synced,
                local: 0,
            };
        }
        let (id, shared, local) = (13, 11, 8);
        let server = if width >= 100 { 22 } else { 0 };
        let fixed = id + server + shared + synced + local + 1;
        Self {
            title: width.saturating_sub(fixed).max(8),
            id,
            server,
            shared,
            synced,
            local,
        }
    }

    fn cells(&self) -> [(u16, usize); 6] {
        [
            (self.title, 0),
            (self.id, 1),
            (self.server, 2),
            (self.shared, 3),
            (self.synced, 4),
            (self.local, 5),
        ]
    }

    fn draw(&self, area: Rect, buf: &mut Buffer, texts: [(String, Style); 6]) {
        let mut x = area.x + 1;
        for (width, i) in self.cells() {
            if width == 0 || x >= area.right() {
                continue;
            }
            let room = width.min(area.right() - x);
            let (text, style) = &texts[i];
            // One blank column between cells, so a cut title never touches the next cell.
            buf.set_stringn(x, area.y, text, room.saturating_sub(1) as usize, *style);
            x += width;
        }
    }

    fn draw_header(&self, area: Rect, buf: &mut Buffer) {
        let h = |s: &str| (s.to_owned(), HEADER.fg(Color::Blue));
        self.draw(
            area,
            buf,
            [
                h("Title"),
                h("Id"),
                h("Server"),
                h("Shared"),
                h("Synced"),
                h("Local"),
            ],
        );
    }

    fn draw_row(&self, app: &App, row: &ShareRow, area: Rect, buf: &mut Buffer) {
        let key = row.key();
        let mut title = if row.title.is_empty() {
            ("(untitled)".to_owned(), DIM)
        } else {
            (clean(&row.title), Style::new())
        };
        if row.made_by_opencode {
            title.0.push_str(" (OpenCode)");
        }
        if row.expires_at.is_some() {
            let when = crate::listing::expires(row.expires_at, app.now);
            title.0.push_str(&if when == "expired" {
                " · expired".to_owned()
            } else {
                format!(" · expires {when}")
            });
        }
        let synced = match app.busy.get(&key) {
            Some(kind) => (format!("{} {}…", app.spinner(), busy_word(*kind)), BUSY),
            None => (relative(app.now, row.updated_at), Style::new()),
        };
        let local = match app.local.get(&key) {
            Some(LocalState::Changed) => ("changed".to_owned(), BUSY),
            Some(LocalState::Same) => ("same".to_owned(), DIM),
            Some(LocalState::Gone) => ("gone".to_owned(), ERROR),
            Some(LocalState::Unknown) | None => ("—".to_owned(), DIM),
        };
        self.draw(
            area,
            buf,
            [
                title,
                (clean(&row.share_id), DIM),
                (clean(host(&row.server)), DIM),
                (relative(app.now, row.created_at), Style::new()),
                synced,
                local,
            ],
        );
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Findings shown in the review; the rest are counted.
const REVIEW_FINDINGS: usize = 8;

fn render_review(row: &ShareRow, review: &crate::sharing::Review, area: Rect, buf: &mut Buffer) {
    let shown = review.report.findings.len().min(REVIEW_FINDINGS);
    let title = if review.title.is_empty() {
        "(untitled)".to_owned()
    } else {
        clean(&review.title)
    };
    let mut text = vec![
        Line::from(vec![
            Span::raw("Upload "),
            Span::styled(format!("“{title}”"), HEADER),
            Span::raw(format!(" to {}?", clean(&row.url))),
        ]),
        Line::styled(
            format!(
                "{} messages{}, {} KiB",
                review.messages,
                match review.subagents {
                    0 => String::new(),
                    1 => ", with 1 subagent session".to_owned(),
                    n => format!(", with {n} subagent sessions"),
                },
                review.bytes.div_ceil(1024)
            ),
            DIM,
        ),
        Line::raw(""),
    ];
    let total = review.report.total();
    if !review.redact {
        text.push(Line::styled(
            "Redaction is off (--no-redact): the session goes as it is, secrets and all.",
            HEADER.fg(Color::Red),
        ));
    } else if total == 0 {
        text.push(Line::raw("No secrets found."));
    } else {
        text.push(Line::raw(format!(
            "{total} secret{} will be replaced by [REDACTED:…]:",
            if total == 1 { "" } else { "s" }
        )));
        for f in review.report.findings.iter().take(shown) {
            let place = f
                .message
                .map_or_else(|| "session".to_owned(), |n| format!("message {n}"));
            text.push(Line::styled(
                format!("  {:<24} {:<12} {}", f.rule, place, clean(&f.excerpt)),
                DIM,
            ));
        }
        if review.report.findings.len() > shown {
            text.push(Line::styled(
                format!("  … and {} more", review.report.findings.len() - shown),
                DIM,
            ));
        }
    }
    text.push(Line::raw(""));
    text.push(Line::from(vec![
        Span::styled("y", HEADER),
        Span::raw(" upload    "),
        Span::styled("n", HEADER),
        Span::raw(" cancel"),
    ]));
    // Borders, and a line for the link to wrap onto.
    let popup = centered(area, 76, text.len() as u16 + 3);
    Clear.render(popup, buf);
    Paragraph::new(text)
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(" Review before upload "))
        .render(popup, buf);
}

fn render_confirm(row: &ShareRow, area: Rect, buf: &mut Buffer) {
    let popup = centered(area, 56, 8);
    Clear.render(popup, buf);
    let title = if row.title.is_empty() {
        "(untitled)".to_owned()
    } else {
        clean(&row.title)
    };
    let text = vec![
        Line::from(vec![
            Span::raw("Unshare "),
            Span::styled(format!("“{title}”"), HEADER),
            Span::raw(format!(" ({})?", clean(&row.share_id))),
        ]),
        Line::raw(""),
        Line::styled("The link stops working for everyone who has it.", DIM),
        Line::raw(""),
        Line::from(vec![
            Span::styled("y", HEADER.fg(Color::Red)),
            Span::raw(" unshare    "),
            Span::styled("n", HEADER),
            Span::raw(" keep it"),
        ]),
    ];
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .block(
            Block::bordered()
                .title(" Unshare ")
                .border_style(Style::new().fg(Color::Red)),
        )
        .render(popup, buf);
}

const HELP: &[(&str, &str)] = &[
    ("↑ ↓  j k", "move / scroll the preview"),
    ("PgUp PgDn  g G", "page, first, last"),
    ("enter  →", "preview the session"),
    ("tab", "switch between list and preview"),
    ("esc", "back / close preview / clear filter"),
    ("/", "filter by title, id, session or server"),
    ("s", "re-sync the share from the local session"),
    ("d", "unshare (asks first)"),
    ("o", "open the share page in the browser"),
    ("c", "copy the link"),
    ("r", "refresh the list"),
    ("?", "this help"),
    ("q  ctrl-c", "quit"),
];

fn render_help(area: Rect, buf: &mut Buffer) {
    let popup = centered(area, 62, HELP.len() as u16 + 4);
    Clear.render(popup, buf);
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:>16}  "), HEADER.fg(Color::Cyan)),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled("any key closes this help", DIM));
    Paragraph::new(lines)
        .block(Block::bordered().title(" Keys "))
        .render(popup, buf);
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyCode;

    use super::super::app::tests::press;
    use super::super::app::{Action, Outcome};
    use super::*;
    use crate::model::ShareData;

    /// 2026-11-24 12:00 UTC: every relative time in the snapshots is measured from here.
    const NOW: i64 = 1_795_521_600_000;
    const MIN: i64 = 60_000;

    fn rows() -> Vec<ShareRow> {
        let titles = [
            (
                "Add multiply, tests and CLI",
                "q7Xk2mPa9LzR",
                5 * MIN,
                2 * MIN,
            ),
            (
                "Fix login redirect loop",
                "ab12cd34",
                3 * 60 * MIN,
                3 * 60 * MIN,
            ),
            (
                "Refactor the storage layer",
                "Zz9_-kLm0pQr",
                2 * 1440 * MIN,
                30 * MIN,
            ),
            ("", "untitled1", 45 * 1440 * MIN, 45 * 1440 * MIN),
            ("Login page styles", "loginStyles1", 9 * 1440 * MIN, 0),
        ];
        titles
            .iter()
            .enumerate()
            .map(|(i, (title, id, created_ago, synced_ago))| ShareRow {
                share_id: (*id).into(),
                session_id: format!("ses_{i}"),
                title: (*title).into(),
                url: format!("https://share.example.com/share/{id}"),
                server: if i == 2 {
                    "http://127.0.0.1:8080".into()
                } else {
                    "https://share.example.com".into()
                },
                secret: "s".into(),
                created_at: NOW - created_ago,
                updated_at: if *synced_ago == 0 {
                    0
                } else {
                    NOW - synced_ago
                },
                made_by_opencode: i == 1,
                expires_at: None,
            })
            .collect()
    }

    fn app() -> App {
        let mut app = App::new(NOW);
        app.on_outcome(Outcome::Shares(Ok(rows())));
        let keys: Vec<_> = app.rows.iter().map(ShareRow::key).collect();
        app.on_outcome(Outcome::LocalStates(vec![
            (keys[0].clone(), LocalState::Changed),
            (keys[1].clone(), LocalState::Same),
            (keys[2].clone(), LocalState::Unknown),
            (keys[3].clone(), LocalState::Gone),
        ]));
        app
    }

    fn draw(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| f.render_widget(app, f.area())).unwrap();
        terminal.backend().to_string()
    }

    fn long_fixture() -> ShareData {
        let path = format!(
            "{}/tests/data/opencode-1.18.33-long.sharedata.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn list() {
        insta::assert_snapshot!(draw(&app(), 110, 12));
    }

    #[test]
    fn list_while_syncing() {
        let mut app = super::super::app::tests::reviewed(app());
        assert!(matches!(
            app.on_key(press(KeyCode::Char('s'))),
            Action::Resync(_)
        ));
        insta::assert_snapshot!(draw(&app, 80, 10));
    }

    #[test]
    fn filtered_list() {
        let mut app = app();
        app.on_key(press(KeyCode::Char('/')));
        for c in "login".chars() {
            app.on_key(press(KeyCode::Char(c)));
        }
        insta::assert_snapshot!(draw(&app, 110, 8));
    }

    #[test]
    fn empty_registry() {
        let mut app = App::new(NOW);
        app.on_outcome(Outcome::Shares(Ok(Vec::new())));
        insta::assert_snapshot!(draw(&app, 80, 5));
    }

    #[test]
    fn unreadable_registry() {
        let mut app = App::new(NOW);
        app.on_outcome(Outcome::Shares(Err(
            "/home/u/.local/share/bshare/shares.json is not a valid share registry (EOF while parsing a value at line 1 column 9); fix or move it away, bshare will not overwrite it".into(),
        )));
        insta::assert_snapshot!(draw(&app, 100, 6));
    }

    #[test]
    fn preview() {
        let mut app = app();
        let Action::LoadDocument(row) = app.on_key(press(KeyCode::Enter)) else {
            panic!("expected a document load");
        };
        let loading = draw(&app, 110, 30);
        assert!(loading.contains("Loading q7Xk2mPa9LzR"), "{loading}");
        app.on_outcome(Outcome::Document(row.key(), Ok(Box::new(long_fixture()))));
        insta::assert_snapshot!("preview_top", draw(&app, 110, 30));
        for _ in 0..3 {
            app.on_key(press(KeyCode::PageDown));
        }
        // Draw once so the page size is known, then page down for real.
        draw(&app, 110, 30);
        for _ in 0..3 {
            app.on_key(press(KeyCode::PageDown));
        }
        insta::assert_snapshot!("preview_scrolled", draw(&app, 110, 30));
        app.on_key(press(KeyCode::Char('G')));
        insta::assert_snapshot!("preview_end", draw(&app, 110, 30));
    }

    /// The long session read with its subagent from the test data: the explore subagent's own
    /// tool call and output sit under the task call that ran it, behind a bar.
    #[test]
    fn preview_nests_the_subagent_under_its_task_call() {
        let (_tmp, dir) = crate::opencode::tests::unpack_datadir();
        let doc = crate::opencode::OpenCodeData::open(&dir)
            .unwrap()
            .load_with_children("ses_df514140fffe4u9ZGLczLpllLo", u64::MAX)
            .unwrap()
            .unwrap()
            .into_share_data("q7Xk2mPa9LzR", NOW - 5 * MIN, NOW - 2 * MIN);
        assert_eq!(doc.children.len(), 1);
        let mut app = app();
        let Action::LoadDocument(row) = app.on_key(press(KeyCode::Enter)) else {
            panic!("expected a document load");
        };
        app.on_outcome(Outcome::Document(row.key(), Ok(Box::new(doc))));
        // Scroll until the task call is the first line of the pane.
        let mut screen = draw(&app, 110, 30);
        for _ in 0..2_000 {
            if screen
                .lines()
                .nth(2)
                .is_some_and(|l| l.contains("⚙ task Scan for TODO"))
            {
                break;
            }
            app.on_key(press(KeyCode::Down));
            screen = draw(&app, 110, 30);
        }
        assert!(
            screen.contains("┃ Subagent Scan for TODO comments (@explore subagent)"),
            "{screen}"
        );
        assert!(screen.contains("┃ ⚙ grep TODO"), "{screen}");
        assert!(
            screen.contains("┃   │   Line 7: # TODO: support floats"),
            "{screen}"
        );
        insta::assert_snapshot!("preview_subagent", screen);
    }

    #[test]
    fn preview_of_markdown_code_table_and_attachment() {
        let path = format!(
            "{}/tests/data/opencode-1.18.33-short.sharedata.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: ShareData = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let preview = super::super::preview::Preview::new(doc);
        let area = Rect::new(0, 0, 72, 80);
        let mut buf = Buffer::empty(area);
        preview.render(area, &mut buf, 0);
        let text: Vec<String> = (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_owned()
            })
            .collect();
        insta::assert_snapshot!(text.join("\n").trim_end());
    }

    #[test]
    fn confirmation() {
        let mut app = app();
        app.on_key(press(KeyCode::Char('d')));
        insta::assert_snapshot!(draw(&app, 80, 12));
    }

    #[test]
    fn error_status() {
        let mut app = super::super::app::tests::reviewed(app());
        let Action::Resync(row) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a resync");
        };
        app.on_outcome(Outcome::Resynced(
            row.key(),
            Err("https://share.example.com answered 403: wrong secret for this share".into()),
        ));
        insta::assert_snapshot!(draw(&app, 110, 8));
    }

    #[test]
    fn review_before_the_first_upload() {
        let mut app = app();
        let Action::Review(row) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a review");
        };
        app.on_outcome(Outcome::Reviewed(
            row.key(),
            Ok(super::super::app::tests::review_of(&row.title)),
        ));
        insta::assert_snapshot!(draw(&app, 96, 20));
        // With redaction off the review says so instead of "No secrets found".
        let mut off = super::super::app::tests::review_of(&row.title);
        off.redact = false;
        off.report = crate::redact::Report::default();
        app.mode = crate::tui::app::Mode::Review(row, Box::new(off));
        let screen = draw(&app, 96, 20);
        assert!(screen.contains("Redaction is off"), "{screen}");
        assert!(!screen.contains("No secrets found"), "{screen}");
    }

    #[test]
    fn help() {
        let mut app = app();
        app.on_key(press(KeyCode::Char('?')));
        insta::assert_snapshot!(draw(&app, 80, 20));
    }

    #[test]
    fn list_draws_only_visible_rows_and_follows_the_selection() {
        let mut app = App::new(NOW);
        let many = (0..10_000)
            .map(|i| ShareRow {
                share_id: format!("share{i:05}"),
                session_id: format!("ses_{i}"),
                title: format!("Session {i}"),
                url: String::new(),
                server: "http://127.0.0.1:8080".into(),
                secret: String::new(),
                created_at: NOW - i64::from(i) * MIN,
                updated_at: 0,
                made_by_opencode: false,
                expires_at: None,
            })
            .collect();
        app.on_outcome(Outcome::Shares(Ok(many)));
        app.on_key(press(KeyCode::End));
        let screen = draw(&app, 80, 8);
        assert!(screen.contains("Session 9999"), "{screen}");
        assert!(!screen.contains("Session 0 "), "{screen}");
        assert_eq!(app.list_offset.get(), 10_000 - 5);
    }
}
