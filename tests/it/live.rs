//! Live follow: the event stream over raw HTTP (`change`, `gone`, keep-alive, the cap), streams
//! that hold no worker, presigned re-uploads and other servers' changes seen live, and the page's
//! script in real Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{self, Env, Server, Stores, get, http, post_json};

const SESSION: &str = "ses_live0000000000000000001";

/// `POST /api/share` as OpenCode sends it: `(id, secret)`.
fn create(server: &Server) -> (String, String) {
    let r = post_json(&server.url("/api/share"), &json!({ "sessionID": SESSION }));
    assert_eq!(r.status, 200, "create: {}", r.text());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

/// The sync items of one user message with one text part.
fn message(n: u32, text: &str) -> Vec<Value> {
    let id = format!("msg_live{n:04}");
    vec![
        json!({"type": "message", "data": {"id": id, "sessionID": SESSION, "role": "user",
            "time": {"created": 1_795_479_651_000_i64 + i64::from(n) * 1000}}}),
        json!({"type": "part", "data": {"id": format!("prt_live{n:04}"), "messageID": id,
            "sessionID": SESSION, "type": "text", "text": text}}),
    ]
}

fn sync(server: &Server, id: &str, secret: &str, items: &[Value]) {
    let r = post_json(
        &server.url(&format!("/api/share/{id}/sync")),
        &json!({ "secret": secret, "data": items }),
    );
    assert_eq!(r.status, 200, "sync: {}", r.text());
}

/// A share with a session and `n` messages.
fn share_with_messages(server: &Server, n: u32) -> (String, String) {
    let (id, secret) = create(server);
    let mut items =
        vec![json!({"type": "session", "data": {"id": SESSION, "title": "Live follow"}})];
    for i in 1..=n {
        items.extend(message(i, &format!("message number {i}")));
    }
    sync(server, &id, &secret, &items);
    (id, secret)
}

/// An open event stream, read line by line.
#[derive(Debug)]
struct Stream {
    reader: BufReader<TcpStream>,
}

impl Stream {
    /// Open `/share/<id>/events`; `Err` holds the status line and body of a refusal.
    fn open(server: &Server, id: &str) -> Result<Self, (String, String)> {
        let addr = server.addr();
        let mut socket = TcpStream::connect(&addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        write!(
            socket,
            "GET /share/{id}/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(socket);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return Err((head, String::new()));
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        if !head.starts_with("HTTP/1.1 200 ") {
            // Keep-alive, as a browser asks: read the body by its length.
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            let mut body = vec![0u8; length];
            let _ = reader.read_exact(&mut body);
            return Err((head, String::from_utf8_lossy(&body).into_owned()));
        }
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        Ok(Self { reader })
    }

    /// The next event or comment block (lines up to a blank one), waiting at most `timeout`;
    /// `None` at the end of the stream or on timeout.
    fn next(&mut self, timeout: Duration) -> Option<String> {
        self.reader.get_ref().set_read_timeout(Some(timeout)).ok()?;
        let mut block = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line == "\n" && !block.is_empty() => return Some(block),
                Ok(_) if line == "\n" => {}
                Ok(_) => block.push_str(&line),
            }
        }
    }

    /// Wait up to `timeout` for `event: <name>`, skipping comments and other events.
    fn wait_for(&mut self, name: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(block) if block.starts_with(&format!("event: {name}\n")) => return true,
                Some(_) => {}
                None => return false,
            }
        }
        false
    }
}

