//! The HTTP edge as a deployment lives it, against the real binary: idle nights longer than any
//! timeout, floods of idle and half-sent connections, clients that trickle, hostile bytes,
//! descriptor exhaustion and SIGTERM.

// Building hostile heads line by line reads best as format-and-collect.
#![allow(clippy::format_collect, clippy::type_complexity)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{Env, Server, Stores, eventually, get, http, read_data, share_document};

/// What a raw exchange came to.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Status(u16),
    /// Closed (or reset) with no answer.
    Closed,
    /// Nothing within the wait.
    Silent,
}

fn connect(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.addr()).expect("connect to bshare");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
}

/// Read the status of the first response on `stream`, waiting at most `wait`.
fn read_status(stream: &mut TcpStream, wait: Duration) -> Outcome {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if got.len() >= 12 {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if got.is_empty() {
                    return Outcome::Silent;
                }
                break;
            }
            Err(_) => break,
        }
    }
    if got.is_empty() {
        return Outcome::Closed;
    }
    let line = String::from_utf8_lossy(&got);
    match line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
    {
        Some(status) => Outcome::Status(status),
        None => panic!("not an HTTP response: {line:?}"),
    }
}

/// Send `bytes` on a new connection and read the answer.
fn exchange(server: &Server, bytes: &[u8]) -> Outcome {
    let mut stream = connect(server);
    // A server that closes early may reset the rest of a long write: that is an answer too.
    let _ = stream.write_all(bytes);
    read_status(&mut stream, Duration::from_secs(20))
}

/// GET a page and return how long it took; panics unless 200.
fn timed_page(server: &Server, path: &str) -> Duration {
    let started = Instant::now();
    let r = get(&server.url(path));
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    started.elapsed()
}

fn shared_page(server: &Server) -> (String, serde_json::Value) {
    let created = share_document(server, &read_data("opencode-1.18.33-short.sharedata.json"));
    let id = created["shareId"].as_str().unwrap().to_owned();
    (format!("/share/{id}"), created)
}

fn raise_own_descriptor_limit() {
    let limit = rlimit::increase_nofile_limit(u64::MAX).expect("raise RLIMIT_NOFILE");
    assert!(
        limit >= 4000,
        "the tests need 4,000 descriptors and the hard limit is {limit}: raise it (ulimit -Hn)"
    );
}

#[test]
fn answers_after_idle_periods_longer_than_any_timeout() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let (page, _) = shared_page(&server);
    // A keep-alive connection left open over the idle period is closed by the server.
    let mut kept = connect(&server);
    let host = server.addr();
    kept.write_all(format!("GET {page} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    assert_eq!(
        read_status(&mut kept, Duration::from_secs(5)),
        Outcome::Status(200)
    );
    for round in 1..=2 {
        std::thread::sleep(Duration::from_secs(70));
        let took = timed_page(&server, &page);
        assert!(took < Duration::from_secs(2), "round {round}: {took:?}");
        assert_eq!(get(&server.url("/healthz")).status, 200, "round {round}");
    }
    // Idle longer than the keep-alive timeout: the server closed it (EOF, not silence).
    let mut rest = Vec::new();
    kept.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let _ = kept.read_to_end(&mut rest);
    assert_eq!(
        kept.read(&mut [0u8; 1]).unwrap_or(0),
        0,
        "the idle keep-alive connection is still open"
    );
}

/// A client that sends a body at one byte a second.
struct Trickler {
    stream: TcpStream,
    sent: usize,
}

fn trickler(server: &Server, head: &str) -> Trickler {
    let mut stream = connect(server);
    stream.write_all(head.as_bytes()).unwrap();
    Trickler { stream, sent: 0 }
}

