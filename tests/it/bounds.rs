//! Every data path is bounded: huge sync batches, ids that differ in case, client addresses behind
//! proxies, damaged stored documents. Each runs on both store pairs where it applies.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $name() { super::$name(super::Stores::Embedded) } )*
        }
        mod postgres_s3 {
            $( #[test] fn $name() { super::$name(super::Stores::PostgresS3) } )*
        }
    };
}

on_both_stores!(
    a_huge_sync_batch_holds_up_nobody_else,
    half_empty_documents_render_and_damaged_ones_say_so,
);

/// A sync batch of `count` tiny parts of one message, as bytes, padded up to `at_least` bytes.
fn tiny_parts_batch(secret: &str, count: usize, at_least: usize) -> Vec<u8> {
    let mut out = format!(
        r#"{{"secret":"{secret}","data":[{{"type":"message","data":{{"id":"msg_1","sessionID":"ses_big","role":"user","time":{{"created":1}}}}}}"#
    )
    .into_bytes();
    for i in 0..count {
        out.extend_from_slice(
            format!(r#",{{"type":"part","data":{{"id":"prt_{i:08}","messageID":"msg_1","type":"text","text":"x"}}}}"#)
                .as_bytes(),
        );
    }
    out.extend_from_slice(b"]");
    // Whitespace pads the body to its size without adding items.
    if out.len() < at_least {
        out.resize(at_least - 1, b' ');
    }
    out.extend_from_slice(b"}");
    out
}

fn opencode_create(server: &Server, session: &str) -> (String, String) {
    let r = post_json(&server.url("/api/share"), &json!({ "sessionID": session }));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    (
        v["id"].as_str().unwrap().to_owned(),
        v["secret"].as_str().unwrap().to_owned(),
    )
}

/// While `busy` runs on another thread, other shares' pages and a delete of another share are
/// answered, each within 2 s. Returns what `busy` returned and how long it took.
fn while_others_are_served<T: Send>(
    server: &Server,
    busy: impl FnOnce() -> T + Send,
) -> (T, Duration) {
    let page = share_document(server, &read_data("opencode-1.18.33-short.sharedata.json"));
    let page_id = page["shareId"].as_str().unwrap().to_owned();
    let doomed = share_document(server, &read_data("opencode-1.18.33-short.sharedata.json"));
    std::thread::scope(|s| {
        let started = Instant::now();
        let worker = s.spawn(busy);
        // Let the batch reach the server first.
        std::thread::sleep(Duration::from_millis(300));
        let mut slowest = Duration::ZERO;
        for round in 0..6 {
            let t = Instant::now();
            let r = get(&server.url(&format!("/share/{page_id}")));
            assert_eq!(r.status, 200, "{}", r.text());
            slowest = slowest.max(t.elapsed());
            if round == 2 {
                let t = Instant::now();
                let r = http(
                    "DELETE",
                    &server.url(&format!(
                        "/api/share/{}",
                        doomed["shareId"].as_str().unwrap()
                    )),
                    &[("X-Share-Secret", doomed["secret"].as_str().unwrap())],
                    None,
                );
                assert_eq!(r.status, 200, "delete during the batch: {}", r.text());
                slowest = slowest.max(t.elapsed());
            }
        }
        assert!(
            slowest < Duration::from_secs(2),
            "other shares waited {slowest:?} for the batch"
        );
        let out = worker.join().unwrap();
        (out, started.elapsed())
    })
}

fn a_huge_sync_batch_holds_up_nobody_else(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let (id, secret) = opencode_create(&server, "ses_big");
    let sync_url = server.url(&format!("/api/share/{id}/sync"));
    let post = |body: &[u8]| {
        http(
            "POST",
            &sync_url,
            &[("Content-Type", "application/json")],
            Some(body),
        )
    };

    // 50 MiB of tiny parts, some 570,000 items: refused for its item count, in seconds.
    let huge = tiny_parts_batch(&secret, 570_000, 0);
    assert!(
        huge.len() > 45 * 1024 * 1024 && huge.len() <= 50 * 1024 * 1024,
        "{}",
        huge.len()
    );
    let (r, took) = while_others_are_served(&server, || post(&huge));
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text().contains("50000 items"),
        "the cap is in the sentence: {}",
        r.text()
    );
    assert!(took < Duration::from_secs(20), "refused after {took:?}");

    // At the cap, padded to 50 MiB: merged, in seconds (a scan per part would take minutes).
    let at_cap = tiny_parts_batch(&secret, 49_999, 50 * 1024 * 1024 - 1024);
    let (r, took) = while_others_are_served(&server, || post(&at_cap));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(took < Duration::from_secs(30), "merged after {took:?}");
    let doc = get(&server.url(&format!("/api/share/{id}"))).json();
    let parts = doc["messages"][0]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 49_999);
    assert_eq!(parts[49_998]["id"], "prt_00049998");
    let _: Value = doc;
}

