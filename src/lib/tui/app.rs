//! The TUI's state and what keys and finished jobs do to it. No terminal, no threads, no clock:
//! keys come in as `KeyEvent`s, work goes out as [`Action`]s, results come back as [`Outcome`]s,
//! and the time is whatever the caller says, so every behaviour here is a plain unit test.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::backend::{LocalState, RowKey, ShareRow};
use super::preview::Preview;
use crate::model::ShareData;
use crate::sharing::Review;

/// Work the app asks for; the runner hands it to a worker thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    None,
    Quit,
    /// Read the list of shares again.
    Reload,
    /// Ask whether the local sessions changed since their last upload.
    CheckLocal(Vec<ShareRow>),
    LoadDocument(ShareRow),
    /// Work out what an upload of this share would send, for the review before it.
    Review(ShareRow),
    Resync(ShareRow),
    Unshare(ShareRow),
    Open(ShareRow),
    CopyLink(ShareRow),
}

/// The result of an [`Action`], coming back from a worker.
#[derive(Debug)]
pub enum Outcome {
    Shares(Result<Vec<ShareRow>, String>),
    LocalStates(Vec<(RowKey, LocalState)>),
    Document(RowKey, Result<Box<ShareData>, String>),
    Reviewed(RowKey, Result<Review, String>),
    Resynced(RowKey, Result<String, String>),
    Unshared(RowKey, Result<String, String>),
    Opened(RowKey, Result<(), String>),
    Copied(RowKey, Result<String, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    /// Typing into the filter.
    Filter,
    /// Waiting for y/n before unsharing this share.
    Confirm(ShareRow),
    /// Showing what the first upload of this share would send; y uploads, n does not.
    Review(ShareRow, Box<Review>),
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Preview,
}

/// A job in flight for one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    Syncing,
    Unsharing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Info(String),
    Error(String),
}

pub enum PreviewState {
    Loading,
    Failed(String),
    Ready(Box<Preview>),
}

pub struct PreviewPane {
    pub row: ShareRow,
    pub state: PreviewState,
    /// First line shown; the drawing clamps it once the end of the document is known.
    pub scroll: Cell<usize>,
    /// Lines the pane showed last frame, for page-wise scrolling.
    pub height: Cell<usize>,
}

pub struct App {
    pub rows: Vec<ShareRow>,
    /// Lower-cased title, id, session and server of each row, built once per load so filtering
    /// 10,000 rows is a scan of plain strings.
    haystacks: Vec<String>,
    /// Indices into `rows` that pass the filter, in display order.
    pub visible: Vec<usize>,
    /// Index into `visible`.
    pub selected: usize,
    /// First visible row shown; kept by the drawing so the selection stays on screen.
    pub list_offset: Cell<usize>,
    /// Rows the list showed last frame, for page-wise moves.
    pub list_height: Cell<usize>,
    pub filter: String,
    pub mode: Mode,
    pub focus: Focus,
    pub preview: Option<PreviewPane>,
    pub busy: HashMap<RowKey, Busy>,
    /// How each share's local session compares with its last upload.
    pub local: HashMap<RowKey, LocalState>,
    pub status: Option<Status>,
    pub loading: bool,
    /// Frame counter for the spinner.
    pub tick: usize,
    /// Epoch milliseconds, set by the caller.
    pub now: i64,
    /// Shares whose upload the user reviewed and confirmed in this run: later re-syncs go
    /// straight through.
    pub reviewed: HashSet<RowKey>,
}

const SPINNER: [&str; 8] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧"];

impl App {
    pub fn new(now: i64) -> Self {
        Self {
            rows: Vec::new(),
            haystacks: Vec::new(),
            visible: Vec::new(),
            selected: 0,
            list_offset: Cell::new(0),
            list_height: Cell::new(10),
            filter: String::new(),
            mode: Mode::Normal,
            focus: Focus::List,
            preview: None,
            busy: HashMap::new(),
            local: HashMap::new(),
            status: None,
            loading: true,
            tick: 0,
            now,
            reviewed: HashSet::new(),
        }
    }

