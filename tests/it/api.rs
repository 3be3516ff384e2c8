//! The share API (DESIGN.md §2) over real HTTP, on both store pairs.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    self, Env, PgCluster, PgDb, S3Server, Server, Stores, create_share, get, http, post_json,
    read_data, share_document, upload,
};

const LONG: &str = "opencode-1.18.33-long.sharedata.json";
const SHORT: &str = "opencode-1.18.33-short.sharedata.json";

/// Run each listed test on both store pairs.
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
    life_cycle,
    error_statuses,
    rate_limits,
    upload_urls_are_checked_by_the_object_store,
    expired_upload_url_is_refused,
    no_plain_secret_is_stored_or_logged,
    concurrent_creates_of_one_id,
    page_cache_follows_resync,
    healthz_answers,
);

fn secret_header(created: &serde_json::Value) -> (&'static str, String) {
    (
        "X-Share-Secret",
        created["secret"].as_str().unwrap().to_owned(),
    )
}

fn life_cycle(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let long = read_data(LONG);
    let created = share_document(&server, &long);
    let id = created["shareId"].as_str().unwrap();
    assert_eq!(id.len(), 12, "server-picked ids are 12 characters");
    assert_eq!(created["url"], server.url(&format!("/share/{id}")));
    assert!(created["expiresAt"].as_i64().unwrap() > bshare::model::now_millis());

    // Read back exactly what was uploaded.
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, long);
    let page = get(&server.url(&format!("/share/{id}")));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Add multiply, tests and CLI"));

    // Re-sync with the secret: a fresh URL, a new version.
    let short = read_data(SHORT);
    let (h, secret) = secret_header(&created);
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[h_pair(h, &secret), ("Content-Type", "application/json")],
        Some(json!({ "size": short.len() }).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = r.json();
    assert_ne!(fresh["presignedUrl"], created["presignedUrl"]);
    assert_eq!(
        upload(fresh["presignedUrl"].as_str().unwrap(), &short).status,
        200
    );
    assert_eq!(get(&server.url(&format!("/api/share/{id}"))).body, short);
    let page = get(&server.url(&format!("/share/{id}")));
    assert!(
        page.text().contains("List comprehension vs map"),
        "page shows the new version"
    );

    // Delete: 200 {ok:true}, then 410 everywhere, and the id stays reserved.
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[h_pair(h, &secret)],
        None,
    );
    assert_eq!((r.status, r.json()), (200, json!({"ok": true})));
    assert_eq!(get(&server.url(&format!("/api/share/{id}"))).status, 410);
    let page = get(&server.url(&format!("/share/{id}")));
    assert_eq!(page.status, 410);
    assert!(page.text().contains("removed"), "{}", page.text());
    let again = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "ses_other", "shareId": id}),
    );
    assert_eq!(
        (again.status, again.json()["code"].as_str()),
        (409, Some("SHARE_EXISTS"))
    );
    if let Some(s3) = &env.s3 {
        assert!(
            !s3.object_path(&format!("sessions/{id}.json")).exists(),
            "object removed"
        );
    } else {
        let path = env
            .dir
            .path()
            .join(format!("server/objects/sessions/{id}.json"));
        assert!(!path.exists(), "object removed");
    }
}

fn h_pair<'a>(name: &'a str, value: &'a str) -> (&'a str, &'a str) {
    (name, value)
}

