//! Server benchmark: the DESIGN.md §6 figures that concern `bshare serve`, each measured side by
//! side with its reference in one run.
//!
//! Run with `cargo bench --bench server` (needs `wrk`, `nginx`, `pgbench`, `taskset` and a
//! PostgreSQL: `BSHARE_BENCH_DATABASE_URL`, default postgres://postgres@127.0.0.1:5432/postgres).
//! Prints its figures; asserts nothing about speed (the machines are shared and noisy).
//! `BSHARE_BENCH_ONLY=streams` runs only the event-stream figure (needs only `wrk` and `taskset`),
//! `BSHARE_BENCH_ONLY=memory` only the memory after the mixed load on a 2,000-message share,
//! `BSHARE_BENCH_ONLY=sync` only the sync cost, `BSHARE_BENCH_ONLY=creates` only the creates.
//! With `BSHARE_BENCH_SHORT=1` (the test command) each load runs for 1 s instead of 8.

#[path = "http.rs"]
mod http;
use http::request;
#[path = "sync_load.rs"]
mod sync_load;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Seconds per load (wrk, pgbench).
fn seconds() -> &'static str {
    if short() { "1" } else { "8" }
}

/// `BSHARE_BENCH_SHORT=1` (the test command): a run of a few seconds that goes through every
/// measurement once, to show the benchmark still works; its figures are not the recorded ones.
fn short() -> bool {
    std::env::var_os("BSHARE_BENCH_SHORT").is_some_and(|v| v == "1")
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bshare"));
    let only = std::env::var("BSHARE_BENCH_ONLY").unwrap_or_default();
    let only_streams = only == "streams";
    let tools: &[&str] = if only_streams {
        &["wrk", "taskset"]
    } else {
        &["wrk", "nginx", "pgbench", "taskset"]
    };
    for tool in tools {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is needed (Debian: wrk, nginx, postgresql-client, util-linux)"
        );
    }
    let fixture = root.join("tests/data/opencode-1.18.33-long.sharedata.json");
    let doc = std::fs::read(&fixture).unwrap();
    let tmp = tempfile::tempdir().unwrap();

    println!("# bshare serve benchmark ({} cores)", num_cores());
    if short() {
        println!("(short run: BSHARE_BENCH_SHORT=1; not the recorded figures)");
    }
    if only_streams {
        event_streams(&bin, tmp.path(), &doc);
        return;
    }
    if only == "memory" {
        sync_load::mixed_load_memory(&bin, tmp.path(), &doc);
        return;
    }
    if only == "creates" {
        let pg_admin = std::env::var("BSHARE_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        creates(&bin, tmp.path(), &pg_admin);
        return;
    }
    if only == "sync" {
        let pg_admin = std::env::var("BSHARE_BENCH_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        sync_load::sync_cost(&bin, tmp.path(), &doc, &pg_admin);
        return;
    }
    let pg_admin = std::env::var("BSHARE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    startup_time(&bin, tmp.path());
    repeat_view(&bin, tmp.path(), &doc);
    sync_load::mixed_load_memory(&bin, tmp.path(), &doc);
    sync_load::sync_cost(&bin, tmp.path(), &doc, &pg_admin);
    creates(&bin, tmp.path(), &pg_admin);
    event_streams(&bin, tmp.path(), &doc);
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `bshare serve` on a port it picks itself (so no other process can take it first), read from
/// its log; pinned to core 0 when `one_core`. Its log goes to a file, as nginx's does below.
fn spawn_server(
    bin: &Path,
    data: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
    one_core: bool,
) -> (Child, u16) {
    let log_path = PathBuf::from(format!("{}.log", data.display()));
    let log = std::fs::File::create(&log_path).unwrap();
    let cpus = if one_core { "0" } else { "0,1" };
    let mut child = Command::new("taskset")
        .args(["-c", cpus])
        .arg(bin)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data)
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("S3_BUCKET")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(port) = text
            .split("listening on http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|p| p.parse().ok())
        {
            return (child, port);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("bshare serve exited ({status}):\n{text}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "bshare serve named no address within 10 s:\n{text}"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// A port that was free a moment ago (for nginx, which cannot name the port it bound).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_ready(port: u16) -> Duration {
    let start = Instant::now();
    loop {
        if let Some((200, _)) = request(port, "GET", "/healthz", "", b"") {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn startup_time(bin: &Path, tmp: &Path) {
    let data = tmp.join("startup");
    // First start creates the database; measure warm starts like a restart would be.
    let (mut c, port) = spawn_server(bin, &data, &[], &[], true);
    wait_ready(port);
    c.kill().unwrap();
    c.wait().unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let (mut c, port) = spawn_server(bin, &data, &[], &[], true);
        loop {
            if let Some((200, _)) = request(port, "GET", "/healthz", "", b"") {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        times.push(start.elapsed());
        c.kill().unwrap();
        c.wait().unwrap();
    }
    times.sort();
    println!(
        "start to first answered request (embedded default): median {:.1} ms (min {:.1}, max {:.1}) — target < 40 ms",
        ms(times[2]),
        ms(times[0]),
        ms(times[4])
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn json_field(body: &[u8], field: &str) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v[field].as_str().unwrap_or_default().to_owned()
}

fn wrk(port: u16, path: &str, connections: u32, extra: &[&str]) -> f64 {
    let out = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{}s", seconds()),
        ])
        .args(extra)
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let rps: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    // A load that measured nothing is a broken benchmark, not a slow server.
    assert!(
        rps > 0.0,
        "wrk measured nothing on {path}:\n{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if text.contains("Non-2xx") {
        println!(
            "  (wrk saw non-2xx answers: {})",
            text.lines().find(|l| l.contains("Non-2xx")).unwrap_or("")
        );
    }
    rps
}

/// Create share `share_id` of session `session_id` on a local-disk server and upload `doc`.
fn share_local(port: u16, session_id: &str, share_id: &str, doc: &[u8]) {
    let body = format!(
        r#"{{"sessionId":"{session_id}","shareId":"{share_id}","size":{}}}"#,
        doc.len()
    );
    let (status, created) = request(
        port,
        "POST",
        "/api/share/presign",
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )
    .unwrap();
    assert_eq!(status, 201);
    let url = json_field(&created, "presignedUrl");
    let path = &url[url.find("/blob/").unwrap()..];
    let (status, _) =
        request(port, "PUT", path, "Content-Type: application/json\r\n", doc).unwrap();
    assert_eq!(status, 200);
}

/// `doc` with its messages repeated (fresh ids) until it has `messages` of them.
fn big_session(doc: &[u8], messages: usize) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(doc).unwrap();
    let originals = v["messages"].as_array().unwrap().clone();
    let list = v["messages"].as_array_mut().unwrap();
    list.clear();
    for n in 0..messages {
        let mut m = originals[n % originals.len()].clone();
        let id = format!("{}r{n}", m["info"]["id"].as_str().unwrap_or("msg"));
        m["info"]["id"] = id.clone().into();
        if let Some(parts) = m["parts"].as_array_mut() {
            for p in parts {
                p["id"] = format!("{}r{n}", p["id"].as_str().unwrap_or("prt")).into();
                p["messageID"] = id.clone().into();
            }
        }
        list.push(m);
    }
    serde_json::to_vec(&v).unwrap()
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn repeat_view(bin: &Path, tmp: &Path, doc: &[u8]) {
    let data = tmp.join("view");
    // `/data` is an API route, limited per address: one address here is many clients.
    let (mut server, port) = spawn_server(
        bin,
        &data,
        &["--workers", "8", "--request-limit", "4000000000"],
        &[],
        true,
    );
    wait_ready(port);
    share_local(port, "ses_bench", "benchpage", doc);
    let (_, html) = request(port, "GET", "/share/benchpage", "", b"").unwrap();
    let (_, gz) = request(
        port,
        "GET",
        "/share/benchpage",
        "Accept-Encoding: gzip\r\n",
        b"",
    )
    .unwrap();
    let css_path = {
        let text = String::from_utf8_lossy(&html);
        text.split("href=\"")
            .filter_map(|s| s.split('"').next())
            .find(|h| h.starts_with("/assets/"))
            .map(str::to_owned)
    };
    let css_gz = css_path
        .as_deref()
        .and_then(|p| request(port, "GET", p, "Accept-Encoding: gzip\r\n", b""))
        .map_or(0, |(_, b)| b.len());
    println!(
        "page of the long fixture: {} bytes of HTML, {} gzipped; stylesheet {} bytes as served; a first view downloads {} bytes in 2 requests — target < 80 KB",
        html.len(),
        gz.len(),
        css_gz,
        gz.len() + css_gz
    );

    // nginx on one core serving the same page as static files, raw and pre-compressed.
    let site = tmp.join("nginx");
    std::fs::create_dir_all(site.join("share")).unwrap();
    std::fs::write(site.join("share/benchpage"), &html).unwrap();
    std::fs::write(site.join("share/benchpage.gz"), &gz).unwrap();
    let (mut nginx, nginx_port) = start_nginx(&site);
    for (label, headers, target) in [
        ("uncompressed", &[][..], 0.5),
        ("gzip", &["-H", "Accept-Encoding: gzip"][..], 0.7),
    ] {
        let nginx_rps = wrk(nginx_port, "/share/benchpage", 32, headers);
        let ours = wrk(port, "/share/benchpage", 32, headers);
        println!(
            "repeat view, {label}, one server core, 32 connections: bshare {ours:.0} req/s, nginx {nginx_rps:.0} req/s — {:.2}× nginx (target ≥ {target})",
            ours / nginx_rps.max(1.0)
        );
    }
    let etag_rps = {
        let (_, head) = raw_head(port, "/share/benchpage");
        let etag = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("ETag: ")
                    .or_else(|| l.strip_prefix("etag: "))
            })
            .unwrap_or("")
            .to_owned();
        wrk(
            port,
            "/share/benchpage",
            32,
            &["-H", &format!("If-None-Match: {etag}")],
        )
    };
    println!("repeat view answered 304 (If-None-Match): bshare {etag_rps:.0} req/s");
    let (rss, hwm) = rss_kib(server.id());
    println!(
        "resident memory of bshare after the view load: {:.1} MiB now, {:.1} MiB peak — target < 40 MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );

    // A 2,000-message share: OpenCode's item list (`/data`, what `opencode import` reads) against
    // nginx serving the same bytes as a static file.
    let big = big_session(doc, 2000);
    share_local(port, "ses_big", "benchbig", &big);
    let (status, items) = request(port, "GET", "/api/share/benchbig/data", "", b"").unwrap();
    assert_eq!(status, 200);
    std::fs::create_dir_all(site.join("api/share/benchbig")).unwrap();
    std::fs::write(site.join("api/share/benchbig/data"), &items).unwrap();
    let nginx_rps = wrk(nginx_port, "/api/share/benchbig/data", 32, &[]);
    let ours = wrk(port, "/api/share/benchbig/data", 32, &[]);
    println!(
        "/data of a 2,000-message share ({} bytes of document, {} of items), one server core, 32 connections: bshare {ours:.0} req/s, nginx (static file) {nginx_rps:.0} req/s — {:.2}× nginx (target ≥ 0.5)",
        big.len(),
        items.len(),
        ours / nginx_rps.max(1.0)
    );
    let (rss, hwm) = rss_kib(server.id());
    println!(
        "resident memory of bshare after the 2,000-message share's /data load: {:.1} MiB now, {:.1} MiB peak — target < 60 MiB",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    // SIGTERM, so the master stops its worker too (SIGKILL would orphan it).
    let _ = Command::new("kill").arg(nginx.id().to_string()).status();
    let _ = nginx.wait();
    server.kill().unwrap();
    server.wait().unwrap();
}

/// nginx on one core serving `site`, on a port chosen just before; another port is tried when
/// nginx exits (the port was taken meanwhile).
fn start_nginx(site: &Path) -> (Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let conf = format!(
            "worker_processes 1; daemon off; pid {site}/nginx.pid; error_log {site}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log {site}/access.log; default_type text/html; sendfile on; tcp_nopush on; gzip_static on; keepalive_requests 1000000;
  server {{ listen 127.0.0.1:{port}; root {site}; }} }}",
            site = site.display()
        );
        std::fs::write(site.join("nginx.conf"), conf).unwrap();
        let mut nginx = Command::new("taskset")
            .args(["-c", "0", "nginx", "-c"])
            .arg(site.join("nginx.conf"))
            .arg("-p")
            .arg(site)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if request(port, "GET", "/share/benchpage", "", b"").is_some_and(|(s, _)| s == 200) {
                return (nginx, port);
            }
            if nginx.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!(
        "nginx did not start in 5 tries: {}",
        std::fs::read_to_string(site.join("error.log")).unwrap_or_default()
    );
}

fn raw_head(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (200, String::from_utf8_lossy(&out[..end]).into_owned())
}

fn creates(bin: &Path, tmp: &Path, admin: &str) {
    let db = format!("bshare_bench_{}", bshare::crypto::random_hex(4));
    let mut client = postgres::Client::connect(admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin}: {e} (set BSHARE_BENCH_DATABASE_URL)"));
    // Without waiting for each commit's flush, on both sides: the figures are the work per
    // create, not how fast this machine's disk flushes (at ~1 ms a flush, both would be that).
    client
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .unwrap();
    client
        .batch_execute(&format!("ALTER DATABASE {db} SET synchronous_commit = off"))
        .unwrap();
    let url = {
        let base = admin.rsplit_once('/').unwrap().0;
        format!("{base}/{db}")
    };
    let data = tmp.join("creates");
    // The server trusts loopback as its proxy: each request names its client in
    // X-Forwarded-For, as behind a reverse proxy.
    let (mut server, port) = spawn_server(
        bin,
        &data,
        &[
            "--workers",
            "8",
            "--create-limit",
            "100000000",
            "--trust-proxy",
            "127.0.0.1",
        ],
        &[("DATABASE_URL", &url)],
        // Like pgbench and PostgreSQL, the server may use both cores here.
        false,
    );
    wait_ready(port);
    // One address for every create, and a new address (of 2^24) for each.
    let one = tmp.join("create.lua");
    let body = "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\nwrk.body = '{\"sessionId\":\"ses_bench\"}'\n";
    std::fs::write(&one, body).unwrap();
    let many = tmp.join("create-many.lua");
    std::fs::write(
        &many,
        format!(
            "{body}local n = 0\nrequest = function()\n  n = n + 1\n  local a = (n * 2654435761) % 16777216\n  \
             wrk.headers['X-Forwarded-For'] = string.format('10.%d.%d.%d', math.floor(a / 65536), math.floor(a / 256) % 256, a % 256)\n  \
             return wrk.format()\nend\n"
        ),
    )
    .unwrap();
    let single = wrk(
        port,
        "/api/share/presign",
        4,
        &["-s", one.to_str().unwrap()],
    );
    let spread = wrk(
        port,
        "/api/share/presign",
        4,
        &["-s", many.to_str().unwrap()],
    );
    server.kill().unwrap();
    server.wait().unwrap();

    // pgbench with 4 clients on the same database: the plain INSERT of a share row, and the one
    // statement bshare runs for a create (count the client's create in its hour and insert the
    // row), each from its own random client hash.
    let insert = "INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, upload_until) \
         VALUES (md5(random()::text), 'ses_bench', sha256(random()::text::bytea), 1, 1, 1);\n";
    let counted = "WITH h AS (SELECT substring(sha256(random()::text::bytea) FROM 1 FOR 16) AS h), \
         previous AS (SELECT COALESCE((SELECT count FROM create_counts, h WHERE client_hash = h.h AND window_start = -3600000), 0) AS n), \
         counted AS (INSERT INTO create_counts (client_hash, window_start, count) SELECT h.h, 0, 1 FROM h \
             WHERE 100000000::float8 - (SELECT n FROM previous) * 0.5 >= 1 \
             ON CONFLICT (client_hash, window_start) DO UPDATE SET count = create_counts.count + 1 \
             WHERE create_counts.count + 1 <= 100000000::float8 - (SELECT n FROM previous) * 0.5 RETURNING count), \
         inserted AS (INSERT INTO shares (id, session_id, secret_hash, created_at, updated_at, deleted_at, upload_until, expires_at) \
             SELECT md5(random()::text), 'ses_bench', sha256(random()::text::bytea), 1, 1, NULL, 1, NULL \
             WHERE EXISTS (SELECT 1 FROM counted) ON CONFLICT (id) DO NOTHING RETURNING 1) \
         SELECT EXISTS (SELECT 1 FROM counted), EXISTS (SELECT 1 FROM inserted), (SELECT n FROM previous), \
             COALESCE((SELECT count FROM create_counts, h WHERE client_hash = h.h AND window_start = 0), 0);\n";
    let pgbench = |name: &str, script: &str| -> f64 {
        let sql = tmp.join(name);
        std::fs::write(&sql, script).unwrap();
        let out = Command::new("pgbench")
            // Prepared, as bshare's own statements are.
            .args([
                "-n",
                "-M",
                "prepared",
                "-c",
                "4",
                "-j",
                "1",
                "-T",
                seconds(),
                "-f",
            ])
            .arg(&sql)
            .arg(&url)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let tps: f64 = text
            .lines()
            .find(|l| l.starts_with("tps"))
            .and_then(|l| l.split_whitespace().nth(2))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        assert!(
            tps > 0.0,
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        tps
    };
    let tps = pgbench("insert.sql", insert);
    let tps_counted = pgbench("create.sql", counted);
    println!(
        "creating a share, 4 clients, PostgreSQL, each from its own address (X-Forwarded-For): bshare {spread:.0} req/s; pgbench running bshare's create statement {tps_counted:.0} tps — {:.2}× (target ≥ 0.8); pgbench running the plain INSERT {tps:.0} tps — {:.2}×",
        spread / tps_counted.max(1.0),
        spread / tps.max(1.0)
    );
    println!(
        "creating a share, 4 clients, PostgreSQL, all from one address: bshare {single:.0} req/s — {:.2}× pgbench's plain INSERT",
        single / tps.max(1.0)
    );
    drop(client);
    if let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
    }
}

/// 1,000 open event streams (live pages) plus repeat page views: the view rate with the streams
/// open against the rate without, and the server's resident memory with them.
fn event_streams(bin: &Path, tmp: &Path, doc: &[u8]) {
    const STREAMS: usize = 1000;
    let _ = rlimit::increase_nofile_limit(8192);
    let data = tmp.join("streams");
    let (mut server, port) = spawn_server(
        bin,
        &data,
        &["--workers", "8", "--max-event-streams", "2000"],
        &[],
        true,
    );
    wait_ready(port);
    share_local(port, "ses_bench", "benchlive", doc);
    let gzip = ["-H", "Accept-Encoding: gzip"];
    let (rss_before, _) = rss_kib(server.id());
    let without = wrk(port, "/share/benchlive", 32, &gzip);

    let started = Instant::now();
    let streams: Vec<TcpStream> = (0..STREAMS)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                s,
                "GET /share/benchlive/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
            )
            .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = [0u8; 12];
            s.read_exact(&mut head).unwrap();
            assert_eq!(&head[9..12], b"200", "stream {i} refused");
            s
        })
        .collect();
    let opened = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let (rss_streams, _) = rss_kib(server.id());
    let with = wrk(port, "/share/benchlive", 32, &gzip);
    let (rss_after, hwm) = rss_kib(server.id());
    println!(
        "{STREAMS} open event streams plus repeat page views (gzip, one server core, 32 connections): {with:.0} req/s with the streams, {without:.0} req/s without — {:.2}× (target ≥ 0.9); streams opened in {:.0} ms",
        with / without.max(1.0),
        ms(opened)
    );
    println!(
        "resident memory: {:.1} MiB before the streams, {:.1} MiB with {STREAMS} streams open, {:.1} MiB after the view load ({:.1} MiB peak)",
        rss_before as f64 / 1024.0,
        rss_streams as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    drop(streams);
    server.kill().unwrap();
    server.wait().unwrap();
}