#[test]
fn event_stream_says_change_and_gone_and_keeps_alive() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&["--event-keepalive", "1"]);
    let (id, secret) = share_with_messages(&server, 1);
    let mut stream = Stream::open(&server, &id).expect("the stream opens");

    // A keep-alive comment, then a change through OpenCode's sync.
    let comment = stream
        .next(Duration::from_secs(3))
        .expect("a keep-alive comment");
    assert_eq!(comment, ": keep-alive\n");
    let t = Instant::now();
    sync(&server, &id, &secret, &message(2, "the second message"));
    assert!(
        stream.wait_for("change", Duration::from_secs(2)),
        "no change event"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    // What the script then fetches: the messages from the last one it has.
    let r = get(&server.url(&format!("/share/{id}?after=msg_live0001")));
    assert_eq!(r.status, 200);
    let fragment = r.text();
    assert_eq!(fragment.matches("<article ").count(), 2, "{fragment}");
    assert!(
        fragment.starts_with("<article class=\"msg user\" id=\"m1\" data-id=\"msg_live0001\">")
    );
    assert!(fragment.contains("the second message") && !fragment.contains("<html"));
    assert_eq!(
        get(&server.url(&format!("/share/{id}?after=%22%3E"))).status,
        400
    );

    // Deleted: `gone`, and the stream ends.
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[("X-Share-Secret", &secret)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        stream.wait_for("gone", Duration::from_secs(2)),
        "no gone event"
    );
    assert_eq!(stream.next(Duration::from_secs(2)), None, "the stream ends");
    // A deleted or unknown share has no stream.
    assert!(
        Stream::open(&server, &id)
            .unwrap_err()
            .0
            .starts_with("HTTP/1.1 410")
    );
    assert!(
        Stream::open(&server, "nothere1")
            .unwrap_err()
            .0
            .starts_with("HTTP/1.1 404")
    );
}

/// Raise this process's descriptor limit for a thousand sockets.
fn raise_descriptor_limit() {
    let limit = rlimit::increase_nofile_limit(8192).unwrap_or(0);
    assert!(
        limit >= 2500,
        "the test needs 2,500 descriptors and the hard limit is {limit}: raise it (ulimit -Hn)"
    );
}

#[test]
fn a_thousand_streams_hold_no_worker_and_the_cap_answers_503() {
    raise_descriptor_limit();
    let env = Env::new(Stores::Embedded);
    // Two workers and 64 connections: if streams held either, pages could not be served.
    let server = env.server(&[
        "--workers",
        "2",
        "--max-connections",
        "64",
        "--max-event-streams",
        "1000",
    ]);
    let (id, secret) = share_with_messages(&server, 3);
    let page = server.url(&format!("/share/{id}"));
    assert_eq!(get(&page).status, 200);

    let mut streams: Vec<Stream> = (0..1000)
        .map(|i| Stream::open(&server, &id).unwrap_or_else(|e| panic!("stream {i}: {e:?}")))
        .collect();
    // The thousand-and-first is refused, as JSON.
    let (status, body) = Stream::open(&server, &id).expect_err("over the cap: refused");
    assert!(status.starts_with("HTTP/1.1 503"), "{status}");
    let body: Value = serde_json::from_str(&body).expect("a JSON error");
    assert_eq!(body["code"], "TOO_MANY_STREAMS");

    // Pages are served at once, by the same two workers, over new connections.
    for _ in 0..20 {
        let t = Instant::now();
        let r = get(&page);
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a page view took {:?} with 1,000 streams open",
            t.elapsed()
        );
    }
    // Every stream still hears of a change.
    sync(&server, &id, &secret, &message(4, "seen by a thousand"));
    for (i, s) in streams.iter_mut().enumerate().step_by(50) {
        assert!(
            s.wait_for("change", Duration::from_secs(3)),
            "stream {i} heard no change"
        );
    }
    // Streams that close give their place back.
    streams.truncate(10);
    assert!(
        support::eventually(Duration::from_secs(5), || Stream::open(&server, &id)
            .is_ok()),
        "closed streams did not free the cap"
    );
}