#[test]
fn a_flood_of_idle_half_sent_and_trickling_connections_starves_no_one() {
    raise_own_descriptor_limit();
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let (page, created) = shared_page(&server);
    let id = created["shareId"].as_str().unwrap();
    // Warm up the way the flood's ordinary requests will run, so every worker has opened its
    // database connection before the level is taken.
    std::thread::scope(|scope| {
        for _ in 0..16 {
            scope.spawn(|| {
                for _ in 0..10 {
                    timed_page(&server, &page);
                    assert_eq!(get(&server.url("/healthz")).status, 200);
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let (fds_before, threads_before) = server.fds_and_threads();

    let host = server.addr();
    let idle: Vec<TcpStream> = (0..2000).map(|_| connect(&server)).collect();
    let mut half: Vec<TcpStream> = (0..300).map(|_| connect(&server)).collect();
    for s in &mut half {
        s.write_all(format!("GET {page} HTTP/1.1\r\nHost: {host}\r\nX-Half: ").as_bytes())
            .unwrap();
    }
    let mut tricklers: Vec<Trickler> = (0..500)
        .map(|i| {
            let path = if i % 2 == 0 {
                format!("/api/share/{id}/sync")
            } else {
                "/api/share/presign".to_owned()
            };
            trickler(
                &server,
                &format!(
                    "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
                ),
            )
        })
        .collect();
    // Every flood connection is really open at the server.
    assert!(
        eventually(Duration::from_secs(10), || server.fds_and_threads().0
            >= fds_before + 2700),
        "the flood did not reach the server: {:?} descriptors",
        server.fds_and_threads()
    );

    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for i in 0..50 {
        let took = timed_page(&server, &page);
        slowest = slowest.max(took);
        if i % 10 == 0 {
            for t in &mut tricklers {
                if t.stream.write_all(b" ").is_ok() {
                    t.sent += 1;
                }
            }
        }
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a page took {slowest:?} during the flood"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    drop(idle);
    drop(half);
    drop(tricklers);
    let settled = eventually(Duration::from_secs(20), || {
        let (fds, threads) = server.fds_and_threads();
        fds <= fds_before + 4 && threads <= threads_before + 2
    });
    assert!(
        settled,
        "descriptors and threads did not return to their level: before {:?}, now {:?}",
        (fds_before, threads_before),
        server.fds_and_threads()
    );
    assert!(timed_page(&server, &page) < Duration::from_secs(2));
}

#[test]
fn trickled_bodies_are_cut_off_and_hold_no_worker() {
    let env = Env::new(Stores::Embedded);
    // Fewer workers than tricklers: if a trickled body held a worker, pages would stop.
    let server = env.server(&["--workers", "4"]);
    let (page, created) = shared_page(&server);
    let id = created["shareId"].as_str().unwrap();
    let upload = created["presignedUrl"].as_str().unwrap();
    let upload_target = upload.split_once("://").unwrap().1;
    let upload_target = &upload_target[upload_target.find('/').unwrap()..];
    let host = server.addr();
    let mut tricklers: Vec<(Trickler, Instant, Option<Duration>)> = (0..20)
        .map(|i| {
            let head = if i % 2 == 0 {
                format!(
                    "POST /api/share/{id}/sync HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                )
            } else {
                format!(
                    "PUT {upload_target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
                )
            };
            (trickler(&server, &head), Instant::now(), None)
        })
        .collect();
    for (t, _, _) in &mut tricklers {
        t.stream.set_nonblocking(true).unwrap();
    }
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(25)
        && tricklers.iter().any(|(_, _, cut)| cut.is_none())
    {
        for (t, since, cut) in &mut tricklers {
            if cut.is_some() {
                continue;
            }
            let _ = t.stream.write_all(b" ").map(|()| t.sent += 1);
            let mut buf = [0u8; 256];
            match t.stream.read(&mut buf) {
                Ok(n) => {
                    if n > 0 {
                        let text = String::from_utf8_lossy(&buf[..n]);
                        assert!(text.starts_with("HTTP/1.1 408"), "a trickler got {text:?}");
                    }
                    *cut = Some(since.elapsed());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => *cut = Some(since.elapsed()),
            }
        }
        slowest = slowest.max(timed_page(&server, &page));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a page took {slowest:?} while bodies trickled"
    );
    for (i, (t, _, cut)) in tricklers.iter().enumerate() {
        let cut = cut.unwrap_or_else(|| panic!("trickler {i} was never cut off"));
        assert!(
            cut < Duration::from_secs(20) && t.sent < 30,
            "trickler {i} cut after {cut:?}, {} bytes",
            t.sent
        );
    }
    // Nothing of the trickled bodies landed.
    let doc = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(doc.status, 200);
}

#[test]
fn heads_are_bounded_in_size_and_time() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let host = server.addr();
    // A request line of 8 KiB is fine; one byte more is 414.
    let path_of = |len: usize| format!("/share/{}", "a".repeat(len - 7));
    let line_len = |path: &str| format!("GET {path} HTTP/1.1").len();
    let mut path = path_of(8000);
    while line_len(&path) < 8 * 1024 {
        path.push('a');
    }
    let ok = exchange(
        &server,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    assert_eq!(ok, Outcome::Status(404), "an 8 KiB request line");
    path.push('a');
    let long = exchange(
        &server,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    assert_eq!(long, Outcome::Status(414));
    // A header line over 8 KiB, 101 headers, a 70 KiB head: 431.
    let big = format!("X-Big: {}\r\n", "b".repeat(8 * 1024));
    let many = (0..101)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect::<String>();
    let hundred = (0..99).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let wide = (0..9)
        .map(|i| format!("X-{i}: {}\r\n", "w".repeat(8000)))
        .collect::<String>();
    for (name, headers, want) in [
        ("one long header", big.as_str(), 431),
        ("101 headers", many.as_str(), 431),
        ("100 headers", hundred.as_str(), 200),
        ("a 72 KB head", wide.as_str(), 431),
    ] {
        let got = exchange(
            &server,
            format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n").as_bytes(),
        );
        assert_eq!(got, Outcome::Status(want), "{name}");
    }
    // A head sent a byte every half second never trips a per-read timeout, but the deadline
    // of the whole head cuts it at 10 s.
    let mut slow = connect(&server);
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Slow: {}",
        "s".repeat(60)
    );
    let started = Instant::now();
    slow.set_nonblocking(false).unwrap();
    let mut answer = Outcome::Silent;
    for byte in head.bytes() {
        if slow.write_all(&[byte]).is_err() {
            break;
        }
        slow.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        match slow.read(&mut buf) {
            Ok(0) => {
                answer = Outcome::Closed;
                break;
            }
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                answer = Outcome::Status(text[9..12].parse().unwrap());
                break;
            }
            Err(_) => {}
        }
    }
    let took = started.elapsed();
    assert_eq!(answer, Outcome::Status(408), "after {took:?}");
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(15),
        "cut after {took:?}"
    );
}

#[test]
fn a_refused_body_is_not_drained() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let (_, created) = shared_page(&server);
    let id = created["shareId"].as_str().unwrap();
    let host = server.addr();
    for head in [
        format!(
            "POST /api/share/{id}/sync HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1000000000\r\n\r\n"
        ),
        format!(
            "POST /api/share/presign HTTP/1.1\r\nHost: {host}\r\nContent-Length: 70000\r\n\r\n"
        ),
    ] {
        let mut stream = connect(&server);
        stream.write_all(head.as_bytes()).unwrap();
        let started = Instant::now();
        assert_eq!(
            read_status(&mut stream, Duration::from_secs(5)),
            Outcome::Status(413)
        );
        // The server closes instead of reading a gigabyte: sending soon fails or the read ends.
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0usize;
        while sent < 64 * 1024 * 1024 && started.elapsed() < Duration::from_secs(10) {
            match stream.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        assert!(
            sent < 32 * 1024 * 1024,
            "the server took {sent} bytes of a refused body"
        );
    }
}

#[test]
fn connections_beyond_the_cap_get_a_fast_503() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&["--max-connections", "20"]);
    let held: Vec<TcpStream> = (0..20).map(|_| connect(&server)).collect();
    assert!(eventually(Duration::from_secs(5), || {
        let mut extra = connect(&server);
        let host = server.addr();
        let _ =
            extra.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        read_status(&mut extra, Duration::from_secs(1)) == Outcome::Status(503)
    }));
    drop(held);
    assert!(eventually(Duration::from_secs(5), || get(
        &server.url("/healthz")
    )
    .status
        == 200));
}

#[test]
fn running_out_of_descriptors_pauses_accepting_and_never_ends_it() {
    raise_own_descriptor_limit();
    let env = Env::new(Stores::Embedded);
    // 300 connections do not fit in 128 descriptors: accept() fails with EMFILE.
    let server = env.server_with_nofile(128, &["--max-connections", "1000"]);
    let (page, _) = shared_page(&server);
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(server.addr()).ok())
        .collect();
    assert!(flood.len() > 200, "only {} connections", flood.len());
    std::thread::sleep(Duration::from_secs(2));
    drop(flood);
    assert!(
        eventually(Duration::from_secs(15), || get(&server.url(&page)).status
            == 200),
        "the server stopped serving after running out of descriptors:\n{}",
        server.logs()
    );
    assert!(
        server.logs().contains("accepting again"),
        "EMFILE was not logged:\n{}",
        server.logs()
    );
    // Still alive after the pause, on new connections.
    for _ in 0..20 {
        assert!(timed_page(&server, &page) < Duration::from_secs(2));
    }
}

#[test]
fn sigterm_lets_the_request_under_way_finish_and_exits_zero() {
    let env = Env::new(Stores::Embedded);
    let mut server = env.server(&[]);
    let doc = read_data("opencode-1.18.33-short.sharedata.json");
    let created = crate::support::create_share(&server, None, Some(doc.len()));
    let upload = created["presignedUrl"].as_str().unwrap();
    let target = upload.split_once("://").unwrap().1;
    let target = &target[target.find('/').unwrap()..];
    let host = server.addr();
    let mut slow = connect(&server);
    slow.write_all(
        format!(
            "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            doc.len()
        )
        .as_bytes(),
    )
    .unwrap();
    let half = doc.len() / 2;
    slow.write_all(&doc[..half]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    server.signal("TERM");
    // No new connection is accepted after the signal.
    assert!(
        eventually(Duration::from_secs(2), || TcpStream::connect(server.addr())
            .is_err()),
        "the port still accepts after SIGTERM"
    );
    std::thread::sleep(Duration::from_secs(1));
    slow.write_all(&doc[half..]).unwrap();
    assert_eq!(
        read_status(&mut slow, Duration::from_secs(5)),
        Outcome::Status(200),
        "the upload under way did not complete:\n{}",
        server.logs()
    );
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("the server did not exit within 10 s of SIGTERM");
    assert!(status.success(), "exit status {status}:\n{}", server.logs());
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert!(server.logs().contains("SIGTERM"), "{}", server.logs());
    // What was acknowledged is durable: a new server on the same data serves it.
    let again = env.server(&[]);
    let r = get(&again.url(&format!(
        "/api/share/{}",
        created["shareId"].as_str().unwrap()
    )));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["sessionId"],
        serde_json::from_slice::<serde_json::Value>(&doc).unwrap()["sessionId"]
    );
}

#[test]
fn sigint_with_nothing_under_way_exits_zero_at_once() {
    let env = Env::new(Stores::Embedded);
    let mut server = env.server(&[]);
    assert_eq!(get(&server.url("/healthz")).status, 200);
    let started = Instant::now();
    server.signal("INT");
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("no exit after SIGINT");
    assert!(status.success());
    assert!(started.elapsed() < Duration::from_secs(2));
}

/// The hostile corpus: every entry gets a clear 4xx or, for bytes that are not HTTP, a clean
/// close; never a 5xx or a hang, and the server answers after each.
#[test]
fn hostile_requests_get_a_clear_4xx_and_never_harm_the_server() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let (_, created) = shared_page(&server);
    let id = created["shareId"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let upload = created["presignedUrl"].as_str().unwrap().to_owned();
    let other = crate::support::create_share(&server, None, Some(10));
    let other_id = other["shareId"].as_str().unwrap().to_owned();
    let host = server.addr();

    let mut corpus: Vec<(String, Vec<u8>, bool)> = Vec::new();
    macro_rules! add {
        ($name:expr, $bytes:expr $(,)?) => {
            corpus.push(($name, $bytes, false))
        };
    }
    let get_req =
        |target: &str| format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes();

    // Methods and paths.
    for target in [
        "/../../etc/passwd",
        "/share/../../etc/passwd",
        "/share/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/share/..%2f..%2fetc",
        "/api/share/..%2Fsessions",
        "/api/share/%00",
        "/share/abc%00def",
        "/share/%ff%fe",
        "/share/aaaaaaaa/../../../x",
        "/blob/sessions/../../bshare.db",
        "/blob/sessions/%2e%2e%2fbshare.db",
        "/blob/sessions/x.json?exp=1&len=1&sig=00",
        "/assets/../../etc/passwd",
        "/assets/%2e%2e/secret",
        "/share/",
        "/share//x",
        "//share/x",
        "/share/x/y/z",
        "/api/share/x/y/z/w",
        "/api",
        "/api/",
        "/api/share/",
        "/share/short",
        "/share/has space",
        "/share/\u{7f}",
    ] {
        add!(format!("GET {target:?}"), get_req(target));
    }
    for (name, line) in [
        ("NUL in path", b"GET /share/a\x00b HTTP/1.1\r\n".to_vec()),
        (
            "invalid UTF-8 path",
            b"GET /share/\xc3\x28 HTTP/1.1\r\n".to_vec(),
        ),
        (
            "latin-1 path",
            b"GET /share/\xe9t\xe9 HTTP/1.1\r\n".to_vec(),
        ),
        (
            "absolute form",
            b"GET http://evil.example/ HTTP/1.1\r\n".to_vec(),
        ),
        ("asterisk form", b"OPTIONS * HTTP/1.1\r\n".to_vec()),
        (
            "authority form",
            b"CONNECT evil.example:443 HTTP/1.1\r\n".to_vec(),
        ),
        ("lowercase method", b"get /healthz HTTP/1.1\r\n".to_vec()),
        ("unknown method", b"BREW /healthz HTTP/1.1\r\n".to_vec()),
        (
            "long method",
            format!("{} /healthz HTTP/1.1\r\n", "A".repeat(100)).into_bytes(),
        ),
        ("method with slash", b"GE/T /healthz HTTP/1.1\r\n".to_vec()),
        ("two spaces", b"GET  /healthz HTTP/1.1\r\n".to_vec()),
        ("tab separated", b"GET\t/healthz\tHTTP/1.1\r\n".to_vec()),
        ("no version", b"GET /healthz\r\n".to_vec()),
        ("HTTP/0.9", b"GET /\r\n".to_vec()),
        ("HTTP/2.0 version", b"GET / HTTP/2.0\r\n".to_vec()),
        ("HTTP/1.2", b"GET / HTTP/1.2\r\n".to_vec()),
        ("HTTP/9.9", b"GET / HTTP/9.9\r\n".to_vec()),
        ("lowercase version", b"GET / http/1.1\r\n".to_vec()),
        (
            "100 KB path",
            format!("GET /share/{} HTTP/1.1\r\n", "a".repeat(100_000)).into_bytes(),
        ),
        (
            "1 MB path",
            format!("GET /{} HTTP/1.1\r\n", "p".repeat(1_000_000)).into_bytes(),
        ),
        (
            "DELETE without id",
            b"DELETE /api/share HTTP/1.1\r\n".to_vec(),
        ),
        (
            "PUT on a page",
            b"PUT /share/abcdefgh HTTP/1.1\r\n".to_vec(),
        ),
        ("TRACE", b"TRACE / HTTP/1.1\r\n".to_vec()),
        (
            "PATCH api",
            b"PATCH /api/share/abcdefgh HTTP/1.1\r\n".to_vec(),
        ),
    ] {
        let mut bytes = line;
        bytes.extend_from_slice(format!("Host: {host}\r\nContent-Length: 0\r\n\r\n").as_bytes());
        add!(name.to_owned(), bytes);
    }

    // Heads.
    let big_header = format!("X-Big: {}\r\n", "h".repeat(1024 * 1024));
    let ten_thousand = (0..10_000)
        .map(|i| format!("X-{i}: v\r\n"))
        .collect::<String>();
    for (name, bytes) in [
        ("bare LF", b"GET /healthz HTTP/1.1\nHost: x\n\n".to_vec()),
        ("bare CR", b"GET /healthz HTTP/1.1\rHost: x\r\r".to_vec()),
        ("mixed line ends", b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n".to_vec()),
        ("1 MB header", format!("GET /healthz HTTP/1.1\r\n{big_header}\r\n").into_bytes()),
        ("10,000 headers", format!("GET /healthz HTTP/1.1\r\n{ten_thousand}\r\n").into_bytes()),
        ("header without colon", b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_vec()),
        ("space before colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n".to_vec()),
        ("empty header name", b"GET /healthz HTTP/1.1\r\n: x\r\n\r\n".to_vec()),
        ("folded header", b"GET /healthz HTTP/1.1\r\nX-A: a\r\n  folded\r\n\r\n".to_vec()),
        ("NUL in header", b"GET /healthz HTTP/1.1\r\nX-A: a\x00b\r\n\r\n".to_vec()),
        ("UTF-8 in header", "GET /healthz HTTP/1.1\r\nX-A: caf\u{e9}\r\n\r\n".as_bytes().to_vec()),
        ("control char in name", b"GET /healthz HTTP/1.1\r\nX\x01A: a\r\n\r\n".to_vec()),
        ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec()),
        ("TLS ClientHello", {
            let mut v = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03];
            v.extend((0..500).map(|i| (i * 7 % 256) as u8));
            v
        }),
        ("SSLv2 hello", vec![0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]),
        ("random binary", (0..4096).map(|i| ((i * 131 + 7) % 251) as u8).collect()),
        ("only CRLFs", b"\r\n\r\n\r\n\r\n".to_vec()),
        ("only NULs", vec![0u8; 2048]),
        ("Expect: something else", b"POST /api/share/presign HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
        ("Upgrade: websocket", b"GET /share/abcdefgh HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_vec()),
        ("Upgrade: h2c", b"GET /share/h2cupgrade1 HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n".to_vec()),
    ] {
        add!(name.to_owned(), bytes);
    }

    // Framing.
    let post = |path: &str, headers: &str, body: &[u8]| {
        let mut v = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n{headers}\r\n").into_bytes();
        v.extend_from_slice(body);
        v
    };
    for path in [
        "/api/share/presign".to_owned(),
        format!("/api/share/{id}/sync"),
        "/api/share".to_owned(),
    ] {
        for (name, headers, body) in [
            ("negative length", "Content-Length: -1\r\n", &b"{}"[..]),
            (
                "huge length",
                "Content-Length: 99999999999999999999999999\r\n",
                b"{}",
            ),
            (
                "u64::MAX length",
                "Content-Length: 18446744073709551615\r\n",
                b"{}",
            ),
            ("hex length", "Content-Length: 0x10\r\n", b"{}"),
            ("length with plus", "Content-Length: +2\r\n", b"{}"),
            (
                "two different lengths",
                "Content-Length: 2\r\nContent-Length: 3\r\n",
                b"{}x",
            ),
            ("list of lengths", "Content-Length: 2, 3\r\n", b"{}x"),
            ("empty length", "Content-Length: \r\n", b"{}"),
            (
                "length and chunked",
                "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
                b"2\r\n{}\r\n0\r\n\r\n",
            ),
            ("gzip coding", "Transfer-Encoding: gzip\r\n", b"{}"),
            (
                "chunked twice",
                "Transfer-Encoding: chunked, chunked\r\n",
                b"2\r\n{}\r\n0\r\n\r\n",
            ),
            ("identity coding", "Transfer-Encoding: identity\r\n", b"{}"),
            (
                "bad chunk size",
                "Transfer-Encoding: chunked\r\n",
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
            (
                "negative chunk size",
                "Transfer-Encoding: chunked\r\n",
                b"-2\r\n{}\r\n0\r\n\r\n",
            ),
            (
                "overflowing chunk size",
                "Transfer-Encoding: chunked\r\n",
                b"ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
            ),
            (
                "huge chunk",
                "Transfer-Encoding: chunked\r\n",
                b"fffffffff\r\n{}\r\n0\r\n\r\n",
            ),
            (
                "chunk without CRLF",
                "Transfer-Encoding: chunked\r\n",
                b"2\r\n{}XX0\r\n\r\n",
            ),
            (
                "chunk size with LF only",
                "Transfer-Encoding: chunked\r\n",
                b"2\n{}\r\n0\r\n\r\n",
            ),
            ("body over the length", "Content-Length: 1\r\n", b"{}"),
        ] {
            add!(format!("{name} on POST {path}"), post(&path, headers, body));
        }
    }
    // Heads and bodies that end early are cut by their deadlines, not waited on forever.
    corpus.push((
        "no CRLF at all".to_owned(),
        b"GET /healthz HTTP/1.1".to_vec(),
        true,
    ));
    corpus.push((
        "missing last chunk".to_owned(),
        post(
            "/api/share/presign",
            "Transfer-Encoding: chunked\r\n",
            b"2\r\n{}\r\n",
        ),
        true,
    ));
    corpus.push((
        "body shorter than its length".to_owned(),
        post("/api/share/presign", "Content-Length: 100\r\n", b"{}"),
        true,
    ));

    // JSON bodies on every route.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("deep array", deep.into_bytes()),
        ("deep object", deep_obj.into_bytes()),
        ("not JSON", b"hello".to_vec()),
        ("truncated JSON", b"{\"sessionId\": \"ses".to_vec()),
        ("invalid UTF-8", b"{\"sessionId\": \"\xff\xfe\"}".to_vec()),
        ("lone surrogate", br#"{"sessionId": "\ud800"}"#.to_vec()),
        ("array", b"[1,2,3]".to_vec()),
        ("string", b"\"x\"".to_vec()),
        ("null", b"null".to_vec()),
        ("number", b"1e999".to_vec()),
        ("wrong types", br#"{"sessionId": 5, "shareId": [], "size": "x", "expiresIn": {}, "secret": 1, "data": "x"}"#.to_vec()),
        ("overflowing size", br#"{"sessionId": "ses_x", "size": 1e400}"#.to_vec()),
        ("negative size", br#"{"sessionId": "ses_x", "size": -5}"#.to_vec()),
        ("huge size", br#"{"sessionId": "ses_x", "size": 18446744073709551616}"#.to_vec()),
        ("float size", br#"{"sessionId": "ses_x", "size": 1.5}"#.to_vec()),
        ("bad share id", br#"{"sessionId": "ses_x", "shareId": "../../etc"}"#.to_vec()),
        ("short share id", br#"{"sessionId": "ses_x", "shareId": "abc"}"#.to_vec()),
        ("unicode share id", "{\"sessionId\": \"ses_x\", \"shareId\": \"\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\"}".as_bytes().to_vec()),
        ("NUL share id", br#"{"sessionId": "ses_x", "shareId": "abcd\u0000efgh"}"#.to_vec()),
        ("empty session id", br#"{"sessionId": ""}"#.to_vec()),
        ("60 KB session id", format!("{{\"sessionId\": \"{}\"}}", "s".repeat(60_000)).into_bytes()),
        ("duplicate keys", br#"{"sessionId": "a", "sessionId": "b", "size": 1, "size": -1}"#.to_vec()),
        ("BOM", b"\xef\xbb\xbf{}".to_vec()),
    ];
    let json_routes: Vec<(&str, String, Vec<(&str, String)>)> = vec![
        ("POST", "/api/share/presign".to_owned(), vec![]),
        ("POST", "/api/share".to_owned(), vec![]),
        // A wrong secret: the body must not matter (with the right one, a body of unknown fields
        // is a valid re-sync).
        (
            "POST",
            format!("/api/share/{id}/presign"),
            vec![("X-Share-Secret", "x".repeat(32))],
        ),
        ("POST", format!("/api/share/{id}/sync"), vec![]),
        (
            "DELETE",
            format!("/api/share/{other_id}"),
            vec![("X-Share-Secret", "wrong".repeat(7))],
        ),
    ];
    for (method, path, headers) in &json_routes {
        for (name, body) in &bodies {
            let mut v = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len()).into_bytes();
            for (n, val) in headers {
                v.extend_from_slice(format!("{n}: {val}\r\n").as_bytes());
            }
            v.extend_from_slice(b"\r\n");
            v.extend_from_slice(body);
            add!(format!("{name} on {method} {path}"), v);
        }
    }

    // The right secret and a body that is wrong for the re-sync.
    for (name, body) in [
        ("not JSON", &b"hello"[..]),
        ("an array", b"[1]"),
        ("size of the wrong type", br#"{"size": "x"}"#),
        ("negative size", br#"{"size": -5}"#),
        ("float size", br#"{"size": 1.5}"#),
        ("overflowing size", br#"{"size": 1e400}"#),
        ("size over the limit", br#"{"size": 999999999999}"#),
    ] {
        let mut v = format!("POST /api/share/{id}/presign HTTP/1.1\r\nHost: {host}\r\nX-Share-Secret: {secret}\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        add!(format!("re-sync with {name}"), v);
    }

    // Secrets.
    let near_miss = {
        let mut s = secret.clone().into_bytes();
        let last = s.len() - 1;
        s[last] = if s[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(s).unwrap()
    };
    for (name, value) in [
        ("empty secret", String::new()),
        ("one-char secret", "x".to_owned()),
        ("huge secret", "s".repeat(7000)),
        ("near-miss secret", near_miss.clone()),
        ("secret with a prefix", format!("x{secret}")),
        ("truncated secret", secret[..secret.len() - 1].to_owned()),
        (
            "secret of another share",
            other["secret"].as_str().unwrap().to_owned(),
        ),
        (
            "non-base64 secret",
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!".to_owned(),
        ),
    ] {
        for (method, path) in [
            ("POST", format!("/api/share/{id}/presign")),
            ("DELETE", format!("/api/share/{id}")),
        ] {
            add!(
                format!("{name} on {method} {path}"),
                format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nX-Share-Secret: {value}\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes(),
            );
        }
        let body = serde_json::json!({ "secret": value, "data": [] }).to_string();
        add!(
            format!("{name} on sync"),
            format!("POST /api/share/{id}/sync HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes(),
        );
    }

    // Upload URLs: each parameter altered or missing, another share's path, the wrong length.
    let (upload_path, upload_query) = {
        let target = upload.split_once("://").unwrap().1;
        let target = &target[target.find('/').unwrap()..];
        let (p, q) = target.split_once('?').unwrap();
        (p.to_owned(), q.to_owned())
    };
    let params: Vec<(String, String)> = upload_query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let put = |target: &str, body: &[u8]| {
        let mut v = format!("PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v
    };
    let doc = b"{\"shareId\":\"x\"}".to_vec();
    for i in 0..params.len() {
        let without: Vec<String> = params
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (k, v))| format!("{k}={v}"))
            .collect();
        add!(
            format!("upload without {}", params[i].0),
            put(&format!("{upload_path}?{}", without.join("&")), &doc)
        );
        for altered in [
            "0",
            "",
            "zz",
            "99999999999999999999999",
            "-1",
            &"f".repeat(64),
            "%00",
        ] {
            let with: Vec<String> = params
                .iter()
                .enumerate()
                .map(|(j, (k, v))| {
                    if j == i {
                        format!("{k}={altered}")
                    } else {
                        format!("{k}={v}")
                    }
                })
                .collect();
            add!(
                format!("upload with {}={altered:?}", params[i].0),
                put(&format!("{upload_path}?{}", with.join("&")), &doc)
            );
        }
        let doubled = format!(
            "{upload_path}?{upload_query}&{}={}",
            params[i].0, params[i].1
        );
        add!(
            format!("upload with {} twice", params[i].0),
            put(&doubled, &doc)
        );
    }
    add!(
        "upload to another share's path".to_owned(),
        put(
            &format!("/blob/sessions/{other_id}.json?{upload_query}"),
            &doc
        )
    );
    add!("upload with no query".to_owned(), put(&upload_path, &doc));
    add!("upload of the wrong content type".to_owned(), {
        let mut v = format!("PUT {upload_path}?{upload_query} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n", doc.len()).into_bytes();
        v.extend_from_slice(&doc);
        v
    });
    add!(
        "upload of a body that is not JSON".to_owned(),
        put(
            &format!("{upload_path}?{upload_query}"),
            b"<script>alert(1)</script>"
        )
    );

    // OpenCode sync batches of the wrong shape, and one of 10,000 items.
    let sync = |body: String| {
        format!("POST /api/share/{id}/sync HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let wrong_item = |data: serde_json::Value| {
        serde_json::json!({ "secret": "wrong", "data": data }).to_string()
    };
    for (name, data) in [
        ("data not a list", serde_json::json!("x")),
        ("items without type", serde_json::json!([{ "data": {} }])),
        (
            "unknown item type",
            serde_json::json!([{ "type": "virus", "data": {} }]),
        ),
        (
            "message without id",
            serde_json::json!([{ "type": "message", "data": {} }]),
        ),
        (
            "part without ids",
            serde_json::json!([{ "type": "part", "data": { "type": "text" } }]),
        ),
        (
            "session of numbers",
            serde_json::json!([{ "type": "session", "data": 5 }]),
        ),
        ("null items", serde_json::json!([null, null])),
    ] {
        add!(
            format!("sync {name} (wrong secret)"),
            sync(wrong_item(data))
        );
    }
    // The same shapes with the right secret: refused for their shape, not their secret.
    let our_secret =
        |data: serde_json::Value| serde_json::json!({ "secret": secret, "data": data }).to_string();
    for (name, data) in [
        ("data not a list", serde_json::json!("x")),
        ("items without type", serde_json::json!([{ "data": {} }])),
        (
            "message without id",
            serde_json::json!([{ "type": "message", "data": {} }]),
        ),
        (
            "part without ids",
            serde_json::json!([{ "type": "part", "data": { "type": "text" } }]),
        ),
        (
            "session of numbers",
            serde_json::json!([{ "type": "session", "data": 5 }]),
        ),
        ("null items", serde_json::json!([null, null])),
        (
            "part with a huge id",
            serde_json::json!([{ "type": "part", "data": { "id": "p".repeat(50_000), "messageID": "m", "sessionID": "s", "type": "text", "text": "x" } }]),
        ),
    ] {
        add!(
            format!("sync {name} (right secret)"),
            sync(our_secret(data))
        );
    }
    let many: Vec<serde_json::Value> = (0..10_000)
        .map(|i| serde_json::json!({ "type": "part", "data": { "id": format!("prt_{i}"), "messageID": "msg_none", "sessionID": "ses_none", "type": "text", "text": "x" } }))
        .collect();
    add!(
        "sync of 10,000 items (wrong secret)".to_owned(),
        sync(serde_json::json!({ "secret": "wrong", "data": many }).to_string())
    );
    add!("sync to an unknown share".to_owned(), format!("POST /api/share/unknownshare1/sync HTTP/1.1\r\nHost: {host}\r\nContent-Length: 24\r\n\r\n{{\"secret\":\"x\",\"data\":[]}}").into_bytes());

    assert!(
        corpus.len() >= 300,
        "the corpus has {} entries",
        corpus.len()
    );
    let mut failures = Vec::new();
    for (name, bytes, slow) in &corpus {
        let started = Instant::now();
        let outcome = exchange(&server, bytes);
        let took = started.elapsed();
        let limit = if *slow {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(5)
        };
        match outcome {
            Outcome::Status(s) if (400..500).contains(&s) && took < limit => {}
            Outcome::Closed
                if took < limit && !bytes.starts_with(b"GET /") && !bytes.starts_with(b"POST ") => {
            }
            other => failures.push(format!("{name}: {other:?} after {took:?}")),
        }
        let alive = get(&server.url("/healthz"));
        if alive.status != 200 {
            failures.push(format!(
                "{name}: the server no longer answers ({})",
                alive.status
            ));
            break;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests were not answered with a clear 4xx:\n{}\n--- server log:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n"),
        server
            .logs()
            .lines()
            .filter(|l| l.contains(" 5") || l.contains("panick"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The share the corpus attacked is intact.
    let r = http("GET", &server.url(&format!("/api/share/{id}")), &[], None);
    assert_eq!(r.status, 200);
    let uploaded: serde_json::Value =
        serde_json::from_slice(&read_data("opencode-1.18.33-short.sharedata.json")).unwrap();
    assert_eq!(r.json(), uploaded, "the attacked share's document changed");
}