    pub fn spinner(&self) -> &'static str {
        SPINNER[self.tick % SPINNER.len()]
    }

    /// True while anything is in flight, so the runner keeps the spinner turning.
    pub fn is_busy(&self) -> bool {
        self.loading
            || !self.busy.is_empty()
            || self
                .preview
                .as_ref()
                .is_some_and(|p| matches!(p.state, PreviewState::Loading))
    }

    pub fn selected_row(&self) -> Option<&ShareRow> {
        self.visible
            .get(self.selected)
            .and_then(|&i| self.rows.get(i))
    }

    /// Replaces the rows, newest share first, keeping the selection on the same share.
    pub fn set_rows(&mut self, mut rows: Vec<ShareRow>) {
        let keep = self.selected_row().map(ShareRow::key);
        rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        self.haystacks = rows
            .iter()
            .map(|r| {
                format!(
                    "{}\n{}\n{}\n{}",
                    r.title, r.share_id, r.session_id, r.server
                )
                .to_lowercase()
            })
            .collect();
        self.rows = rows;
        self.apply_filter();
        if let Some(key) = keep
            && let Some(pos) = self.visible.iter().position(|&i| self.rows[i].key() == key)
        {
            self.selected = pos;
        }
    }

    /// Every word of the filter must appear (case-insensitively) in the title, id, session id
    /// or server.
    fn apply_filter(&mut self) {
        let needle = self.filter.to_lowercase();
        let words: Vec<&str> = needle.split_whitespace().collect();
        self.visible = self
            .haystacks
            .iter()
            .enumerate()
            .filter(|(_, h)| words.iter().all(|w| h.contains(w)))
            .map(|(i, _)| i)
            .collect();
        self.selected = self.selected.min(self.visible.len().saturating_sub(1));
    }

    fn move_selection(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    fn scroll_preview(&mut self, delta: isize) {
        if let Some(p) = &self.preview {
            p.scroll.set(p.scroll.get().saturating_add_signed(delta));
        }
    }

    /// What a key press does. Only presses count: terminals that report releases and repeats
    /// would otherwise act twice.
    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind != KeyEventKind::Press {
            return Action::None;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                Action::None
            }
            Mode::Confirm(row) => self.on_confirm_key(key, row),
            Mode::Review(row, _) => self.on_review_key(key, row),
            Mode::Filter => self.on_filter_key(key),
            Mode::Normal => self.on_normal_key(key),
        }
    }

    fn on_confirm_key(&mut self, key: KeyEvent, row: ShareRow) -> Action {
        match key.code {
            KeyCode::Char('y' | 'Y') => {
                self.mode = Mode::Normal;
                self.start_job(row, Busy::Unsharing)
            }
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.status = Some(Status::Info("Unshare cancelled.".into()));
                Action::None
            }
            _ => Action::None,
        }
    }

    fn on_review_key(&mut self, key: KeyEvent, row: ShareRow) -> Action {
        match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => {
                self.mode = Mode::Normal;
                self.reviewed.insert(row.key());
                self.start_job(row, Busy::Syncing)
            }
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.status = Some(Status::Info("Upload cancelled; nothing was sent.".into()));
                Action::None
            }
            _ => Action::None,
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) -> Action {
        match key.code {
            KeyCode::Esc => {
                self.filter.clear();
                self.mode = Mode::Normal;
                self.apply_filter();
            }
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Backspace => {
                self.filter.pop();
                self.apply_filter();
            }
            KeyCode::Down => self.move_selection(1),
            KeyCode::Up => self.move_selection(-1),
            KeyCode::Char(c) => {
                self.filter.push(c);
                self.selected = 0;
                self.apply_filter();
            }
            _ => {}
        }
        Action::None
    }

    fn on_normal_key(&mut self, key: KeyEvent) -> Action {
        let page = self.list_height.get().max(1) as isize;
        let preview_page = self
            .preview
            .as_ref()
            .map_or(10, |p| p.height.get().max(2) as isize - 1);
        let in_preview = self.focus == Focus::Preview && self.preview.is_some();
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Char('?') => self.mode = Mode::Help,
            KeyCode::Char('/') => {
                self.mode = Mode::Filter;
                self.focus = Focus::List;
            }
            KeyCode::Esc => {
                if in_preview {
                    self.focus = Focus::List;
                } else if self.preview.is_some() {
                    self.preview = None;
                } else if !self.filter.is_empty() {
                    self.filter.clear();
                    self.apply_filter();
                } else {
                    self.status = None;
                }
            }
            KeyCode::Tab if self.preview.is_some() => {
                self.focus = match self.focus {
                    Focus::List => Focus::Preview,
                    Focus::Preview => Focus::List,
                };
            }
            KeyCode::Down | KeyCode::Char('j') if in_preview => self.scroll_preview(1),
            KeyCode::Up | KeyCode::Char('k') if in_preview => self.scroll_preview(-1),
            KeyCode::PageDown | KeyCode::Char(' ') if in_preview => {
                self.scroll_preview(preview_page);
            }
            KeyCode::PageUp | KeyCode::Char('b') if in_preview => {
                self.scroll_preview(-preview_page);
            }
            KeyCode::Home | KeyCode::Char('g') if in_preview => self.scroll_preview(isize::MIN),
            KeyCode::End | KeyCode::Char('G') if in_preview => self.scroll_preview(isize::MAX),
            KeyCode::Left | KeyCode::Char('h') if in_preview => self.focus = Focus::List,
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::PageDown => self.move_selection(page),
            KeyCode::PageUp => self.move_selection(-page),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => self.move_selection(isize::MAX),
            KeyCode::Enter | KeyCode::Right | KeyCode::Char('l' | 'p') => {
                return self.open_preview();
            }
            KeyCode::Char('r') => {
                self.loading = true;
                return Action::Reload;
            }
            KeyCode::Char('s') => {
                if let Some(row) = self.selected_row().cloned() {
                    // The first upload of a share in this run is reviewed first, as
                    // `bshare share --dry-run` would show it.
                    if !self.reviewed.contains(&row.key()) && !self.busy.contains_key(&row.key()) {
                        self.status = Some(Status::Info(format!(
                            "Checking what {} would upload…",
                            row.share_id
                        )));
                        return Action::Review(row);
                    }
                    return self.start_job(row, Busy::Syncing);
                }
            }
            KeyCode::Char('d' | 'x') | KeyCode::Delete => {
                if let Some(row) = self.selected_row().cloned() {
                    if self.busy.contains_key(&row.key()) {
                        self.status = Some(Status::Error(format!(
                            "{} is busy; wait for it to finish.",
                            row.share_id
                        )));
                    } else {
                        self.mode = Mode::Confirm(row);
                    }
                }
            }
            KeyCode::Char('o') => {
                if let Some(row) = self.selected_row().cloned() {
                    self.status = Some(Status::Info(format!("Opening {}…", row.url)));
                    return Action::Open(row);
                }
            }
            KeyCode::Char('c' | 'y') => {
                if let Some(row) = self.selected_row().cloned() {
                    return Action::CopyLink(row);
                }
            }
            _ => {}
        }
        Action::None
    }

    fn open_preview(&mut self) -> Action {
        let Some(row) = self.selected_row().cloned() else {
            return Action::None;
        };
        self.focus = Focus::Preview;
        if let Some(p) = &self.preview
            && p.row.key() == row.key()
            && !matches!(p.state, PreviewState::Failed(_))
        {
            return Action::None;
        }
        self.preview = Some(PreviewPane {
            row: row.clone(),
            state: PreviewState::Loading,
            scroll: Cell::new(0),
            height: Cell::new(10),
        });
        Action::LoadDocument(row)
    }

    fn start_job(&mut self, row: ShareRow, kind: Busy) -> Action {
        let key = row.key();
        if let Some(busy) = self.busy.get(&key) {
            let what = match busy {
                Busy::Syncing => "syncing",
                Busy::Unsharing => "unsharing",
            };
            self.status = Some(Status::Error(format!(
                "{} is already {what}.",
                row.share_id
            )));
            return Action::None;
        }
        self.busy.insert(key, kind);
        self.status = None;
        match kind {
            Busy::Syncing => Action::Resync(row),
            Busy::Unsharing => Action::Unshare(row),
        }
    }

    /// Applies a finished job; may ask for more work (a reload after a change).
    pub fn on_outcome(&mut self, outcome: Outcome) -> Action {
        match outcome {
            Outcome::Shares(Ok(rows)) => {
                self.loading = false;
                self.set_rows(rows);
                return Action::CheckLocal(self.rows.clone());
            }
            Outcome::Shares(Err(e)) => {
                self.loading = false;
                self.status = Some(Status::Error(e));
            }
            Outcome::LocalStates(states) => self.local = states.into_iter().collect(),
            Outcome::Document(key, result) => {
                if let Some(p) = &mut self.preview
                    && p.row.key() == key
                {
                    p.state = match result {
                        Ok(doc) => PreviewState::Ready(Box::new(Preview::new(*doc))),
                        Err(e) => {
                            self.status = Some(Status::Error(e.clone()));
                            PreviewState::Failed(e)
                        }
                    };
                }
            }
            Outcome::Reviewed(key, result) => match result {
                Ok(review) => {
                    if self.mode == Mode::Normal
                        && let Some(row) = self.rows.iter().find(|r| r.key() == key).cloned()
                    {
                        self.status = None;
                        self.mode = Mode::Review(row, Box::new(review));
                    }
                }
                Err(e) => self.status = Some(Status::Error(e)),
            },
            Outcome::Resynced(key, result) => {
                self.busy.remove(&key);
                match result {
                    Ok(msg) => {
                        self.status = Some(Status::Info(msg));
                        self.loading = true;
                        return Action::Reload;
                    }
                    Err(e) => self.status = Some(Status::Error(e)),
                }
            }
            Outcome::Unshared(key, result) => {
                self.busy.remove(&key);
                match result {
                    Ok(msg) => {
                        self.status = Some(Status::Info(msg));
                        if self.preview.as_ref().is_some_and(|p| p.row.key() == key) {
                            self.preview = None;
                            self.focus = Focus::List;
                        }
                        let rows = std::mem::take(&mut self.rows)
                            .into_iter()
                            .filter(|r| r.key() != key)
                            .collect();
                        self.set_rows(rows);
                        self.loading = true;
                        return Action::Reload;
                    }
                    Err(e) => self.status = Some(Status::Error(e)),
                }
            }
            Outcome::Opened(key, result) => {
                self.status = Some(match result {
                    Ok(()) => Status::Info(format!("Opened {} in the browser.", key.share_id)),
                    Err(e) => Status::Error(e),
                });
            }
            Outcome::Copied(_, result) => {
                self.status = Some(match result {
                    Ok(msg) => Status::Info(msg),
                    Err(e) => Status::Error(e),
                });
            }
        }
        Action::None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEventState;

    pub fn row(i: usize, title: &str) -> ShareRow {
        ShareRow {
            share_id: format!("share{i:04}"),
            session_id: format!("ses_{i:04}"),
            title: title.into(),
            url: format!("http://127.0.0.1:8080/share/share{i:04}"),
            server: "http://127.0.0.1:8080".into(),
            secret: "secret".into(),
            created_at: 1_000_000 + i as i64,
            updated_at: 2_000_000 + i as i64,
            made_by_opencode: false,
            expires_at: None,
        }
    }

    pub fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn app_with(titles: &[&str]) -> App {
        let mut app = App::new(0);
        let rows = titles.iter().enumerate().map(|(i, t)| row(i, t)).collect();
        assert!(matches!(
            app.on_outcome(Outcome::Shares(Ok(rows))),
            Action::CheckLocal(_)
        ));
        app
    }

    /// As if the user had already reviewed and confirmed an upload of every row.
    pub fn reviewed(mut app: App) -> App {
        let keys: Vec<RowKey> = app.rows.iter().map(ShareRow::key).collect();
        app.reviewed.extend(keys);
        app
    }

    pub fn review_of(title: &str) -> Review {
        let report = crate::redact::Report {
            counts: [("github-token".to_owned(), 2), ("env-secret".to_owned(), 1)].into(),
            findings: vec![
                crate::redact::Finding {
                    rule: "github-token",
                    message: Some(3),
                    excerpt: "ghp_…[40 chars]".into(),
                },
                crate::redact::Finding {
                    rule: "github-token",
                    message: Some(7),
                    excerpt: "ghp_…[40 chars]".into(),
                },
                crate::redact::Finding {
                    rule: "env-secret",
                    message: None,
                    excerpt: "co…[12 chars]".into(),
                },
            ],
        };
        Review {
            session_id: "ses_1".into(),
            title: title.into(),
            server: "https://share.example.com".into(),
            share_id: Some("share0000".into()),
            bytes: 48_000,
            messages: 12,
            subagents: 0,
            redact: true,
            report,
        }
    }

    #[test]
    fn the_first_sync_of_a_share_is_reviewed_and_confirmed() {
        let mut app = app_with(&["a"]);
        let Action::Review(r) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a review first");
        };
        assert!(app.busy.is_empty(), "nothing is uploading yet");
        assert_eq!(
            app.on_outcome(Outcome::Reviewed(r.key(), Ok(review_of("a")))),
            Action::None
        );
        assert!(matches!(app.mode, Mode::Review(ref row, _) if row.title == "a"));
        // Other keys do nothing while the review is open; n cancels and sends nothing.
        assert_eq!(app.on_key(press(KeyCode::Char('s'))), Action::None);
        assert_eq!(app.on_key(press(KeyCode::Char('n'))), Action::None);
        assert_eq!(app.mode, Mode::Normal);
        assert!(matches!(app.status, Some(Status::Info(ref m)) if m.contains("nothing was sent")));
        // Cancelled is not confirmed: the next s reviews again; y uploads.
        let Action::Review(r) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a review again");
        };
        app.on_outcome(Outcome::Reviewed(r.key(), Ok(review_of("a"))));
        let Action::Resync(r) = app.on_key(press(KeyCode::Char('y'))) else {
            panic!("expected the upload");
        };
        app.on_outcome(Outcome::Resynced(r.key(), Ok("Synced.".into())));
        // Confirmed once in this run: later syncs go straight through.
        assert!(matches!(
            app.on_key(press(KeyCode::Char('s'))),
            Action::Resync(_)
        ));
        // A review that fails says why, and uploads nothing.
        let mut app = app_with(&["b"]);
        let Action::Review(r) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a review");
        };
        assert_eq!(
            app.on_outcome(Outcome::Reviewed(r.key(), Err("no session".into()))),
            Action::None
        );
        assert_eq!(app.status, Some(Status::Error("no session".into())));
        assert_eq!(app.mode, Mode::Normal);
    }

    fn keys(app: &mut App, text: &str) -> Vec<Action> {
        text.chars()
            .map(|c| app.on_key(press(KeyCode::Char(c))))
            .collect()
    }

    #[test]
    fn newest_share_first_and_moving_stays_in_bounds() {
        let mut app = app_with(&["old", "middle", "new"]);
        assert_eq!(app.selected_row().unwrap().title, "new");
        app.on_key(press(KeyCode::Up));
        assert_eq!(app.selected, 0);
        keys(&mut app, "jjjj");
        assert_eq!(app.selected_row().unwrap().title, "old");
        app.on_key(press(KeyCode::Char('g')));
        assert_eq!(app.selected, 0);
        app.on_key(press(KeyCode::End));
        assert_eq!(app.selected, 2);
    }

    #[test]
    fn filter_narrows_and_escape_clears() {
        let mut app = app_with(&["Fix login bug", "Add multiply", "Login page styles"]);
        assert_eq!(app.on_key(press(KeyCode::Char('/'))), Action::None);
        assert_eq!(app.mode, Mode::Filter);
        // Typing into the filter never triggers commands, even on command letters.
        assert!(keys(&mut app, "LOGIN q").iter().all(|a| *a == Action::None));
        assert_eq!(app.filter, "LOGIN q");
        assert_eq!(app.visible.len(), 0);
        app.on_key(press(KeyCode::Backspace));
        app.on_key(press(KeyCode::Backspace));
        assert_eq!(app.visible.len(), 2);
        app.on_key(press(KeyCode::Enter));
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.visible.len(), 2, "filter kept after Enter");
        app.on_key(press(KeyCode::Esc));
        assert_eq!(app.visible.len(), 3);
        assert!(app.filter.is_empty());
    }

    #[test]
    fn filter_matches_every_word_anywhere() {
        let mut app = app_with(&["Fix login bug", "Add multiply"]);
        app.on_key(press(KeyCode::Char('/')));
        keys(&mut app, "bug share0000");
        assert_eq!(app.visible.len(), 1);
        assert_eq!(app.selected_row().unwrap().title, "Fix login bug");
    }

    #[test]
    fn enter_loads_the_preview_once() {
        let mut app = app_with(&["a", "b"]);
        let Action::LoadDocument(row) = app.on_key(press(KeyCode::Enter)) else {
            panic!("expected a document load");
        };
        assert_eq!(row.title, "b");
        assert_eq!(app.focus, Focus::Preview);
        assert!(app.is_busy());
        // Already loading: Enter again asks for nothing.
        app.on_key(press(KeyCode::Tab));
        assert_eq!(app.on_key(press(KeyCode::Enter)), Action::None);
        // In the preview, j scrolls the preview rather than moving the list.
        app.on_key(press(KeyCode::Char('j')));
        assert_eq!(app.selected, 0);
        assert_eq!(app.preview.as_ref().unwrap().scroll.get(), 1);
        app.on_key(press(KeyCode::Esc));
        assert_eq!(app.focus, Focus::List);
        app.on_key(press(KeyCode::Char('j')));
        assert_eq!(app.selected, 1);
        app.on_key(press(KeyCode::Esc));
        assert!(app.preview.is_none());
    }

    #[test]
    fn a_late_document_for_another_share_is_ignored() {
        let mut app = app_with(&["a", "b"]);
        app.on_key(press(KeyCode::Enter));
        let other = row(0, "a").key();
        app.on_outcome(Outcome::Document(other, Err("boom".into())));
        assert!(matches!(
            app.preview.as_ref().unwrap().state,
            PreviewState::Loading
        ));
        assert_eq!(app.status, None);
    }

    #[test]
    fn resync_marks_the_row_busy_until_done_then_reloads() {
        let mut app = reviewed(app_with(&["a"]));
        let Action::Resync(r) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a resync");
        };
        assert_eq!(app.busy.get(&r.key()), Some(&Busy::Syncing));
        // A second press while it runs does not start another upload.
        assert_eq!(app.on_key(press(KeyCode::Char('s'))), Action::None);
        assert!(matches!(app.status, Some(Status::Error(ref e)) if e.contains("already syncing")));
        let next = app.on_outcome(Outcome::Resynced(r.key(), Ok("Synced share0000.".into())));
        assert_eq!(next, Action::Reload);
        assert!(app.busy.is_empty());
        assert_eq!(app.status, Some(Status::Info("Synced share0000.".into())));
    }

    #[test]
    fn errors_land_in_the_status_line() {
        let mut app = reviewed(app_with(&["a"]));
        let Action::Resync(r) = app.on_key(press(KeyCode::Char('s'))) else {
            panic!("expected a resync");
        };
        assert_eq!(
            app.on_outcome(Outcome::Resynced(r.key(), Err("server said no".into()))),
            Action::None
        );
        assert_eq!(app.status, Some(Status::Error("server said no".into())));
    }

    #[test]
    fn unshare_asks_first() {
        let mut app = app_with(&["a", "b"]);
        assert_eq!(app.on_key(press(KeyCode::Char('d'))), Action::None);
        assert!(matches!(app.mode, Mode::Confirm(ref r) if r.title == "b"));
        // Other keys do nothing while the question is open.
        assert_eq!(app.on_key(press(KeyCode::Char('s'))), Action::None);
        assert_eq!(app.on_key(press(KeyCode::Char('n'))), Action::None);
        assert_eq!(app.mode, Mode::Normal);
        app.on_key(press(KeyCode::Char('d')));
        let Action::Unshare(r) = app.on_key(press(KeyCode::Char('y'))) else {
            panic!("expected an unshare");
        };
        assert_eq!(r.title, "b");
        assert_eq!(
            app.on_outcome(Outcome::Unshared(r.key(), Ok("Unshared.".into()))),
            Action::Reload
        );
        assert_eq!(app.rows.len(), 1);
        assert_eq!(app.selected_row().unwrap().title, "a");
    }

    #[test]
    fn open_copy_refresh_help_quit() {
        let mut app = app_with(&["a"]);
        assert!(matches!(
            app.on_key(press(KeyCode::Char('o'))),
            Action::Open(_)
        ));
        assert!(matches!(
            app.on_key(press(KeyCode::Char('c'))),
            Action::CopyLink(_)
        ));
        assert_eq!(app.on_key(press(KeyCode::Char('r'))), Action::Reload);
        assert!(app.loading);
        app.on_key(press(KeyCode::Char('?')));
        assert_eq!(app.mode, Mode::Help);
        assert_eq!(
            app.on_key(press(KeyCode::Char('q'))),
            Action::None,
            "q closes help"
        );
        assert_eq!(app.mode, Mode::Normal);
        assert_eq!(app.on_key(press(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(
            app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    #[test]
    fn key_releases_are_ignored() {
        let mut app = app_with(&["a"]);
        let release = KeyEvent {
            code: KeyCode::Char('q'),
            modifiers: KeyModifiers::NONE,
            kind: KeyEventKind::Release,
            state: KeyEventState::NONE,
        };
        assert_eq!(app.on_key(release), Action::None);
    }

    #[test]
    fn reload_keeps_the_selection_on_the_same_share() {
        let mut app = app_with(&["a", "b", "c"]);
        app.on_key(press(KeyCode::Char('j')));
        assert_eq!(app.selected_row().unwrap().title, "b");
        let mut rows: Vec<_> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, t)| row(i, t))
            .collect();
        rows.push(row(9, "newest"));
        app.on_outcome(Outcome::Shares(Ok(rows)));
        assert_eq!(app.selected_row().unwrap().title, "b");
    }

    #[test]
    fn filtering_ten_thousand_rows_finds_exactly_the_matches() {
        let mut app = App::new(0);
        let rows: Vec<_> = (0..10_000)
            .map(|i| row(i, &format!("Session number {i}")))
            .collect();
        let expected = rows
            .iter()
            .filter(|r| {
                let all = format!("{} {} {}", r.title, r.share_id, r.session_id).to_lowercase();
                all.contains("number") && all.contains("99")
            })
            .count();
        app.on_outcome(Outcome::Shares(Ok(rows)));
        app.on_key(press(KeyCode::Char('/')));
        keys(&mut app, "NUMBER 99");
        assert!(expected > 100);
        assert_eq!(app.visible.len(), expected);
        assert!(app.visible.iter().all(|&i| {
            let r = &app.rows[i];
            r.title.contains("99") || r.share_id.contains("99")
        }));
    }
}
