//! Render benchmark (DESIGN.md §6): the share page against `serde_json` parsing the same bytes.
//!
//! `cargo bench --bench render` prints, for the long fixture and a generated 2,000-message
//! session: parse time and MB/s, the one-time syntax set load, the first render and the warm
//! render, output size raw and gzipped, and the render/parse ratio.
//! `cargo bench --bench render -- --write DIR` also writes the pages and the stylesheet to DIR
//! (laid out as the server serves them) for looking at them in a browser.
//! With `BSHARE_BENCH_SHORT=1` (the test command) it renders a 200-message session, each figure
//! from 3 runs, in a few seconds.

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bshare::model::ShareData;
use bshare::render::{PageContext, STYLESHEET, render_page, stylesheet_path, warm_up};
use serde_json::Value;

/// Messages in the generated session.
fn messages() -> usize {
    if short() { 200 } else { 2000 }
}

/// Runs per median: parse, warm render.
fn runs() -> (usize, usize) {
    if short() { (3, 3) } else { (21, 11) }
}

/// `BSHARE_BENCH_SHORT=1` (the test command): a run of a few seconds that goes through every
/// measurement once, to show the benchmark still works; its figures are not the recorded ones.
fn short() -> bool {
    std::env::var_os("BSHARE_BENCH_SHORT").is_some_and(|v| v == "1")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/opencode-1.18.33-{name}.sharedata.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Appends `k` to every string that is prose or code, so no two copies of a message are equal.
fn vary(v: &mut Value, k: usize) {
    match v {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                match (key.as_str(), &mut *child) {
                    (
                        "text" | "output" | "content" | "newString" | "prompt" | "preview",
                        Value::String(s),
                    ) => {
                        s.push_str(&format!("\n# variant {k}\n"));
                    }
                    ("id" | "messageID" | "parentID" | "callID", Value::String(s)) => {
                        s.push_str(&format!("_{k}"));
                    }
                    ("created" | "completed" | "start" | "end", Value::Number(n)) => {
                        if let Some(t) = n.as_i64() {
                            *child = Value::from(t + (k as i64) * 20_000);
                        }
                    }
                    _ => vary(child, k),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| vary(c, k)),
        _ => {}
    }
}

/// A 2,000-message session (200 in the short run) made of the long fixture's messages, repeated
/// and varied.
fn generated(long: &[u8]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(long).expect("fixture");
    let base = doc["messages"].as_array().cloned().unwrap_or_default();
    let mut messages = Vec::with_capacity(self::messages());
    for i in 0..self::messages() {
        let mut m = base[i % base.len()].clone();
        vary(&mut m, i / base.len());
        messages.push(m);
    }
    doc["messages"] = Value::Array(messages);
    serde_json::to_vec(&doc).expect("serialize")
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip").len()
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

const CTX: PageContext = PageContext {
    share_url: "https://share.example.com/share/FixLong1",
};

fn report(name: &str, bytes: &[u8], first: bool) -> String {
    let (parse_runs, render_runs) = runs();
    let parse = median(parse_runs, || {
        black_box(serde_json::from_slice::<ShareData>(black_box(bytes)).expect("parse"));
    });
    let doc: ShareData = serde_json::from_slice(bytes).expect("parse");
    let t = Instant::now();
    let html = render_page(&doc, &CTX);
    let first_render = t.elapsed();
    let warm = median(render_runs, || {
        black_box(render_page(black_box(&doc), &CTX));
    });
    let gz = gzip_len(html.as_bytes());
    println!(
        "{name}: {} messages, {:.2} MB of JSON",
        doc.messages.len(),
        bytes.len() as f64 / 1e6
    );
    println!(
        "  serde_json parse      {:8.2} ms  {:7.1} MB/s",
        ms(parse),
        mbps(bytes.len(), parse)
    );
    println!(
        "  first render{}   {:8.2} ms  {:7.1} MB/s  ({:.1}x parse)",
        if first { " (1st doc)" } else { "          " },
        ms(first_render),
        mbps(bytes.len(), first_render),
        first_render.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "  warm render           {:8.2} ms  {:7.1} MB/s  ({:.1}x parse)",
        ms(warm),
        mbps(bytes.len(), warm),
        warm.as_secs_f64() / parse.as_secs_f64()
    );
    println!(
        "  page                  {:8} bytes raw, {} bytes gzipped",
        html.len(),
        gz
    );
    html
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let write_dir = args
        .iter()
        .position(|a| a == "--write")
        .and_then(|i| args.get(i + 1))
        .cloned();

    let long = fixture("long");
    let short = fixture("short");
    let big = generated(&long);

    // The syntax set is loaded once per process; measured on its own so the renders below
    // show the steady cost and this shows the one-time cost.
    let t = Instant::now();
    warm_up();
    let load = t.elapsed();
    println!("syntax set load (once per process): {:.2} ms\n", ms(load));

    if self::short() {
        println!("(short run: BSHARE_BENCH_SHORT=1; not the recorded figures)\n");
    }
    let gen_html = report(
        &format!("generated {}-message session", messages()),
        &big,
        true,
    );
    println!();
    let long_html = report("long fixture", &long, false);
    let css_gz = gzip_len(STYLESHEET.as_bytes());
    println!(
        "  stylesheet            {:8} bytes raw, {} bytes gzipped\n  browser download      {:8} bytes (page + stylesheet, gzipped)",
        STYLESHEET.len(),
        css_gz,
        gzip_len(long_html.as_bytes()) + css_gz
    );
    println!();
    let short_html = report("short fixture", &short, false);

    if let Some(dir) = write_dir {
        let dir = std::path::Path::new(&dir);
        let css = dir.join(stylesheet_path().trim_start_matches('/'));
        std::fs::create_dir_all(css.parent().expect("parent")).expect("mkdir");
        std::fs::write(&css, STYLESHEET).expect("write css");
        for (name, html) in [
            ("long", &long_html),
            ("short", &short_html),
            ("generated", &gen_html),
        ] {
            std::fs::write(dir.join(format!("{name}.html")), html).expect("write page");
        }
        println!(
            "\nwrote pages and {} under {}",
            stylesheet_path(),
            dir.display()
        );
    }
}