fn error_statuses(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&["--max-document-bytes", "100000"]);
    let presign = server.url("/api/share/presign");
    let code = |r: &support::Resp| r.json()["code"].as_str().unwrap_or("").to_owned();

    // Bad ids and bodies.
    for bad in [
        "short",
        "has/slash/in-it",
        "../../../etc/x",
        &"x".repeat(65),
        "spaces in id",
    ] {
        let r = post_json(&presign, &json!({"sessionId": "s", "shareId": bad}));
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(
        post_json(&presign, &json!({"shareId": "abcdefgh"})).status,
        400
    );
    let r = http(
        "POST",
        &presign,
        &[("Content-Type", "application/json")],
        Some(b"{nope"),
    );
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("JSON"));

    // A client-chosen id, then 409 for it.
    let created = create_share(&server, Some("client-id_01"), None);
    assert_eq!(created["shareId"], "client-id_01");
    let r = post_json(
        &presign,
        &json!({"sessionId": "s", "shareId": "client-id_01"}),
    );
    assert_eq!((r.status, code(&r)), (409, "SHARE_EXISTS".into()));

    // Never uploaded: 404 on the API, an HTML page on the share route, never 500.
    let r = get(&server.url("/api/share/client-id_01"));
    assert_eq!((r.status, code(&r)), (404, "NOT_UPLOADED".into()));
    let r = get(&server.url("/share/client-id_01"));
    assert_eq!(r.status, 404);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));

    // Secrets: missing 401, wrong 403, unknown share 404.
    let resync = server.url("/api/share/client-id_01/presign");
    assert_eq!(post_json(&resync, &json!({})).status, 401);
    let wrong = http("POST", &resync, &[("X-Share-Secret", "nope")], None);
    assert_eq!(
        (wrong.status, code(&wrong)),
        (403, "SECRET_MISMATCH".into())
    );
    let unknown = http(
        "POST",
        &server.url("/api/share/unknown-1234/presign"),
        &[("X-Share-Secret", "x")],
        None,
    );
    assert_eq!(unknown.status, 404);
    let r = http("DELETE", &server.url("/api/share/client-id_01"), &[], None);
    assert_eq!(r.status, 401);
    let r = http(
        "DELETE",
        &server.url("/api/share/client-id_01"),
        &[("X-Share-Secret", "nope")],
        None,
    );
    assert_eq!(r.status, 403);
    assert_eq!(get(&server.url("/api/share/unknown-1234")).status, 404);
    assert_eq!(get(&server.url("/share/unknown-1234")).status, 404);

    // Sizes over the limit: 413 before anything is signed.
    let r = post_json(&presign, &json!({"sessionId": "s", "size": 100_001}));
    assert_eq!((r.status, code(&r)), (413, "TOO_LARGE".into()));
    let (h, secret) = secret_header(&created);
    let r = http(
        "POST",
        &resync,
        &[(h, &secret), ("Content-Type", "application/json")],
        Some(br#"{"size": 100001}"#),
    );
    assert_eq!(r.status, 413);
    // API bodies over 64 KiB: 413 without being read.
    let big = format!(r#"{{"sessionId": "{}"}}"#, "x".repeat(70_000));
    let r = http(
        "POST",
        &presign,
        &[("Content-Type", "application/json")],
        Some(big.as_bytes()),
    );
    assert_eq!(r.status, 413);

    // Wrong methods and unknown routes.
    assert_eq!(
        http("PUT", &server.url("/api/share/client-id_01"), &[], None).status,
        405
    );
    assert_eq!(get(&server.url("/nothing/here")).status, 404);
}

fn rate_limits(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&["--create-limit", "3", "--request-limit", "5"]);
    for _ in 0..3 {
        create_share(&server, None, None);
    }
    let r = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "s"}),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // The window slides: the creates of this hour still count, in part, during the next one.
    assert!((1..=7200).contains(&retry), "{retry}");
    // The create count lives in the database: a second server on the same stores agrees.
    if stores == Stores::PostgresS3 {
        let other = env.server(&["--create-limit", "3"]);
        let r = post_json(&other.url("/api/share/presign"), &json!({"sessionId": "s"}));
        assert_eq!(r.status, 429, "limit holds across instances");
    }
    // Everything else: 100/min by default, 5 here.
    let statuses: Vec<u16> = (0..7)
        .map(|_| get(&server.url("/api/share/abcdefgh")).status)
        .collect();
    assert_eq!(&statuses[..5], &[404; 5]);
    assert_eq!(statuses[6], 429);
}

fn upload_urls_are_checked_by_the_object_store(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let doc = read_data(SHORT);
    let created = create_share(&server, None, Some(doc.len()));
    let url = created["presignedUrl"].as_str().unwrap();
    let id = created["shareId"].as_str().unwrap();

    // A tampered signature.
    let tampered = tamper(url);
    let r = upload(&tampered, &doc);
    assert_eq!(r.status, 403, "tampered URL: {}", r.text());
    // A body longer than the signed length.
    let mut longer = doc.clone();
    longer.extend_from_slice(b"          ");
    let r = upload(url, &longer);
    assert!(
        matches!(r.status, 400 | 403 | 413),
        "over-long body: {}",
        r.status
    );
    // The wrong content type.
    let r = http("PUT", url, &[("Content-Type", "text/plain")], Some(&doc));
    assert!(matches!(r.status, 400 | 403), "content type: {}", r.status);
    // Nothing was left behind.
    assert_eq!(get(&server.url(&format!("/api/share/{id}"))).status, 404);
    if let Some(s3) = &env.s3 {
        assert!(!s3.object_path(&format!("sessions/{id}.json")).exists());
    } else {
        let dir = env.dir.path().join("server/objects/sessions");
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert!(left.is_empty(), "no temp or partial files: {left:?}");
    }
    // The genuine upload works, once (the local store refuses a reused URL; S3 allows reuse
    // within the lifetime, which is its documented behaviour).
    assert_eq!(upload(url, &doc).status, 200);
    if stores == Stores::Embedded {
        let r = upload(url, &doc);
        assert_eq!(r.status, 403, "reused URL: {}", r.text());
        assert!(r.text().contains("already used"));
    }
}

