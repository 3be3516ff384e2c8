//! Redaction benchmark (DESIGN.md §6): bshare's redaction against ripgrep searching the same
//! bytes for the same patterns.
//!
//! `cargo bench --bench redact` prints, for the long fixture and a generated 5 MB session (the
//! long fixture's messages repeated and varied, with a secret every 50 messages):
//! - redact: every string and key of the parsed document scanned and the secrets replaced
//!   (`Redactor::redact_document`, what a client does before it serializes the upload);
//! - parse + redact + serialize: the same from bytes to bytes, for scale;
//! - rg: `rg --count-matches` with the rule file's patterns over the same document bytes,
//!   repeated into one file of at least 64 MiB so its start-up does not count;
//!
//! as MB/s of document bytes, and redact/rg as the ratio (target ≥ 0.5×).
//! With `BSHARE_BENCH_SHORT=1` it runs for a few seconds (the test command runs it that way).

use std::hint::black_box;
use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use bshare::redact::{self, Options};
use serde_json::Value;

fn short() -> bool {
    std::env::var("BSHARE_BENCH_SHORT").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/opencode-1.18.33-{name}.sharedata.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Appends `k` to every prose or code string, so no two copies of a message are equal.
fn vary(v: &mut Value, k: usize) {
    match v {
        Value::Object(m) => {
            for (key, child) in m.iter_mut() {
                match (key.as_str(), &mut *child) {
                    ("text" | "output" | "content" | "newString" | "prompt", Value::String(s)) => {
                        s.push_str(&format!("\n# variant {k}\n"));
                    }
                    ("id" | "messageID", Value::String(s)) => s.push_str(&format!("_{k}")),
                    _ => vary(child, k),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|c| vary(c, k)),
        _ => {}
    }
}

/// The long fixture's messages repeated until the document reaches 5 MB, a secret in every 50th.
fn generated(long: &[u8]) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(long).expect("fixture");
    let base = doc["messages"].as_array().cloned().unwrap_or_default();
    let mut messages = Vec::new();
    let mut size = long.len();
    let mut i = 0;
    while size < 5_000_000 {
        let mut m = base[i % base.len()].clone();
        vary(&mut m, i / base.len());
        if i % 50 == 0
            && let Some(parts) = m["parts"].as_array_mut()
        {
            parts.push(serde_json::json!({
                "type": "text",
                "text": format!("export GITHUB_TOKEN=ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5e{}", i % 10),
            }));
        }
        size += serde_json::to_vec(&m).map_or(0, |b| b.len());
        messages.push(m);
        i += 1;
    }
    doc["messages"] = Value::Array(messages);
    serde_json::to_vec(&doc).expect("serialize")
}

/// Runs `f` until `budget` is spent (at least 3 times); the median time of one run.
fn median(budget: Duration, mut f: impl FnMut() -> Duration) -> Duration {
    let start = Instant::now();
    let mut times = Vec::new();
    while times.len() < 3 || (start.elapsed() < budget && times.len() < 200) {
        times.push(f());
    }
    times.sort();
    times[times.len() / 2]
}

fn mbps(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / 1e6 / t.as_secs_f64()
}

/// The rule file's patterns, one per line, as `rg -f` reads them (Rust regex syntax, so `\b`
/// is spelled as the ASCII boundary the rules mean, as `redact::Redactor` compiles it).
fn rg_patterns() -> String {
    let mut out = String::new();
    for rule in redact::rule_file().rules {
        // rg 13's regex reads only `(?P<name>…)`, and one name once: the group is not needed.
        let pattern = rule
            .pattern
            .replace("\\b", "(?-u:\\b)")
            .replace("(?<secret>", "(?:");
        out.push_str(&pattern);
        out.push('\n');
    }
    out
}

/// Median seconds of `rg --count-matches` over `bytes` repeated to at least `min_bytes`; the
/// number of bytes searched and the matches rg counted.
fn rg(bytes: &[u8], min_bytes: usize, budget: Duration) -> (usize, Duration, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let patterns = dir.path().join("patterns");
    std::fs::write(&patterns, rg_patterns()).expect("patterns");
    let file = dir.path().join("haystack.json");
    let mut f = std::fs::File::create(&file).expect("haystack");
    let copies = min_bytes.div_ceil(bytes.len()).max(1);
    for _ in 0..copies {
        f.write_all(bytes).expect("haystack");
        f.write_all(b"\n").expect("haystack");
    }
    drop(f);
    let run = || {
        Command::new("rg")
            .args(["--no-config", "--count-matches", "-f"])
            .arg(&patterns)
            .arg(&file)
            .output()
            .expect("rg (ripgrep) must be installed: apt-get install ripgrep")
    };
    let first = run();
    // rg exits 1 when nothing matched, 2 on an error.
    assert!(
        matches!(first.status.code(), Some(0 | 1)),
        "rg failed: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let counted = String::from_utf8_lossy(&first.stdout).trim().to_owned();
    let counted = if counted.is_empty() {
        "0".to_owned()
    } else {
        counted
    };
    let t = median(budget, || {
        let t = Instant::now();
        black_box(run());
        t.elapsed()
    });
    (copies * (bytes.len() + 1), t, counted)
}

fn bench(name: &str, bytes: &[u8]) {
    let budget = if short() {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let rules = redact::rules();
    let doc: Value = serde_json::from_slice(bytes).expect("document");
    let opts = Options::default();
    let mut found = 0;
    let t_redact = median(budget, || {
        let mut v = doc.clone();
        let t = Instant::now();
        let report = rules.redact_document(&mut v, &opts);
        let e = t.elapsed();
        found = report.total();
        black_box(v);
        e
    });
    let t_full = median(budget, || {
        let t = Instant::now();
        let mut v: Value = serde_json::from_slice(bytes).expect("document");
        rules.redact_document(&mut v, &opts);
        black_box(serde_json::to_vec(&v).expect("serialize"));
        t.elapsed()
    });
    let min_rg = if short() { 8 << 20 } else { 64 << 20 };
    let (rg_bytes, t_rg, rg_count) = rg(bytes, min_rg, budget);
    let ours = mbps(bytes.len(), t_redact);
    let theirs = mbps(rg_bytes, t_rg);
    println!(
        "{name}: {:.2} MB, {found} secrets found (rg counted {rg_count} over {:.0} MB)",
        bytes.len() as f64 / 1e6,
        rg_bytes as f64 / 1e6
    );
    println!(
        "  redact                      {:>8.2} ms  {ours:>7.0} MB/s",
        t_redact.as_secs_f64() * 1e3
    );
    println!(
        "  parse + redact + serialize  {:>8.2} ms  {:>7.0} MB/s",
        t_full.as_secs_f64() * 1e3,
        mbps(bytes.len(), t_full)
    );
    println!(
        "  rg --count-matches          {:>8.2} ms  {theirs:>7.0} MB/s  ({:.0} MB)",
        t_rg.as_secs_f64() * 1e3,
        rg_bytes as f64 / 1e6
    );
    println!(
        "  redact / rg                 {:>8.2}×  (target ≥ 0.5×)",
        ours / theirs
    );
}

fn main() {
    let out = Command::new("rg")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("rg (ripgrep) must be installed: {e}"));
    let rg_version = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    println!(
        "redaction: {} rules, against {rg_version}{}",
        redact::rules().ids().len(),
        if short() { " (short run)" } else { "" }
    );
    let long = fixture("long");
    bench("long fixture", &long);
    bench("generated session", &generated(&long));
}
