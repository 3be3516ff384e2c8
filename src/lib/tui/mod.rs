//! `bshare tui`: a terminal browser of the user's shares.
//!
//! How the pieces fit:
//! - [`app`] holds the state and decides what keys do (`App::on_key(KeyEvent) -> Action`), with no
//!   terminal and no threads, so it is unit-tested directly.
//! - [`ui`] draws a frame from the state (`impl Widget for &App`); snapshot tests draw into
//!   ratatui's `TestBackend`.
//! - [`preview`] turns a session into highlighted lines, lazily, a message at a time.
//! - [`backend`] is the one door to the outside world (registry, servers, OpenCode's storage,
//!   browser, clipboard): the [`Backend`] trait, implemented by [`CliBackend`] with the same library
//!   calls as the CLI commands. Its calls may block, so [`run`] makes them on worker threads and
//!   gets the results back over a channel: the thread that draws never waits on the network.
//!
//! The terminal is restored on every way out: normal exit, error, and panic (a panic hook restores
//! it before the default hook prints the message).

pub mod app;
pub mod backend;
mod fmt;
pub mod preview;
pub mod ui;

use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::crossterm::event::{self, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::prelude::CrosstermBackend;

pub use app::{Action, App, Outcome};
pub use backend::{Backend, CliBackend, LocalState, RowKey, ShareRow};

/// How often the screen is redrawn while something is in flight (the spinner's pace).
const TICK: Duration = Duration::from_millis(100);

/// Runs the TUI until the user quits.
pub fn run(backend: Arc<dyn Backend>) -> io::Result<()> {
    // Loading the syntax set takes a moment; do it while the user looks at the list.
    std::thread::spawn(preview::warm_up);
    install_panic_hook();
    let _guard = TerminalGuard::enter()?;
    let mut terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
    let (tx, rx) = mpsc::channel();
    let mut app = App::new(crate::model::now_millis());
    dispatch(&backend, &tx, Action::Reload);
    event_loop(&mut terminal, &mut app, &backend, &tx, &rx)
}

fn event_loop(
    terminal: &mut Terminal<CrosstermBackend<io::Stdout>>,
    app: &mut App,
    backend: &Arc<dyn Backend>,
    tx: &Sender<Outcome>,
    rx: &Receiver<Outcome>,
) -> io::Result<()> {
    let mut dirty = true;
    loop {
        if dirty {
            app.now = crate::model::now_millis();
            terminal.draw(|frame| frame.render_widget(&*app, frame.area()))?;
            dirty = false;
        }
        if event::poll(TICK)? {
            match event::read()? {
                Event::Key(key) => {
                    let action = app.on_key(key);
                    if action == Action::Quit {
                        return Ok(());
                    }
                    dispatch(backend, tx, action);
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        while let Ok(outcome) = rx.try_recv() {
            let action = app.on_outcome(outcome);
            dispatch(backend, tx, action);
            dirty = true;
        }
        if app.is_busy() {
            app.tick = app.tick.wrapping_add(1);
            dirty = true;
        }
    }
}

/// Name of the threads that run backend calls; the panic hook leaves the terminal alone for them.
const JOB_THREAD: &str = "bshare-tui-job";

type Job = Box<dyn FnOnce(&dyn Backend) -> Outcome + Send>;
type OnPanic = Box<dyn FnOnce(String) -> Outcome + Send>;

/// Starts the work an action asks for on its own thread; the result comes back on `tx`.
///
/// A thread per job (rather than one worker) keeps a slow upload from holding up a preview; jobs
/// only start from key presses, so there are never many. A job that panics still answers, with
/// an error for the status line, so no row stays "syncing…" for ever.
pub fn dispatch(backend: &Arc<dyn Backend>, tx: &Sender<Outcome>, action: Action) {
    let (job, on_panic): (Job, OnPanic) = match action {
        Action::None | Action::Quit => return,
        Action::Reload => (
            Box::new(|b| Outcome::Shares(b.load_shares())),
            Box::new(|e| Outcome::Shares(Err(e))),
        ),
        Action::CheckLocal(rows) => (
            Box::new(move |b| {
                let states = b.local_states(&rows);
                Outcome::LocalStates(rows.iter().map(ShareRow::key).zip(states).collect())
            }),
            Box::new(|_| Outcome::LocalStates(Vec::new())),
        ),
        Action::LoadDocument(row) => {
            let key = row.key();
            (
                Box::new(move |b| {
                    Outcome::Document(row.key(), b.load_document(&row).map(Box::new))
                }),
                Box::new(move |e| Outcome::Document(key, Err(e))),
            )
        }
        Action::Review(row) => {
            let key = row.key();
            (
                Box::new(move |b| Outcome::Reviewed(row.key(), b.review(&row))),
                Box::new(move |e| Outcome::Reviewed(key, Err(e))),
            )
        }
        Action::Resync(row) => {
            let key = row.key();
            (
                Box::new(move |b| Outcome::Resynced(row.key(), b.resync(&row))),
                Box::new(move |e| Outcome::Resynced(key, Err(e))),
            )
        }
        Action::Unshare(row) => {
            let key = row.key();
            (
                Box::new(move |b| Outcome::Unshared(row.key(), b.unshare(&row))),
                Box::new(move |e| Outcome::Unshared(key, Err(e))),
            )
        }
        Action::Open(row) => {
            let key = row.key();
            (
                Box::new(move |b| Outcome::Opened(row.key(), b.open(&row))),
                Box::new(move |e| Outcome::Opened(key, Err(e))),
            )
        }
        Action::CopyLink(row) => {
            let key = row.key();
            (
                Box::new(move |b| Outcome::Copied(row.key(), b.copy_link(&row))),
                Box::new(move |e| Outcome::Copied(key, Err(e))),
            )
        }
    };
    let backend = Arc::clone(backend);
    let worker_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name(JOB_THREAD.into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&*backend)))
                .unwrap_or_else(|payload| {
                    let msg = payload
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    on_panic(format!("internal error: {msg}"))
                });
            // The receiver is gone only when the TUI has quit; nobody is left to tell.
            let _ = worker_tx.send(outcome);
        });
    if let Err(e) = spawned {
        let _ = tx.send(Outcome::Shares(Err(format!(
            "could not start a thread: {e}"
        ))));
    }
}