/// Change one character of the signature.
fn tamper(url: &str) -> String {
    let key = if url.contains("X-Amz-Signature=") {
        "X-Amz-Signature="
    } else {
        "sig="
    };
    let at = url.find(key).unwrap() + key.len();
    let mut bytes = url.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'a' { b'b' } else { b'a' };
    String::from_utf8(bytes).unwrap()
}

fn expired_upload_url_is_refused(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&["--upload-url-ttl", "1"]);
    let doc = read_data(SHORT);
    let created = create_share(&server, None, Some(doc.len()));
    std::thread::sleep(Duration::from_millis(2100));
    let r = upload(created["presignedUrl"].as_str().unwrap(), &doc);
    assert_eq!(r.status, 403, "expired URL: {}", r.text());
}

fn no_plain_secret_is_stored_or_logged(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let created = share_document(&server, &read_data(SHORT));
    let secret = created["secret"].as_str().unwrap();
    let id = created["shareId"].as_str().unwrap();
    let (h, s) = secret_header(&created);
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[(h, &s)],
        None,
    );
    assert_eq!(r.status, 200);
    let signature = r.json()["presignedUrl"]
        .as_str()
        .unwrap()
        .rsplit('=')
        .next()
        .unwrap()
        .to_owned();

    match &env.pg {
        Some(pg) => {
            let mut c = pg.client();
            let rows = c
                .query("SELECT row_to_json(s)::text FROM shares s", &[])
                .unwrap();
            assert_eq!(rows.len(), 1);
            let row: String = rows[0].get(0);
            assert!(!row.contains(secret), "secret stored in plain text: {row}");
            let hash: Vec<u8> = c
                .query_one("SELECT secret_hash FROM shares", &[])
                .unwrap()
                .get(0);
            assert_eq!(hash, bshare::crypto::secret_hash(secret));
        }
        None => {
            let db = std::fs::read(env.dir.path().join("server/bshare.db")).unwrap();
            let wal =
                std::fs::read(env.dir.path().join("server/bshare.db-wal")).unwrap_or_default();
            for bytes in [db, wal] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "secret found in the SQLite files"
                );
            }
        }
    }
    // The access line is written just after the response is sent.
    let line = format!("POST /api/share/{id}/presign 200");
    assert!(
        support::eventually(Duration::from_secs(5), || server.logs().contains(&line)),
        "{}",
        server.logs()
    );
    let logs = server.logs();
    for needle in [secret, &signature, "X-Amz-Signature", "sig=", "?"] {
        assert!(!logs.contains(needle), "log holds {needle:?}:\n{logs}");
    }
}

fn concurrent_creates_of_one_id(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let url = server.url("/api/share/presign");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let url = &url;
                s.spawn(move || {
                    post_json(
                        url,
                        &json!({"sessionId": "ses_race", "shareId": "racing-id"}),
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        49,
        "{statuses:?}"
    );
}

fn page_cache_follows_resync(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let created = share_document(&server, &read_data(LONG));
    let id = created["shareId"].as_str().unwrap();
    let page_url = server.url(&format!("/share/{id}"));
    let first = get(&page_url);
    let etag = first.header("etag").unwrap().to_owned();
    // A repeat view with the ETag: 304.
    let r = http("GET", &page_url, &[("If-None-Match", &etag)], None);
    assert_eq!(r.status, 304);
    // Gzip when asked.
    let (head, body) = support::raw_get(&page_url, &[("Accept-Encoding", "gzip")]);
    assert!(
        head.to_ascii_lowercase().contains("content-encoding: gzip"),
        "{head}"
    );
    let mut html = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut html).unwrap();
    assert_eq!(html, first.body, "the gzip body is the page");
    assert!(
        body.len() < first.body.len(),
        "gzip: {} of {}",
        body.len(),
        first.body.len()
    );

    // Re-sync through a fresh URL: the page follows.
    let short = read_data(SHORT);
    let (h, s) = secret_header(&created);
    let fresh = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[(h, &s)],
        None,
    )
    .json();
    assert_eq!(
        upload(fresh["presignedUrl"].as_str().unwrap(), &short).status,
        200
    );
    let r = http("GET", &page_url, &[("If-None-Match", &etag)], None);
    assert_eq!(r.status, 200, "the old ETag no longer matches");
    assert!(r.text().contains("List comprehension vs map"));
}