/// Every route that shows a share's document.
fn document_routes(id: &str) -> [String; 5] {
    [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/share/{id}.json"),
        format!("/api/share/{id}"),
        format!("/api/share/{id}/data"),
    ]
}

fn half_empty_documents_render_and_damaged_ones_say_so(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);

    // No shareId, sessionId, createdAt or session; one message without info, one without parts,
    // one with an empty part.
    let minimal = json!({
        "messages": [
            {"parts": [{"type": "text", "text": "a message without info"}]},
            {"info": {"role": "assistant"}},
            {"info": {"id": "msg_3"}, "parts": [{}]},
        ]
    });
    let created = share_document(&server, minimal.to_string().as_bytes());
    let id = created["shareId"].as_str().unwrap();
    for route in document_routes(id) {
        let r = get(&server.url(&route));
        assert_eq!(r.status, 200, "{route}: {}", r.text());
    }
    let page = get(&server.url(&format!("/share/{id}"))).text();
    assert!(page.contains("a message without info"), "{page}");

    // Not JSON at all: a clear answer on every route, never a 500.
    let created = share_document(&server, b"this is {not JSON");
    let id = created["shareId"].as_str().unwrap();
    for route in document_routes(id) {
        let r = get(&server.url(&route));
        assert_eq!(r.status, 502, "{route}: {}", r.text());
        let text = r.text();
        if route.starts_with("/api/") {
            assert_eq!(r.json()["code"], "DAMAGED_DOCUMENT", "{route}");
            assert!(
                r.json()["error"].as_str().unwrap().contains("not JSON"),
                "{route}: {text}"
            );
        } else {
            assert!(text.contains("damaged"), "{route}: {text}");
        }
    }
    // JSON of another shape: the page variants say so too.
    let created = share_document(&server, b"[1, 2, 3]");
    let id = created["shareId"].as_str().unwrap();
    for route in [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/api/share/{id}/data"),
    ] {
        let r = get(&server.url(&route));
        assert_eq!(r.status, 502, "{route}: {}", r.text());
    }
    assert!(!server.logs().contains("panicked"), "{}", server.logs());
}

#[test]
fn ids_differing_in_case_have_separate_documents_on_local_disk() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let ids = ["aB3xY9kQ2mZp", "AB3XY9KQ2MZP", "ab3xy9kq2mzp"];
    for id in ids {
        let doc = json!({"shareId": id, "sessionId": "ses_case", "createdAt": 1, "updatedAt": 1,
            "session": {"id": "ses_case", "title": format!("title of {id}")}, "messages": []});
        let bytes = doc.to_string().into_bytes();
        let created = create_share(&server, Some(id), Some(bytes.len()));
        let r = upload(created["presignedUrl"].as_str().unwrap(), &bytes);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for id in ids {
        let doc = get(&server.url(&format!("/api/share/{id}"))).json();
        assert_eq!(doc["session"]["title"], format!("title of {id}"));
    }
    // On a disk that folds case the names must still differ.
    let dir = env.dir.path().join("server/objects/sessions");
    let mut folded: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_lowercase())
        .filter(|n| !n.starts_with('.'))
        .collect();
    folded.sort();
    folded.dedup();
    assert_eq!(folded.len(), 3, "{folded:?}");
}

#[test]
fn trusted_proxy_on_a_dual_stack_socket_names_the_client() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[
        "--bind",
        "[::]:0",
        "--trust-proxy",
        "127.0.0.1",
        "--create-limit",
        "2",
    ]);
    // Reached over IPv4, the peer is ::ffff:127.0.0.1: it must still count as the proxy.
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let url = format!("http://127.0.0.1:{port}/api/share/presign");
    let create = |forwarded: &str| {
        http(
            "POST",
            &url,
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", forwarded),
            ],
            Some(br#"{"sessionId": "ses_proxy"}"#),
        )
        .status
    };
    assert_eq!(create("198.51.100.7"), 201);
    assert_eq!(create("203.0.113.50, 198.51.100.7"), 201);
    assert_eq!(
        create("198.51.100.7"),
        429,
        "the forwarded client's limit is reached"
    );
    // Another client behind the same proxy is counted on its own.
    assert_eq!(create("198.51.100.8"), 201);
    // IPv6 clients count by their /64.
    assert_eq!(create("2001:db8:7:7::1"), 201);
    assert_eq!(create("2001:db8:7:7:ffff::2"), 201);
    assert_eq!(create("2001:db8:7:7:1234::3"), 429);
    assert_eq!(create("2001:db8:7:8::1"), 201);
    // Reading stops at an entry that is not an address: the proxy itself is the client then.
    assert_eq!(create("198.51.100.9, unknown"), 201);
    assert_eq!(create("198.51.100.10, unknown"), 201);
    assert_eq!(create("198.51.100.11, unknown"), 429);
}

