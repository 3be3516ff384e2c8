//! `cargo bench --bench tui`: how quickly `bshare tui` shows 10,000 shares and previews the
//! largest test session. Prints a table; the figures are recorded in `bench/README.md`.
//! With `BSHARE_BENCH_SHORT=1` (the test command) each figure is the median of 3 runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bshare::model::ShareData;
use bshare::registry::{self, Entry};
use bshare::tui::app::{Action, App, Outcome};
use bshare::tui::preview::{self, Preview};
use bshare::tui::{Backend, CliBackend};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

const SHARES: usize = 10_000;
const WIDTH: u16 = 120;
const HEIGHT: u16 = 40;
const FULL_RUNS: usize = 15;

/// `BSHARE_BENCH_SHORT=1` (the test command): a run of a few seconds that goes through every
/// measurement once, to show the benchmark still works; its figures are not the recorded ones.
fn short() -> bool {
    std::env::var_os("BSHARE_BENCH_SHORT").is_some_and(|v| v == "1")
}

/// Runs per figure.
fn runs() -> usize {
    if short() { 3 } else { FULL_RUNS }
}

fn main() {
    let runs = runs();
    println!("bshare tui, terminal {WIDTH}x{HEIGHT}, median of {runs} runs (max in brackets)\n");
    if short() {
        println!("(short run: BSHARE_BENCH_SHORT=1; not the recorded figures)\n");
    }
    list();
    println!();
    preview();
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    println!("{what:<58} {:>10.3} ms  [{:>8.3}]", ms(median), ms(max));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn terminal() -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap()
}

fn list() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bshare/shares.json");
    let now = bshare::model::now_millis();
    let start = Instant::now();
    registry::update(&path, |r| {
        for i in 0..SHARES {
            r.shares.push(Entry {
                share_id: format!("share{i:07}"),
                session_id: format!("ses_{i:020}"),
                secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2Vj".into(),
                url: format!("https://share.example.com/share/share{i:07}"),
                server: "https://share.example.com".into(),
                title: format!("Session number {i}: refactor the storage layer"),
                created_at: now - i as i64 * 60_000,
                updated_at: now - i as i64 * 30_000,
                extra: serde_json::Map::new(),
            });
        }
    })
    .unwrap();
    println!(
        "build a registry of {SHARES} shares ({} KB): {:.1} ms\n",
        std::fs::metadata(&path).unwrap().len() / 1024,
        ms(start.elapsed())
    );

    // No OpenCode data in this directory: the list comes from the registry alone.
    let backend = CliBackend::new(path, Some(dir.path().join("no-opencode")));
    let (mut load, mut apply, mut draw, mut total) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs() {
        let t0 = Instant::now();
        let rows = backend.load_shares().unwrap();
        let t1 = Instant::now();
        let mut app = App::new(now);
        app.on_outcome(Outcome::Shares(Ok(rows)));
        let t2 = Instant::now();
        let mut terminal = terminal();
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        let t3 = Instant::now();
        load.push(t1 - t0);
        apply.push(t2 - t1);
        draw.push(t3 - t2);
        total.push(t3 - t0);
        black_box(&terminal);
    }
    report("read and parse the registry", &mut load);
    report("sort, index and filter the rows", &mut apply);
    report("first frame into TestBackend", &mut draw);
    report("time to first frame, total", &mut total);

    let rows = backend.load_shares().unwrap();
    let mut app = App::new(now);
    app.on_outcome(Outcome::Shares(Ok(rows)));
    let mut terminal = terminal();
    terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();

    let mut frames = vec![];
    for i in 0..200 {
        let code = if i % 2 == 0 {
            KeyCode::PageDown
        } else {
            KeyCode::Down
        };
        app.on_key(key(code));
        let t = Instant::now();
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        frames.push(t.elapsed());
    }
    report("list frame while scrolling", &mut frames);

    let mut keystrokes = vec![];
    for _ in 0..runs() {
        app.on_key(key(KeyCode::Char('/')));
        for c in "number 99".chars() {
            let t = Instant::now();
            assert_eq!(app.on_key(key(KeyCode::Char(c))), Action::None);
            terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
            keystrokes.push(t.elapsed());
        }
        app.on_key(key(KeyCode::Esc));
    }
    report(
        "filter keystroke over 10,000 rows, with its frame",
        &mut keystrokes,
    );
}

fn preview() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/opencode-1.18.33-long.sharedata.json"
    );
    let bytes = std::fs::read(path).unwrap();
    let doc: ShareData = serde_json::from_slice(&bytes).unwrap();
    println!(
        "preview of {} ({} KB, {} messages)\n",
        path.rsplit('/').next().unwrap_or(path),
        bytes.len() / 1024,
        doc.messages.len()
    );

    let t = Instant::now();
    preview::warm_up();
    println!(
        "{:<58} {:>10.3} ms  (once per process, on a background thread at start)",
        "load syntax set and theme",
        ms(t.elapsed())
    );

    let mut parse = vec![];
    for _ in 0..runs() {
        let t = Instant::now();
        black_box(serde_json::from_slice::<ShareData>(&bytes).unwrap());
        parse.push(t.elapsed());
    }
    report("parse the document (serde_json, for scale)", &mut parse);

    let (mut first, mut scrolled, mut end) = (vec![], vec![], vec![]);
    for _ in 0..runs() {
        let mut app = App::new(0);
        app.on_outcome(Outcome::Shares(Ok(vec![bshare::tui::ShareRow {
            share_id: doc.share_id.clone(),
            session_id: doc.session_id.clone(),
            title: "Add multiply, tests and CLI".into(),
            url: String::new(),
            server: "https://share.example.com".into(),
            secret: String::new(),
            created_at: doc.created_at,
            updated_at: doc.updated_at,
            made_by_opencode: false,
            expires_at: None,
        }])));
        let Action::LoadDocument(row) = app.on_key(key(KeyCode::Enter)) else {
            unreachable!("Enter on a share asks for its document")
        };
        let mut terminal = terminal();
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        let t = Instant::now();
        app.on_outcome(Outcome::Document(row.key(), Ok(Box::new(doc.clone()))));
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        first.push(t.elapsed());
        for _ in 0..30 {
            app.on_key(key(KeyCode::PageDown));
            let t = Instant::now();
            terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
            scrolled.push(t.elapsed());
        }
        app.on_key(key(KeyCode::Home));
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        app.on_key(key(KeyCode::End));
        let t = Instant::now();
        terminal.draw(|f| f.render_widget(&app, f.area())).unwrap();
        end.push(t.elapsed());
    }
    report(
        "preview: first frame (document in, highlighted)",
        &mut first,
    );
    report(
        "preview: frame per page down (builds new messages)",
        &mut scrolled,
    );
    report("preview: frame at the end (all built already)", &mut end);

    // The whole document built at once, for comparison with the lazy first frame.
    let mut full = vec![];
    for _ in 0..runs() {
        let p = Preview::new(doc.clone());
        let area = ratatui::layout::Rect::new(0, 0, 74, 38);
        let mut buf = ratatui::buffer::Buffer::empty(area);
        let t = Instant::now();
        p.render(area, &mut buf, usize::MAX);
        full.push(t.elapsed());
    }
    report(
        "preview: whole session built and highlighted at once",
        &mut full,
    );
}