#[test]
fn presigned_reupload_and_other_servers_changes_reach_the_stream() {
    let env = Env::new(Stores::PostgresS3);
    let a = env.server(&[]);
    let b = env.server(&[]);
    let doc = support::read_data("opencode-1.18.33-short.sharedata.json");
    let created = support::share_document(&a, &doc);
    let id = created["shareId"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    let mut stream = Stream::open(&a, id).expect("the stream opens");

    // A re-upload straight to the bucket: the server never sees the PUT.
    let r = post_json(
        &b.url(&format!("/api/share/{id}/presign")),
        &json!({ "size": doc.len() + 1 }),
    );
    assert_eq!(r.status, 401, "the secret is needed: {}", r.text());
    let r = http(
        "POST",
        &b.url(&format!("/api/share/{id}/presign")),
        &[
            ("X-Share-Secret", secret),
            ("Content-Type", "application/json"),
        ],
        Some(json!({ "size": doc.len() + 1 }).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["presignedUrl"].as_str().unwrap().to_owned();
    assert!(
        !url.starts_with(&a.base) && !url.starts_with(&b.base),
        "{url}"
    );
    let mut changed = doc.clone();
    changed.push(b'\n');
    // Let the announcement of the new upload URL (NOTIFY) pass first: what sees the upload below
    // is the hub's own check of the object while the URL is open, nothing else.
    std::thread::sleep(Duration::from_secs(1));
    let t = Instant::now();
    assert_eq!(support::upload(&url, &changed).status, 200);
    assert!(
        stream.wait_for("change", Duration::from_secs(2)),
        "a presigned re-upload was not seen within 2 s"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    // Deleted through the other server: `gone` arrives through NOTIFY.
    let r = http(
        "DELETE",
        &b.url(&format!("/api/share/{id}")),
        &[("X-Share-Secret", secret)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        stream.wait_for("gone", Duration::from_secs(3)),
        "a delete on another server was not seen"
    );
}

#[test]
fn chromium_follows_sync_and_presigned_uploads_live_and_shows_the_takedown() {
    let env = Env::new(Stores::PostgresS3);
    let server = env.server(&[]);
    let (id, secret) = create(&server);
    let mut items =
        vec![json!({"type": "session", "data": {"id": SESSION, "title": "Live follow"}})];
    for i in 1..=40 {
        items.extend(message(
            i,
            &format!("message number {i}: a paragraph long enough to give the page some height, so that the reader can scroll to its middle and stay there while new messages arrive below."),
        ));
    }
    sync(&server, &id, &secret, &items);
    let shots = tempfile::tempdir().unwrap();
    let playwright = std::env::var("BSHARE_TEST_PLAYWRIGHT")
        .expect("BSHARE_TEST_PLAYWRIGHT: run the tests through scripts/test, which installs playwright-core");
    let out = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/live_browser.mjs"
        ))
        .env("BSHARE_TEST_PLAYWRIGHT", playwright)
        .env("BASE", &server.base)
        .env("SHARE_ID", &id)
        .env("SECRET", &secret)
        .env("SESSION", SESSION)
        .env("SHOTS", shots.path())
        .output()
        .expect("node runs the browser script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser script failed:\n{stdout}\n{}\nserver:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.logs()
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_eq!(result["badgeText"], "live");
    assert_eq!(result["articles"], 42, "{result}");
    for key in ["syncMs", "uploadMs", "goneMs"] {
        assert!(result[key].as_u64().unwrap() < 3000, "{key}: {result}");
    }
    assert_eq!(result["syncScroll"][0], result["syncScroll"][1]);
    assert_eq!(result["uploadScroll"][0], result["uploadScroll"][1]);
    assert!(
        result["goneText"]
            .as_str()
            .unwrap()
            .contains("This share was taken down")
    );
    assert_eq!(result["otherHosts"], json!([]));
    eprintln!("live follow in Chromium: {result}");
    // The pictures for the documentation: taken on every run, written to docs/ on request
    // (BSHARE_UPDATE_DOCS=1), so a test run leaves the tree as it was.
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for name in ["live-badge.png", "taken-down.png"] {
        let png = std::fs::read(shots.path().join(name)).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        if std::env::var_os("BSHARE_UPDATE_DOCS").is_some_and(|v| v == "1") {
            std::fs::write(docs.join(name), png).unwrap();
        }
    }
}

#[test]
fn an_expiring_share_tells_its_stream_gone() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let doc = support::read_data("opencode-1.18.33-short.sharedata.json");
    let r = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "ses_expiring", "size": doc.len(), "expiresIn": 2}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["shareId"].as_str().unwrap();
    assert_eq!(
        support::upload(created["presignedUrl"].as_str().unwrap(), &doc).status,
        200
    );
    let mut stream = Stream::open(&server, id).expect("the stream opens");
    // Nothing announces an expiry: the hub sees it by itself, within a second.
    assert!(
        stream.wait_for("gone", Duration::from_secs(4)),
        "no gone event on expiry"
    );
    assert_eq!(stream.next(Duration::from_secs(2)), None, "the stream ends");
}
