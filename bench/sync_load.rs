//! The sync figures of `cargo bench --bench server`: what a 5-item OpenCode sync batch costs in a
//! 20-message and in a 2,000-message share, on both store pairs, and the server's memory after a
//! mixed load on the big share.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{
    big_session, http::request, json_field, rss_kib, short, spawn_server, wait_ready, wrk,
};

/// A share made as OpenCode makes one (`POST /api/share`), given the whole session in one first
/// sync, as OpenCode's full sync does: (id, secret).
pub fn protocol_share(port: u16, doc: &[u8]) -> (String, String) {
    let data: bshare::model::ShareData = serde_json::from_slice(doc).unwrap();
    let body = format!(r#"{{"sessionID":"{}"}}"#, data.session_id);
    let (status, created) = request(
        port,
        "POST",
        "/api/share",
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&created));
    let (id, secret) = (json_field(&created, "id"), json_field(&created, "secret"));
    let items = bshare::protocol::to_items(&data);
    let body = serde_json::to_vec(&serde_json::json!({ "secret": secret, "data": items })).unwrap();
    let (status, answer) = request(
        port,
        "POST",
        &format!("/api/share/{id}/sync"),
        "Content-Type: application/json\r\n",
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    (id, secret)
}

/// A wrk script that sends OpenCode-like 5-item batches to one share: one message and four of
/// its parts, the parts' text changing with every batch (OpenCode sends a part again each time it
/// grows). The same five keys each time, so the share keeps its size while it is measured.
fn batch_script(dir: &Path, name: &str, session_id: &str, secret: &str) -> PathBuf {
    let path = dir.join(format!("{name}.lua"));
    let script = format!(
        r#"local n = 0
local sid = "{session_id}"
local filler = string.rep("The agent edits the file and runs the tests again. ", 4)
request = function()
  n = n + 1
  local m = "msg_zzbench{name}"
  local body = '{{"secret":"{secret}","data":[{{"type":"message","data":{{"id":"' .. m ..
    '","sessionID":"' .. sid .. '","role":"assistant","time":{{"created":4000000000000}}}}}}'
  for i = 1, 4 do
    body = body .. ',{{"type":"part","data":{{"id":"prt_' .. m .. '_' .. i .. '","messageID":"' .. m ..
      '","sessionID":"' .. sid .. '","type":"text","text":"' .. filler .. n .. '"}}}}'
  end
  body = body .. ']}}'
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json"}}, body)
end
"#
    );
    std::fs::write(&path, script).unwrap();
    path
}

/// s3s-fs, the signature-checking S3 server the tests use, on a port it picks: (child, endpoint).
fn start_s3s_fs(root: &Path) -> (Child, String) {
    let bin = std::env::var_os("BSHARE_TEST_S3S_FS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/bshare-test/cargo/bin/s3s-fs"))
        })
        .filter(|p| p.is_file())
        .expect(
            "s3s-fs is needed for the PostgreSQL + S3 sync figure: run scripts/test once (it installs \
             s3s-fs 0.14.1 into ~/.cache/bshare-test) or set BSHARE_TEST_S3S_FS",
        );
    std::fs::create_dir_all(root.join("bench")).unwrap();
    let mut child = Command::new("taskset")
        .args(["-c", "1"])
        .arg(bin)
        .args(["--host", "127.0.0.1", "--port", "0"])
        .args(["--access-key", "benchkey", "--secret-key", "benchsecret"])
        .arg(root)
        .env("RUST_LOG", "s3s_fs=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("server is running at http://127.0.0.1:").nth(1) {
                let _ = tx.send(rest.trim().to_owned());
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("s3s-fs named no address within 20 s");
    (child, format!("http://127.0.0.1:{port}"))
}