fn healthz_answers(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let r = get(&server.url("/healthz"));
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"database": "ok", "objects": "ok"}))
    );
}

#[test]
fn a_huge_declared_body_is_refused_at_once_and_the_server_lives_on() {
    use std::io::{Read, Write};
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let host = server.base.trim_start_matches("http://").to_owned();
    for length in ["90000000000000", "100000"] {
        let mut s = std::net::TcpStream::connect(&host).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /api/share/presign HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .unwrap();
        let started = std::time::Instant::now();
        let mut head = [0u8; 64];
        let n = s
            .read(&mut head)
            .expect("an answer before the body was sent");
        assert!(
            String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 413"),
            "{}",
            String::from_utf8_lossy(&head[..n])
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "answered without reading"
        );
    }
    assert_eq!(get(&server.url("/healthz")).status, 200, "still serving");
}

#[test]
fn a_sync_batch_is_checked_for_its_secret_before_its_content() {
    let env = Env::new(Stores::Embedded);
    let server = env.server(&[]);
    let created = post_json(&server.url("/api/share"), &json!({"sessionID": "ses_x"})).json();
    let id = created["id"].as_str().unwrap();
    // `data` is not even a list: a wrong secret is still what the answer is about.
    let r = post_json(
        &server.url(&format!("/api/share/{id}/sync")),
        &json!({"secret": "wrong", "data": 5}),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = post_json(
        &server.url(&format!("/api/share/{id}/sync")),
        &json!({"secret": created["secret"], "data": 5}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn migrations_are_all_applied_on_postgres() {
    let env = Env::new(Stores::PostgresS3);
    let _server = env.server(&[]);
    let _second = env.server(&[]);
    let mut c = env.pg.as_ref().unwrap().client();
    let versions: Vec<i64> = c
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = bshare::store::POSTGRES_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, expected);
}

#[test]
fn two_servers_share_one_database_and_bucket() {
    let env = Env::new(Stores::PostgresS3);
    let a = env.server(&[]);
    let b = env.server(&[]);
    let created = share_document(&a, &read_data(LONG));
    let id = created["shareId"].as_str().unwrap();
    // B reads what A created; A's page is cached now.
    assert_eq!(get(&b.url(&format!("/api/share/{id}"))).status, 200);
    assert!(
        get(&a.url(&format!("/share/{id}")))
            .text()
            .contains("Add multiply")
    );
    // Re-sync through B: A's page follows.
    let (h, s) = secret_header(&created);
    let fresh = http(
        "POST",
        &b.url(&format!("/api/share/{id}/presign")),
        &[(h, &s)],
        None,
    );
    assert_eq!(fresh.status, 200);
    assert_eq!(
        upload(
            fresh.json()["presignedUrl"].as_str().unwrap(),
            &read_data(SHORT)
        )
        .status,
        200
    );
    assert!(
        support::eventually(Duration::from_secs(5), || get(
            &a.url(&format!("/share/{id}"))
        )
        .text()
        .contains("List comprehension vs map")),
        "server A serves the re-synced page"
    );
    // Delete through B: A answers 410 for the page and the API.
    let r = http(
        "DELETE",
        &b.url(&format!("/api/share/{id}")),
        &[(h, &s)],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(support::eventually(Duration::from_secs(5), || get(
        &a.url(&format!("/share/{id}"))
    )
    .status
        == 410));
    assert_eq!(get(&a.url(&format!("/api/share/{id}"))).status, 410);
}

#[test]
fn postgres_outage_gives_503_then_recovers() {
    let cluster = PgCluster::start();
    let db = PgDb::create_on(&cluster.admin_url());
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "BSHARE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("S3_BUCKET".to_owned(), s3.bucket.clone()),
        ("S3_ENDPOINT".to_owned(), s3.endpoint.clone()),
        ("S3_REGION".to_owned(), "us-east-1".to_owned()),
        ("S3_ACCESS_KEY_ID".to_owned(), s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY".to_owned(), s3.secret_key.clone()),
    ];
    let server = Server::start(&env, &[]);
    create_share(&server, None, None);

    cluster.stop();
    let started = std::time::Instant::now();
    let r = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "s"}),
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "UNAVAILABLE");
    assert!(r.json()["error"].as_str().unwrap().contains("database"));
    let health = get(&server.url("/healthz"));
    assert_eq!(
        (health.status, health.json()["database"].as_str()),
        (503, Some("down"))
    );
    assert_eq!(health.json()["objects"], "ok");
    assert!(started.elapsed() < Duration::from_secs(20), "fails fast");

    cluster.start_again();
    assert!(
        support::eventually(Duration::from_secs(20), || {
            post_json(
                &server.url("/api/share/presign"),
                &json!({"sessionId": "s"}),
            )
            .status
                == 201
        }),
        "service resumes without a restart"
    );
    // /healthz keeps its answer for up to 2 s.
    assert!(support::eventually(Duration::from_secs(3), || {
        get(&server.url("/healthz")).status == 200
    }));
    drop(db);
}

#[test]
fn bucket_outage_gives_503_then_recovers() {
    let mut env = Env::new(Stores::PostgresS3);
    let server = env.server(&[]);
    let created = share_document(&server, &read_data(SHORT));
    let id = created["shareId"].as_str().unwrap().to_owned();
    env.s3.as_mut().unwrap().stop();
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("object store"));
    let health = get(&server.url("/healthz"));
    assert_eq!(
        (health.status, health.json()["objects"].as_str()),
        (503, Some("down"))
    );
    // A delete while the bucket is down: the share is gone at once (410), and the owner's retry
    // removes the object once the bucket is back.
    let (h, secret) = secret_header(&created);
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[(h, &secret)],
        None,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(get(&server.url(&format!("/share/{id}"))).status, 410);
    env.s3.as_mut().unwrap().restart();
    assert!(support::eventually(Duration::from_secs(20), || {
        get(&server.url("/healthz")).status == 200
    }));
    let object = env
        .s3
        .as_ref()
        .unwrap()
        .object_path(&format!("sessions/{id}.json"));
    assert!(object.exists(), "the first delete could not remove it");
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[(h, &secret)],
        None,
    );
    assert_eq!(r.status, 410);
    assert!(!object.exists(), "the retried delete removed the object");
}

