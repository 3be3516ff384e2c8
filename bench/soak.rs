//! Soak run: `bshare serve` (embedded default) under minutes of mixed load — page views, creates
//! and uploads, OpenCode sync batches, clients that trickle bodies, hold idle connections or
//! send half a head and vanish — printing resident memory, threads and open descriptors at the
//! start, every 30 s, and at the end. Memory must be flat: the figure to read is the growth
//! from the first sample after warm-up to the last.
//!
//! `cargo bench --bench soak` runs 3 minutes; `BSHARE_SOAK_SECONDS=600` runs longer and
//! `BSHARE_BENCH_SHORT=1` runs 10 s (the test command's check that it still runs).

#[path = "http.rs"]
mod http;
use http::request;

use std::io::Write;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let seconds: u64 = if std::env::var_os("BSHARE_BENCH_SHORT").is_some() {
        10
    } else {
        std::env::var("BSHARE_SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180)
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_bshare"));
    let doc = std::fs::read(root.join("tests/data/opencode-1.18.33-long.sharedata.json")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&bin)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(tmp.path())
        .args([
            "--create-limit",
            "100000000",
            "--request-limit",
            "100000000",
        ])
        .env_remove("DATABASE_URL")
        .env_remove("S3_BUCKET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    while request(port, "GET", "/healthz", "", b"").map(|r| r.0) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("# soak: bshare serve under mixed load for {seconds} s");
    let start = sample(pid);
    println!("start:   {start}");

    let (share, _) = create_and_upload(port, &doc).expect("first share");
    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
    let mut threads = Vec::new();
    // Views: page, gzip page, .md, /data.
    for i in 0..4 {
        let (stop, counts, share) = (Arc::clone(&stop), Arc::clone(&counts), share.clone());
        threads.push(std::thread::spawn(move || {
            let paths = [
                (format!("/share/{share}"), ""),
                (format!("/share/{share}"), "Accept-Encoding: gzip\r\n"),
                (format!("/share/{share}.md"), ""),
                (format!("/api/share/{share}/data"), ""),
            ];
            while !stop.load(Ordering::Relaxed) {
                let (path, headers) = &paths[i % paths.len()];
                if request(port, "GET", path, headers, b"").map(|r| r.0) == Some(200) {
                    counts[0].fetch_add(1, Ordering::Relaxed);
                } else {
                    counts[5].fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Creates with uploads, and deletes of what was created.
    {
        let (stop, counts, doc) = (Arc::clone(&stop), Arc::clone(&counts), doc.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match create_and_upload(port, &doc) {
                    Some((id, secret)) => {
                        counts[1].fetch_add(1, Ordering::Relaxed);
                        let header = format!("X-Share-Secret: {secret}\r\n");
                        let _ = request(port, "DELETE", &format!("/api/share/{id}"), &header, b"");
                    }
                    None => {
                        counts[5].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    // OpenCode sync batches into a share made through OpenCode's own create.
    {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        let (status, made) = request(
            port,
            "POST",
            "/api/share",
            "Content-Type: application/json\r\n",
            br#"{"sessionID":"ses_soak"}"#,
        )
        .expect("OpenCode's create");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&made));
        let sync_id = field(&made, "id").expect("id");
        let sync_secret = field(&made, "secret").expect("secret");
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = serde_json::json!({
                    "secret": sync_secret,
                    "data": [
                        {"type": "message", "data": {"id": "msg_soak", "sessionID": "ses_soak", "role": "user", "time": {"created": 1}}},
                        {"type": "part", "data": {"id": format!("prt_soak{}", n % 50), "messageID": "msg_soak", "sessionID": "ses_soak", "type": "text", "text": format!("soak {n}")}},
                    ],
                })
                .to_string();
                match request(port, "POST", &format!("/api/share/{sync_id}/sync"), "Content-Type: application/json\r\n", body.as_bytes()) {
                    Some((200, _)) => counts[2].fetch_add(1, Ordering::Relaxed),
                    _ => counts[5].fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    // Slow clients: tricklers, idle connections and half heads, renewed as the server cuts them.
    {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        threads.push(std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.retain_mut(|s| s.write_all(b" ").is_ok());
                while held.len() < 200 {
                    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                        break;
                    };
                    let head = match held.len() % 3 {
                        0 => "POST /api/share/presign HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n",
                        1 => "GET /share/x HTTP/1.1\r\nHost: x\r\nX-Half: ",
                        _ => "",
                    };
                    let _ = s.write_all(head.as_bytes());
                    held.push(s);
                    counts[3].fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }));
    }
    // Clients that vanish mid-request.
    {
        let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                    let _ = s.write_all(b"POST /api/share/presign HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"sess");
                    counts[4].fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }));
    }

    let warm = Instant::now() + Duration::from_secs(seconds.min(30) / 3);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut first_warm: Option<Sample> = None;
    let mut next_print = Instant::now() + Duration::from_secs(30);
    let mut peak_rss = start.rss_kib;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(500));
        let s = sample(pid);
        peak_rss = peak_rss.max(s.rss_kib);
        if first_warm.is_none() && Instant::now() >= warm {
            println!("warm:    {s}");
            first_warm = Some(s);
        } else if Instant::now() >= next_print {
            println!(
                "t={:>4}s {s}",
                (seconds - end.saturating_duration_since(Instant::now()).as_secs())
            );
            next_print += Duration::from_secs(30);
        }
    }
    let under_load = sample(pid);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = sample(pid);
    let c: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!("end:     {under_load} (under load)");
    println!("after:   {after} (load stopped, 2 s later)");
    println!(
        "load: {} views, {} creates+uploads+deletes, {} sync batches, {} slow connections, {} abandoned requests, {} failures",
        c[0], c[1], c[2], c[3], c[4], c[5]
    );
    let warm = first_warm.unwrap_or(start);
    println!(
        "resident memory: {:.1} MiB after warm-up, {:.1} MiB at the end ({:+.1} MiB), peak {:.1} MiB",
        warm.rss_kib as f64 / 1024.0,
        under_load.rss_kib as f64 / 1024.0,
        (under_load.rss_kib as f64 - warm.rss_kib as f64) / 1024.0,
        peak_rss as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        c[0] > 0 && c[1] > 0 && c[2] > 0,
        "the load did not run: {c:?}"
    );
}

#[derive(Clone, Copy)]
struct Sample {
    rss_kib: u64,
    threads: u64,
    fds: usize,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "resident {:>6.1} MiB, {:>4} threads, {:>4} descriptors",
            self.rss_kib as f64 / 1024.0,
            self.threads,
            self.fds
        )
    }
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    Sample {
        rss_kib: field("VmRSS:"),
        threads: field("Threads:"),
        fds: std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count),
    }
}

fn field(body: &[u8], name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v[name].as_str()?.to_owned())
}

/// Create a share, upload the document to its URL; (share id, secret).
fn create_and_upload(port: u16, doc: &[u8]) -> Option<(String, String)> {
    let body = format!(r#"{{"sessionId":"ses_soak","size":{}}}"#, doc.len());
    let (status, created) = request(
        port,
        "POST",
        "/api/share/presign",
        "Content-Type: application/json\r\n",
        body.as_bytes(),
    )?;
    if status != 201 {
        return None;
    }
    let id = field(&created, "shareId")?;
    let secret = field(&created, "secret")?;
    let url = field(&created, "presignedUrl")?;
    let target = &url[url.find("/blob/")?..];
    let (status, _) = request(
        port,
        "PUT",
        target,
        "Content-Type: application/json\r\n",
        doc,
    )?;
    (status == 200).then_some((id, secret))
}