/// The sync cost at 20 and at 2,000 messages on each store pair, as batches per second with 4
/// connections, and their ratio (the cost of a batch into the big share over one into the small).
pub fn sync_cost(bin: &Path, tmp: &Path, doc: &[u8], pg_admin: &str) {
    let small = big_session(doc, 20);
    let big = big_session(doc, 2000);
    let session: bshare::model::ShareData = serde_json::from_slice(doc).unwrap();
    for pair in ["SQLite + local disk", "PostgreSQL + S3 (s3s-fs)"] {
        let data = tmp.join(format!("sync-{}", pair.len()));
        let mut guards: Vec<Child> = Vec::new();
        let mut envs: Vec<(String, String)> = Vec::new();
        let mut db = None;
        if pair.starts_with("PostgreSQL") {
            let (s3, endpoint) = start_s3s_fs(&tmp.join("s3"));
            guards.push(s3);
            let name = format!("bshare_bench_{}", bshare::crypto::random_hex(4));
            let mut client = postgres::Client::connect(pg_admin, postgres::NoTls).unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            // The work per batch, not the disk's flush of each commit (as the creates).
            client
                .batch_execute(&format!(
                    "ALTER DATABASE {name} SET synchronous_commit = off"
                ))
                .unwrap();
            let base = pg_admin.rsplit_once('/').unwrap().0;
            envs.extend([
                ("DATABASE_URL".to_owned(), format!("{base}/{name}")),
                ("S3_BUCKET".to_owned(), "bench".to_owned()),
                ("S3_ENDPOINT".to_owned(), endpoint),
                ("S3_REGION".to_owned(), "us-east-1".to_owned()),
                ("S3_ACCESS_KEY_ID".to_owned(), "benchkey".to_owned()),
                ("S3_SECRET_ACCESS_KEY".to_owned(), "benchsecret".to_owned()),
            ]);
            db = Some(name);
        }
        let env_refs: Vec<(&str, &str)> =
            envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (mut server, port) = spawn_server(bin, &data, &[], &env_refs, false);
        wait_ready(port);
        let (small_id, small_secret) = protocol_share(port, &small);
        let (big_id, big_secret) = protocol_share(port, &big);
        let small_script = batch_script(tmp, "small", &session.session_id, &small_secret);
        let big_script = batch_script(tmp, "big", &session.session_id, &big_secret);
        // Alternated, twice each, so that a change in the machine's load weighs on both alike.
        let (mut small_rate, mut big_rate) = (0.0, 0.0);
        for _ in 0..2 {
            small_rate += wrk(
                port,
                &format!("/api/share/{small_id}/sync"),
                4,
                &["-s", small_script.to_str().unwrap()],
            ) / 2.0;
            big_rate += wrk(
                port,
                &format!("/api/share/{big_id}/sync"),
                4,
                &["-s", big_script.to_str().unwrap()],
            ) / 2.0;
        }
        println!(
            "sync of a 5-item batch, {pair}, 4 connections: into 20 messages ({} bytes) {small_rate:.0} batches/s, into 2,000 messages ({} bytes) {big_rate:.0} batches/s — a batch into the big share costs {:.2}× one into the small (target ≤ 2)",
            small.len(),
            big.len(),
            small_rate / big_rate.max(1.0)
        );
        // Every batch is there: the last text each part got is on the page's document.
        let (status, got) = request(port, "GET", &format!("/api/share/{big_id}"), "", b"").unwrap();
        assert_eq!(status, 200);
        assert!(
            String::from_utf8_lossy(&got).contains("msg_zzbenchbig"),
            "the big share holds the batches"
        );
        server.kill().unwrap();
        server.wait().unwrap();
        for mut g in guards {
            let _ = g.kill();
            let _ = g.wait();
        }
        if let Some(name) = db
            && let Ok(mut c) = postgres::Client::connect(pg_admin, postgres::NoTls)
        {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Resident memory of a fresh server, then after a mixed load on a 2,000-message share: page
/// views, `.md` and `/data` with 32 connections in all, and OpenCode syncs into it meanwhile.
pub fn mixed_load_memory(bin: &Path, tmp: &Path, doc: &[u8]) {
    let data = tmp.join("mixed");
    // Every client is loopback here: no request or page-miss limit stands between the load and
    // the fills it causes.
    let (mut server, port) = spawn_server(
        bin,
        &data,
        &[
            "--request-limit",
            "4000000000",
            "--page-miss-limit",
            "4000000000",
        ],
        &[],
        true,
    );
    wait_ready(port);
    std::thread::sleep(Duration::from_millis(500));
    let (idle, _) = rss_kib(server.id());
    // The short run (a dev build, 1 s loads) only shows that the load runs: each sync makes the
    // next view a fill, and with a larger session a dev build's fills outlast its loads (a sync
    // queued behind 12 `/data` requests waiting on the fill of 200 messages saw no answer in a
    // second of a loaded CI run).
    let messages = if short() { 20 } else { 2000 };
    let big = big_session(doc, messages);
    let (id, secret) = protocol_share(port, &big);
    // The allocator gives freed memory back within a second (`.cargo/config.toml`).
    std::thread::sleep(Duration::from_secs(3));
    let (synced, _) = rss_kib(server.id());
    let session: bshare::model::ShareData = serde_json::from_slice(doc).unwrap();
    let script = batch_script(tmp, "mixed", &session.session_id, &secret);
    // Every view filled once: the load measures repeat views and the fills syncs cause, not the
    // first render of each.
    for path in [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/api/share/{id}/data"),
    ] {
        let (status, _) = request(port, "GET", &path, "", b"").unwrap();
        assert_eq!(status, 200, "{path}");
    }
    let loads: Vec<(String, u32, Vec<String>)> = vec![
        (
            format!("/share/{id}"),
            12,
            vec!["-H".into(), "Accept-Encoding: gzip".into()],
        ),
        (format!("/share/{id}.md"), 8, vec![]),
        (format!("/api/share/{id}/data"), 12, vec![]),
        (
            format!("/api/share/{id}/sync"),
            2,
            vec!["-s".into(), script.display().to_string()],
        ),
    ];
    std::thread::scope(|s| {
        for (path, connections, extra) in &loads {
            s.spawn(move || {
                let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
                wrk(port, path, *connections, &extra)
            });
        }
    });
    let (during, _) = rss_kib(server.id());
    // What the load was answered, from the access log: status by route.
    let log = std::fs::read_to_string(format!("{}.log", data.display())).unwrap_or_default();
    let mut answers = std::collections::BTreeMap::<(String, String), u64>::new();
    for line in log.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if let [method, path, status, _] = fields[..]
            && status.len() == 3
            && status.bytes().all(|b| b.is_ascii_digit())
        {
            let route = path.replace(&id, ":id");
            *answers
                .entry((format!("{method} {route}"), status.to_owned()))
                .or_default() += 1;
        }
    }
    let answers: Vec<String> = answers
        .iter()
        .map(|((route, status), n)| format!("{route} {status} ×{n}"))
        .collect();
    println!("  mixed load's answers: {}", answers.join(", "));
    std::thread::sleep(Duration::from_secs(3));
    let (after, peak) = rss_kib(server.id());
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "resident memory, {messages}-message share ({} bytes): idle {:.1} MiB; 3 s after its first sync (the whole session in one batch) {:.1} MiB; views + .md + /data (32 connections) with syncs: {:.1} MiB as the load ends, {:.1} MiB 3 s after (target < 60 MiB); peak {:.1} MiB",
        big.len(),
        mib(idle),
        mib(synced),
        mib(during),
        mib(after),
        mib(peak)
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