#[test]
fn bad_configuration_fails_at_startup_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| {
        let out = std::process::Command::new(support::BIN)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("BSHARE_DATA_DIR", dir.path())
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = run(&[("DATABASE_URL", "not a url")]);
    assert!(err.contains("DATABASE_URL"), "{err}");
    let port = support::free_port();
    let err = run(&[(
        "DATABASE_URL",
        &format!("postgres://nobody@127.0.0.1:{port}/db"),
    )]);
    assert!(
        err.contains("cannot connect to the PostgreSQL database"),
        "{err}"
    );
    let err = run(&[("S3_BUCKET", "b")]);
    assert!(err.contains("S3_ACCESS_KEY_ID"), "{err}");
    let s3 = S3Server::start();
    let err = run(&[
        ("S3_BUCKET", &s3.bucket),
        ("S3_ENDPOINT", &s3.endpoint),
        ("S3_REGION", "us-east-1"),
        ("S3_ACCESS_KEY_ID", &s3.access_key),
        ("S3_SECRET_ACCESS_KEY", "wrong-secret"),
    ]);
    assert!(err.contains("cannot use the S3 bucket"), "{err}");
    assert!(
        !err.contains("wrong-secret"),
        "the secret key is never printed"
    );
}

#[test]
fn serve_help_documents_every_flag_and_variable() {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "DATABASE_URL",
        "S3_ENDPOINT",
        "S3_REGION",
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        "S3_BUCKET",
        "S3_PUBLIC_URL",
        "BASE_URL",
        "BSHARE_BIND",
        "BSHARE_DATA_DIR",
        "--trust-proxy",
    ] {
        assert!(help.contains(var), "--help lacks {var}:\n{help}");
    }
}