#[test]
fn healthz_keeps_its_answer_for_two_seconds() {
    let mut env = Env::new(Stores::PostgresS3);
    let server = env.server(&[]);
    assert_eq!(get(&server.url("/healthz")).status, 200);
    let checked = Instant::now();
    env.s3.as_mut().unwrap().stop();
    // The bucket is gone, but the answer of a moment ago stands: no S3 request per call.
    let r = get(&server.url("/healthz"));
    if checked.elapsed() < Duration::from_millis(1500) {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(eventually(Duration::from_secs(4), || {
        get(&server.url("/healthz")).status == 503
    }));
    assert!(
        checked.elapsed() >= Duration::from_secs(1),
        "{:?}",
        checked.elapsed()
    );
}

/// Run the openssl command line; panics with its output when it fails.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command is needed to make test certificates (Debian: openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate it signed for `localhost` only (not 127.0.0.1), plus a CA
/// that signed nothing.
fn test_certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, crt, subj) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=bshare test {ca}"),
        );
        args.extend(["-keyout", &key, "-out", &crt, "-days", "2", "-subj", &subj]);
        openssl(dir, &args);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

#[test]
fn postgres_over_tls_require_and_verify_full() {
    use bshare::store::Connector;
    use bshare::store::postgres::PostgresConnector;

    let certs = tempfile::tempdir().unwrap();
    test_certificates(certs.path());
    let cluster = PgCluster::start_tls(
        &certs.path().join("server.crt"),
        &certs.path().join("server.key"),
    );
    let ca = certs.path().join("ca.crt").display().to_string();
    let other_ca = certs.path().join("other-ca.crt").display().to_string();
    let url = |host: &str, query: &str| {
        format!(
            "postgres://postgres@{host}:{}/postgres?{query}",
            cluster.port
        )
    };
    let mut admin = postgres::Client::connect(&cluster.admin_url(), postgres::NoTls).unwrap();
    // Whether every connection bshare holds right now is encrypted.
    let mut all_encrypted = || -> bool {
        let row = admin
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a
                 JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'bshare'",
                &[],
            )
            .unwrap();
        let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
        all > 0 && all == encrypted
    };

    // require: encrypted, the certificate not checked.
    let connector = PostgresConnector::open(&url("127.0.0.1", "sslmode=require")).unwrap();
    let mut store = connector.connect().unwrap();
    store.ping().unwrap();
    assert!(all_encrypted());
    drop(store);

    // verify-full with the right CA and the name on the certificate.
    let connector = PostgresConnector::open(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .unwrap();
    let mut store = connector.connect().unwrap();
    store.ping().unwrap();
    assert!(all_encrypted());
    drop(store);
    // verify-ca does not check the name.
    PostgresConnector::open(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .unwrap();

    // The wrong CA, and a host the certificate does not name: refused, with a sentence.
    for (host, root) in [("localhost", &other_ca), ("127.0.0.1", &ca)] {
        let Err(err) = PostgresConnector::open(&url(
            host,
            &format!("sslmode=verify-full&sslrootcert={root}"),
        )) else {
            panic!("verify-full accepted {host} with {root}");
        };
        let text = err.to_string();
        assert!(text.contains("certificate was not accepted"), "{text}");
        assert!(text.contains("sslrootcert"), "{text}");
    }
    // And the binary says so before it serves anything.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env(
            "DATABASE_URL",
            url(
                "localhost",
                &format!("sslmode=verify-full&sslrootcert={other_ca}"),
            ),
        )
        .env("BSHARE_DATA_DIR", certs.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate was not accepted"), "{stderr}");
}

#[test]
fn a_locked_table_is_a_503_in_seconds_not_a_hang() {
    use bshare::store::Connector;
    use bshare::store::postgres::PostgresConnector;

    let db = PgDb::create();
    let connector = PostgresConnector::open(&db.url).unwrap();
    let mut store = connector.connect().unwrap();
    let mut admin = db.client();
    let mut tx = admin.transaction().unwrap();
    tx.batch_execute("LOCK TABLE shares IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let started = Instant::now();
    let err = store.get_share("abcdefgh").unwrap_err();
    let took = started.elapsed();
    assert_eq!(err.status(), 503, "{err}");
    assert!(took < Duration::from_secs(8), "waited {took:?}");
    tx.rollback().unwrap();
}