/// Raw mode and the alternate screen for as long as it lives.
struct TerminalGuard;

impl TerminalGuard {
    fn enter() -> io::Result<Self> {
        enable_raw_mode()?;
        let guard = Self;
        execute!(io::stdout(), EnterAlternateScreen)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn restore_terminal() {
    // Raw mode first: a terminal left in raw mode is the worse of the two failures.
    let _ = disable_raw_mode();
    let _ = execute!(io::stdout(), LeaveAlternateScreen);
}

/// Restores the terminal before the previous hook prints the panic, so the message is readable
/// and the shell usable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A job's panic is caught and shown in the status line; printing it over the screen
        // or leaving the alternate screen would only break a TUI that keeps running.
        if std::thread::current().name() == Some(JOB_THREAD) {
            return;
        }
        restore_terminal();
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc::RecvTimeoutError;

    use ratatui::crossterm::event::KeyCode;

    use super::app::tests::{press, row};
    use super::*;
    use crate::model::ShareData;

    /// A backend whose re-sync waits until the test lets it go, and whose unshare panics.
    struct Fake {
        release: Mutex<Receiver<()>>,
    }

    impl Backend for Fake {
        fn load_shares(&self) -> Result<Vec<ShareRow>, String> {
            Ok(vec![row(1, "first"), row(2, "second")])
        }
        fn load_document(&self, _row: &ShareRow) -> Result<ShareData, String> {
            Err("offline".into())
        }
        fn local_states(&self, rows: &[ShareRow]) -> Vec<LocalState> {
            rows.iter()
                .map(|r| {
                    if r.title == "second" {
                        LocalState::Changed
                    } else {
                        LocalState::Same
                    }
                })
                .collect()
        }
        fn review(&self, row: &ShareRow) -> Result<crate::sharing::Review, String> {
            Ok(super::app::tests::review_of(&row.title))
        }
        fn resync(&self, row: &ShareRow) -> Result<String, String> {
            self.release.lock().unwrap().recv().unwrap();
            Ok(format!("Synced {}.", row.share_id))
        }
        fn unshare(&self, _row: &ShareRow) -> Result<String, String> {
            panic!("backend bug");
        }
        fn open(&self, _row: &ShareRow) -> Result<(), String> {
            Ok(())
        }
        fn copy_link(&self, row: &ShareRow) -> Result<String, String> {
            Ok(format!("Copied {}", row.url))
        }
    }

    fn next(rx: &Receiver<Outcome>) -> Outcome {
        rx.recv_timeout(Duration::from_secs(10)).unwrap()
    }

    #[test]
    fn slow_jobs_run_off_the_ui_thread_and_report_back() {
        let (release_tx, release_rx) = mpsc::channel();
        let backend: Arc<dyn Backend> = Arc::new(Fake {
            release: Mutex::new(release_rx),
        });
        let (tx, rx) = mpsc::channel();
        let mut app = App::new(0);

        dispatch(&backend, &tx, Action::Reload);
        let check = app.on_outcome(next(&rx));
        assert_eq!(app.rows.len(), 2);
        dispatch(&backend, &tx, check);
        app.on_outcome(next(&rx));
        let changed: Vec<_> = app
            .local
            .iter()
            .filter(|(_, s)| **s == LocalState::Changed)
            .map(|(k, _)| k.share_id.as_str())
            .collect();
        assert_eq!(changed, ["share0002"]);

        // The first upload is reviewed: the review comes back from a job, y confirms.
        let action = app.on_key(press(KeyCode::Char('s')));
        assert!(matches!(action, Action::Review(_)));
        dispatch(&backend, &tx, action);
        app.on_outcome(next(&rx));
        assert!(matches!(app.mode, app::Mode::Review(..)));
        // The re-sync blocks in the backend, yet dispatch returns and keys keep working.
        let action = app.on_key(press(KeyCode::Char('y')));
        dispatch(&backend, &tx, action);
        app.on_key(press(KeyCode::Down));
        assert_eq!(app.selected, 1);
        assert!(app.is_busy());
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(100)).unwrap_err(),
            RecvTimeoutError::Timeout
        );
        release_tx.send(()).unwrap();
        let reload = app.on_outcome(next(&rx));
        assert_eq!(reload, Action::Reload);
        assert_eq!(
            app.status,
            Some(app::Status::Info("Synced share0002.".into()))
        );
        assert!(app.busy.is_empty());
    }

    #[test]
    fn a_panicking_job_becomes_an_error_in_the_status_line() {
        let (_release_tx, release_rx) = mpsc::channel();
        let backend: Arc<dyn Backend> = Arc::new(Fake {
            release: Mutex::new(release_rx),
        });
        let (tx, rx) = mpsc::channel();
        let mut app = App::new(0);
        dispatch(&backend, &tx, Action::Reload);
        app.on_outcome(next(&rx));
        app.on_key(press(KeyCode::Char('d')));
        let action = app.on_key(press(KeyCode::Char('y')));
        assert!(matches!(action, Action::Unshare(_)));
        dispatch(&backend, &tx, action);
        app.on_outcome(next(&rx));
        assert_eq!(
            app.status,
            Some(app::Status::Error("internal error: backend bug".into()))
        );
        assert!(!app.is_busy(), "the row is no longer marked as unsharing");
    }
}
