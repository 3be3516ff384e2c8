//! The share API (DESIGN.md §2) over real HTTP, on both store pairs.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    self, Env, PgCluster, PgDb, S3Server, SHORT_UPLOAD_URLS, Server, Stores, create_share, get,
    http, post_json, read_data, share_document, upload, wait_past_upload_window,
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
    shares_expire_everywhere_at_once_and_their_objects_go,
    expiry_is_bounded_by_the_server,
    create_tokens_guard_creation_only,
    neither_secret_nor_address_is_served_stored_or_logged,
    objects_over_the_limit_are_never_read,
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
        &json!({"sessionId": "ses_other", "shareId": id, "size": 2}),
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
        let path = env.dir.path().join(format!(
            "server/objects/sessions/{}.json",
            bshare::model::case_safe_stem(id)
        ));
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
        let r = post_json(
            &presign,
            &json!({"sessionId": "s", "shareId": bad, "size": 2}),
        );
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
        &json!({"sessionId": "s", "shareId": "client-id_01", "size": 2}),
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
        &json!({"sessionId": "s", "size": 2}),
    );
    assert_eq!(r.status, 429, "{}", r.text());
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    // The window slides: the creates of this hour still count, in part, during the next one.
    assert!((1..=7200).contains(&retry), "{retry}");
    // The create count lives in the database: a second server on the same stores agrees.
    if stores == Stores::PostgresS3 {
        let other = env.server(&["--create-limit", "3"]);
        let r = post_json(
            &other.url("/api/share/presign"),
            &json!({"sessionId": "s", "size": 2}),
        );
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
        Some(br#"{"size": 2}"#),
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
                        &json!({"sessionId": "ses_race", "shareId": "racing-id", "size": 2}),
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
        Some(json!({ "size": short.len() }).to_string().as_bytes()),
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
        (
            200,
            json!({"database": "ok", "objects": "ok", "cache": {"entries": 0, "hits": 0, "fills": 0}})
        )
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
    // Servers started together on an empty database: each must wait for the migration lock
    // (src/lib/store/postgres.rs), or they would create the same tables at once. The test holds
    // that lock itself until all of them are seen waiting for it, so the lock is contended
    // whatever the machine's speed.
    const MIGRATION_LOCK: i64 = 0x6273_6861_7265;
    const SERVERS: i64 = 3;
    let env = Env::new(Stores::PostgresS3);
    let mut holder = env.pg.as_ref().unwrap().client();
    holder
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .unwrap();
    let servers: Vec<Server> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..SERVERS).map(|_| s.spawn(|| env.server(&[]))).collect();
        let mut waiting = 0;
        let all_waited = support::eventually(Duration::from_secs(20), || {
            waiting = holder
                .query_one(
                    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
                     WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()",
                    &[],
                )
                .unwrap()
                .get(0);
            waiting == SERVERS
        });
        holder
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .unwrap();
        assert!(
            all_waited,
            "{waiting} of {SERVERS} servers waited for the migration lock"
        );
        starting.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for server in &servers {
        assert_eq!(get(&server.url("/healthz")).status, 200);
    }
    let versions: Vec<i64> = holder
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
    // Short upload URLs: once they expire, server A serves its cached page without checking the
    // object, so only B's NOTIFY can tell A that the page changed.
    let env = Env::new(Stores::PostgresS3);
    let a = env.server(&SHORT_UPLOAD_URLS);
    let b = env.server(&SHORT_UPLOAD_URLS);
    let created = share_document(&a, &read_data(LONG));
    let id = created["shareId"].as_str().unwrap();
    let page = a.url(&format!("/share/{id}"));
    // B reads what A created.
    assert_eq!(get(&b.url(&format!("/api/share/{id}"))).status, 200);
    // A caches its page outside any upload window.
    wait_past_upload_window(created["expiresAt"].as_i64().unwrap());
    assert!(get(&page).text().contains("Add multiply"));

    // Re-sync through B: A's page follows.
    let (h, s) = secret_header(&created);
    let fresh = http(
        "POST",
        &b.url(&format!("/api/share/{id}/presign")),
        &[(h, &s)],
        Some(
            json!({ "size": read_data(SHORT).len() })
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(fresh.status, 200);
    let fresh = fresh.json();
    assert_eq!(
        upload(fresh["presignedUrl"].as_str().unwrap(), &read_data(SHORT)).status,
        200
    );
    assert!(
        support::eventually(Duration::from_secs(5), || get(&page)
            .text()
            .contains("List comprehension vs map")),
        "server A serves the re-synced page"
    );

    // A caches the new page outside the new window; delete through B: A answers 410.
    wait_past_upload_window(fresh["expiresAt"].as_i64().unwrap());
    assert_eq!(get(&page).status, 200);
    assert_eq!(get(&page).status, 200, "served from A's cache");
    let r = http(
        "DELETE",
        &b.url(&format!("/api/share/{id}")),
        &[(h, &s)],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        support::eventually(Duration::from_secs(5), || get(&page).status == 410),
        "server A still serves the page B deleted"
    );
    assert_eq!(get(&a.url(&format!("/api/share/{id}"))).status, 410);
}

#[test]
fn a_reconnected_listener_forgets_every_cached_page() {
    let env = Env::new(Stores::PostgresS3);
    let server = env.server(&SHORT_UPLOAD_URLS);
    let created = share_document(&server, &read_data(LONG));
    let id = created["shareId"].as_str().unwrap();
    let page = server.url(&format!("/share/{id}"));
    wait_past_upload_window(created["expiresAt"].as_i64().unwrap());
    assert!(get(&page).text().contains("Add multiply"));

    // The object changes with no announcement, as when a NOTIFY is sent while the listener is
    // away: the cached page is served as it was.
    let s3 = env.s3.as_ref().unwrap();
    std::fs::write(
        s3.object_path(&format!("sessions/{id}.json")),
        read_data(SHORT),
    )
    .unwrap();
    assert!(
        get(&page).text().contains("Add multiply"),
        "the page is served from the cache"
    );

    // Cut the listener's connection: once it is back, the cache starts afresh.
    let mut db = env.pg.as_ref().unwrap().client();
    let listeners = |db: &mut postgres::Client| -> Vec<i32> {
        db.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND query = 'LISTEN bshare_share_changed'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    let mut before = Vec::new();
    assert!(
        support::eventually(Duration::from_secs(10), || {
            before = listeners(&mut db);
            before.len() == 1
        }),
        "one listener connection: {before:?}"
    );
    let killed: bool = db
        .query_one("SELECT pg_terminate_backend($1)", &[&before[0]])
        .unwrap()
        .get(0);
    assert!(killed);
    assert!(
        support::eventually(Duration::from_secs(10), || {
            let now = listeners(&mut db);
            now.len() == 1 && now != before
        }),
        "the listener reconnected"
    );
    assert!(
        support::eventually(Duration::from_secs(5), || get(&page)
            .text()
            .contains("List comprehension vs map")),
        "the page cached before the listener reconnected is still served"
    );
}

/// What every HTML, Markdown and JSON answer under `/` and `/share/` carries (README: no script
/// but the server's own, nothing from other hosts, no framing).
fn assert_page_headers(r: &support::Resp, what: &str) {
    let csp = r
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    // Scripts only from this server (the page's own live-follow script): nothing inline, no
    // other host.
    let scripts: Vec<&str> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| d.starts_with("script-src"))
        .collect();
    assert_eq!(
        scripts,
        ["script-src 'self'"],
        "{what}: CSP {csp:?} allows other scripts"
    );
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
}

mod document_routes {
    #[test]
    fn embedded() {
        super::document_routes(super::Stores::Embedded);
    }
    #[test]
    fn postgres_s3() {
        super::document_routes(super::Stores::PostgresS3);
    }
}

/// `/share/<id>`, `.md` and `.json` through their life: 200, 304 with the ETag (until a re-sync),
/// 404, 410, with the page headers on every answer, and `HEAD` answered like `GET` without a
/// body on every route.
fn document_routes(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let long = read_data(LONG);
    let created = share_document(&server, &long);
    let id = created["shareId"].as_str().unwrap();

    let page = get(&server.url(&format!("/share/{id}")));
    assert_eq!(page.status, 200);
    assert_page_headers(&page, "page");
    let etag = page
        .header("etag")
        .expect("the page has an ETag")
        .to_owned();
    let r = http(
        "GET",
        &server.url(&format!("/share/{id}")),
        &[("If-None-Match", &etag)],
        None,
    );
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_page_headers(&r, "304");
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let md = get(&server.url(&format!("/share/{id}.md")));
    assert_eq!(md.status, 200, "{}", md.text());
    assert_eq!(
        md.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    assert_eq!(md.header("cache-control"), Some("no-cache"));
    assert_page_headers(&md, ".md");
    assert!(
        md.text().contains("Add multiply, tests and CLI"),
        "{}",
        md.text()
    );
    assert!(
        md.text().contains("[long-2]"),
        "the last prompt is in the transcript"
    );
    assert!(!md.text().contains("<div"), "Markdown, not HTML");

    let raw = get(&server.url(&format!("/share/{id}.json")));
    assert_eq!(raw.status, 200);
    assert_eq!(raw.header("content-type"), Some("application/json"));
    assert_page_headers(&raw, ".json");
    assert_eq!(raw.body, long, "the document as uploaded");

    // Both variants have an ETag: a poll with it is a 304 with no body, until the share changes.
    for (suffix, first) in [(".md", &md), (".json", &raw)] {
        let etag = first
            .header("etag")
            .unwrap_or_else(|| panic!("{suffix} has no ETag"));
        let r = http(
            "GET",
            &server.url(&format!("/share/{id}{suffix}")),
            &[("If-None-Match", etag)],
            None,
        );
        assert_eq!(r.status, 304, "{suffix}");
        assert!(r.body.is_empty(), "{suffix}");
        assert_eq!(r.header("etag"), Some(etag), "{suffix}");
        assert_page_headers(&r, &format!("304 {suffix}"));
    }

    // Every route answers HEAD as it answers GET, without the body.
    let stylesheet = bshare::render::stylesheet_path();
    let routes = [
        "/".to_owned(),
        "/healthz".to_owned(),
        stylesheet.to_string(),
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/share/{id}.json"),
        format!("/api/share/{id}"),
        format!("/api/share/{id}/data"),
        "/share/unknownid1".to_owned(),
        "/no/such/route".to_owned(),
    ];
    for route in &routes {
        let g = get(&server.url(route));
        let h = http("HEAD", &server.url(route), &[], None);
        assert_eq!(h.status, g.status, "HEAD {route}");
        // A client library never reads a HEAD's body: look at the bytes on the wire.
        let (_, sent) = support::raw_request("HEAD", &server.url(route), &[]);
        assert!(
            sent.is_empty(),
            "HEAD {route} sent {} body bytes",
            sent.len()
        );
        for name in ["content-type", "content-length", "etag", "cache-control"] {
            assert_eq!(h.header(name), g.header(name), "HEAD {route}: {name}");
        }
    }
    assert_page_headers(&get(&server.url("/")), "index");

    // An id that was never shared: 404 pages, with the same headers.
    for suffix in ["", ".md", ".json"] {
        let r = get(&server.url(&format!("/share/neverhere1{suffix}")));
        assert_eq!(r.status, 404, "{suffix}");
        assert_page_headers(&r, &format!("404 {suffix}"));
        let r = get(&server.url(&format!("/share/..%2Fetc{suffix}")));
        assert_eq!(r.status, 404, "an invalid id {suffix}");
    }

    // Another version: the old ETags no longer match.
    let short = read_data(SHORT);
    let (h, secret) = secret_header(&created);
    let size = serde_json::json!({ "size": short.len() }).to_string();
    let fresh = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[(h, &secret)],
        Some(size.as_bytes()),
    )
    .json();
    assert_eq!(
        upload(fresh["presignedUrl"].as_str().unwrap(), &short).status,
        200
    );
    for (suffix, first) in [(".md", &md), (".json", &raw)] {
        let r = http(
            "GET",
            &server.url(&format!("/share/{id}{suffix}")),
            &[("If-None-Match", first.header("etag").unwrap())],
            None,
        );
        assert_eq!(r.status, 200, "{suffix} after a re-sync");
        assert_ne!(r.header("etag"), first.header("etag"), "{suffix}");
    }

    // Deleted: 410 for the page and both variants.
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[(h, &secret)],
        None,
    );
    assert_eq!(r.status, 200);
    for suffix in ["", ".md", ".json"] {
        let r = get(&server.url(&format!("/share/{id}{suffix}")));
        assert_eq!(r.status, 410, "{suffix}");
        assert_page_headers(&r, &format!("410 {suffix}"));
        assert!(r.text().contains("removed"), "{suffix}: {}", r.text());
        assert_eq!(
            http(
                "HEAD",
                &server.url(&format!("/share/{id}{suffix}")),
                &[],
                None
            )
            .status,
            410
        );
    }
}

#[test]
fn trusted_proxy_forwarded_for_is_the_client_address() {
    // Creates are limited per client address: the address the limit counts is what shows whose
    // address the server believes.
    let env = Env::new(Stores::Embedded);
    let create = |server: &Server, forwarded: &str| {
        http(
            "POST",
            &server.url("/api/share/presign"),
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", forwarded),
            ],
            Some(br#"{"sessionId": "ses_p"}"#),
        )
        .status
    };
    let behind = env.server(&["--create-limit", "2", "--trust-proxy", "127.0.0.1"]);
    assert_eq!(create(&behind, "203.0.113.7"), 201);
    assert_eq!(create(&behind, "198.51.100.1, 203.0.113.7"), 201);
    assert_eq!(
        create(&behind, "203.0.113.7"),
        429,
        "the third create of 203.0.113.7"
    );
    assert_eq!(
        create(&behind, "203.0.113.8"),
        201,
        "another client behind the proxy"
    );
    // A client cannot pose as another by sending the header itself through the proxy: the
    // rightmost address the proxy did not add is the one counted.
    assert_eq!(create(&behind, "203.0.113.8, 203.0.113.7"), 429);
    behind.stop();

    // Without --trust-proxy the header is ignored: every request is the peer's.
    let env = Env::new(Stores::Embedded);
    let direct = env.server(&["--create-limit", "2"]);
    assert_eq!(create(&direct, "203.0.113.7"), 201);
    assert_eq!(create(&direct, "203.0.113.8"), 201);
    assert_eq!(
        create(&direct, "203.0.113.9"),
        429,
        "the header is not believed"
    );
}

#[test]
fn s3_public_url_sends_document_reads_to_the_bucket() {
    let env = Env::new(Stores::PostgresS3);
    let s3 = env.s3.as_ref().unwrap();
    let public = format!("https://cdn.example.com/{}", s3.bucket);
    let mut vars = env.server_env();
    vars.push(("S3_PUBLIC_URL".into(), public.clone()));
    let server = Server::start(&vars, &SHORT_UPLOAD_URLS);
    let created = share_document(&server, &read_data(SHORT));
    let id = created["shareId"].as_str().unwrap();
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("{public}/sessions/{id}.json").as_str())
    );

    // A sync batch while the upload URL is open waits in the journal (the upload could still
    // replace the object), so the bucket lacks it: the server serves the document itself.
    let item = json!({"type": "message", "data": {
        "id": "msg_zz_synced", "sessionID": "ses_test", "role": "user", "time": {"created": 1}
    }});
    let body = json!({ "secret": created["secret"], "data": [item] });
    let r = post_json(&server.url(&format!("/api/share/{id}/sync")), &body);
    assert_eq!(r.status, 200, "sync: {}", r.text());
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("msg_zz_synced"));
    // Once no upload can land, the batch is folded into the object and reads go there again.
    wait_past_upload_window(created["expiresAt"].as_i64().unwrap());
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!(r.status, 302, "{}", r.text());
    let object = std::fs::read(s3.object_path(&format!("sessions/{id}.json")));
    assert!(
        String::from_utf8(object.unwrap())
            .unwrap()
            .contains("msg_zz_synced")
    );
    // The page is still rendered by the server, from the bucket.
    let page = get(&server.url(&format!("/share/{id}")));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("List comprehension vs map"));
}

/// A forward HTTP proxy for tests: each connection's request (`GET http://host/path`) goes to
/// 127.0.0.1:`port` as a client that resolved `host` would send it (`GET /path`, `Host: host`).
/// Returns the port it listens on. One request per connection, as the S3 client sends them.
fn origin_form_proxy(port: u16) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    return;
                }
                let mut parts = first.splitn(3, ' ');
                let (method, target, version) = (
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                    parts.next().unwrap_or(""),
                );
                let rest = target.strip_prefix("http://").unwrap_or(target);
                let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
                let Ok(mut upstream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                    return;
                };
                let _ = write!(upstream, "{method} {path} {version}");
                // The host is the URL's, whatever the client's Host header says (RFC 9112
                // §3.2.2: attohttpc names the proxy there).
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).is_err() || line.is_empty() {
                        return;
                    }
                    let end = line == "\r\n";
                    if line.to_ascii_lowercase().starts_with("host:") {
                        line = format!("Host: {authority}\r\n");
                    }
                    let _ = upstream.write_all(line.as_bytes());
                    if end {
                        break;
                    }
                }
                // The body, then the answer back.
                let mut back = upstream.try_clone().unwrap();
                let mut client = client;
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut reader, &mut upstream);
                });
                let _ = std::io::copy(&mut back, &mut client);
            });
        }
    });
    own
}

#[test]
fn s3_virtual_host_addressing_reaches_the_bucket_as_bucket_dot_host() {
    // s3s-fs answers `bshare-test.localhost:PORT` as the bucket. That name does not resolve on
    // every machine, so the server's S3 client reaches s3s-fs through http_proxy, a proxy that
    // sends each request on as if the name had resolved to 127.0.0.1; the upload below connects
    // to 127.0.0.1 and names the host likewise.
    let s3 = S3Server::start_virtual_host();
    let db = PgDb::create();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://localhost:{}", s3.port);
    let proxy = format!("http://127.0.0.1:{}", origin_form_proxy(s3.port));
    let env = vec![
        (
            "BSHARE_DATA_DIR".to_owned(),
            dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_owned(), db.url.clone()),
        ("S3_BUCKET".to_owned(), s3.bucket.clone()),
        ("S3_ENDPOINT".to_owned(), endpoint),
        ("S3_REGION".to_owned(), "us-east-1".to_owned()),
        ("S3_ADDRESSING".to_owned(), "virtual".to_owned()),
        ("S3_ACCESS_KEY_ID".to_owned(), s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY".to_owned(), s3.secret_key.clone()),
        ("http_proxy".to_owned(), proxy.clone()),
        ("HTTP_PROXY".to_owned(), proxy),
        // Whatever the calling shell excludes from proxying (an empty list would exclude all).
        ("no_proxy".to_owned(), "example.invalid".to_owned()),
        ("NO_PROXY".to_owned(), "example.invalid".to_owned()),
    ];
    let server = Server::start(&env, &[]);
    let short = read_data(SHORT);
    let created = create_share(&server, None, Some(short.len()));
    let id = created["shareId"].as_str().unwrap();
    let host = format!("bshare-test.localhost:{}", s3.port);
    let presigned = created["presignedUrl"].as_str().unwrap();
    let path = presigned
        .strip_prefix(&format!("http://{host}"))
        .unwrap_or_else(|| panic!("not a virtual-host URL: {presigned}"));
    assert!(
        path.starts_with(&format!("/sessions/{id}.json?")),
        "the bucket is in the host, not the path: {presigned}"
    );

    // PUT to the presigned URL, to 127.0.0.1 with the bucket's host name.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s3.port)).unwrap();
    write!(
        conn,
        "PUT {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        short.len()
    )
    .unwrap();
    conn.write_all(&short).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(
        std::fs::read(s3.object_path(&format!("sessions/{id}.json"))).unwrap(),
        short
    );

    // The server reads it back the same way.
    let r = get(&server.url(&format!("/api/share/{id}")));
    assert_eq!((r.status, r.body == short), (200, true), "{}", r.text());
    let page = get(&server.url(&format!("/share/{id}")));
    assert!(page.text().contains("List comprehension vs map"));
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
        &json!({"sessionId": "s", "size": 2}),
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
                &json!({"sessionId": "s", "size": 2}),
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

/// `bshare serve` on data directory `dir` with `envs` (and no `DATABASE_URL` but theirs), which
/// must fail to start: what it printed.
fn failed_start(dir: &std::path::Path, envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(support::BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("BSHARE_DATA_DIR", dir)
        .env_remove("DATABASE_URL")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_configuration_fails_at_startup_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| failed_start(dir.path(), envs);
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
    let err = run(&[("BSHARE_DEFAULT_EXPIRY", "8d"), ("BSHARE_MAX_EXPIRY", "7d")]);
    assert!(err.contains("longer than --max-expiry"), "{err}");
    let err = run(&[("BSHARE_MAX_EXPIRY", "soon")]);
    assert!(err.contains("not a duration"), "{err}");
    let err = run(&[("BSHARE_CREATE_TOKEN", "good,with/slash")]);
    assert!(err.contains("--create-token may not contain"), "{err}");
    assert!(
        !err.contains("with/slash"),
        "the token is never printed: {err}"
    );
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

/// A database that already holds a table of the same name (another program's, or a half-made
/// one) stops the start with the migration, the database's own message and what to do, on both
/// stores; it was "internal error" and nothing else.
#[test]
fn a_database_bshare_cannot_migrate_fails_at_startup_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)]| failed_start(dir.path(), envs);
    let db = support::PgDb::create();
    db.client()
        .batch_execute("CREATE TABLE shares (id TEXT PRIMARY KEY)")
        .unwrap();
    let err = run(&[("DATABASE_URL", &db.url)]);
    for part in [
        "PostgreSQL database in DATABASE_URL",
        "migration 0001_init.sql failed",
        "\"shares\" already exists",
        "a database of its own",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let sqlite = rusqlite::Connection::open(dir.path().join("bshare.db")).unwrap();
    sqlite
        .execute_batch("CREATE TABLE shares (id TEXT PRIMARY KEY)")
        .unwrap();
    drop(sqlite);
    let err = run(&[]);
    for part in [
        "SQLite database at",
        "migration 0001_init.sql failed",
        "shares already exists",
        "a database of its own",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
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
        "BSHARE_DEFAULT_EXPIRY",
        "BSHARE_MAX_EXPIRY",
        "BSHARE_CREATE_TOKEN",
    ] {
        assert!(help.contains(var), "--help lacks {var}:\n{help}");
    }
}

/// Whether the object of share `id` is in the store `env` runs on.
fn object_exists(env: &Env, id: &str) -> bool {
    match &env.s3 {
        Some(s3) => s3.object_path(&format!("sessions/{id}.json")).exists(),
        None => env
            .dir
            .path()
            .join(format!("server/objects/sessions/{id}.json"))
            .exists(),
    }
}

fn shares_expire_everywhere_at_once_and_their_objects_go(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let long = read_data(LONG);
    let r = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "ses_expiring", "size": long.len(), "expiresIn": 2}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["shareId"].as_str().unwrap().to_owned();
    let expires_at = created["shareExpiresAt"].as_i64().unwrap();
    let now = bshare::model::now_millis();
    assert!(
        (now + 1_000..=now + 2_500).contains(&expires_at),
        "{created}"
    );
    assert_eq!(
        upload(created["presignedUrl"].as_str().unwrap(), &long).status,
        200
    );
    let (h, secret) = secret_header(&created);
    // Viewed before expiry, so the page is in the cache when it expires.
    assert_eq!(get(&server.url(&format!("/share/{id}"))).status, 200);
    assert_eq!(get(&server.url(&format!("/share/{id}"))).status, 200);
    while bshare::model::now_millis() < expires_at {
        std::thread::sleep(Duration::from_millis(50));
    }
    for path in [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/share/{id}.json"),
        format!("/api/share/{id}"),
        format!("/api/share/{id}/data"),
    ] {
        let r = get(&server.url(&path));
        assert_eq!(r.status, 410, "{path} right after expiry: {}", r.text());
    }
    let page = get(&server.url(&format!("/share/{id}")));
    assert!(page.text().contains("expired"), "{}", page.text());
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[h_pair(h, &secret), ("Content-Type", "application/json")],
        Some(json!({ "size": 10 }).to_string().as_bytes()),
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (410, Some("SHARE_EXPIRED"))
    );
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/sync")),
        &[("Content-Type", "application/json")],
        Some(
            json!({ "secret": secret, "data": [] })
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 410, "{}", r.text());

    // The sweeper deletes the object within its period (10 s); the id stays reserved.
    assert!(
        support::eventually(Duration::from_secs(20), || !object_exists(&env, &id)),
        "the object of an expired share is deleted"
    );
    let again = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "ses_other", "shareId": id, "size": 2}),
    );
    assert_eq!(again.status, 409, "the id stays reserved");
    assert_eq!(get(&server.url(&format!("/share/{id}"))).status, 410);
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[h_pair(h, &secret)],
        None,
    );
    assert_eq!(r.status, 410, "{}", r.text());
}

fn expiry_is_bounded_by_the_server(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&["--default-expiry", "1h", "--max-expiry", "7d"]);
    let presign = server.url("/api/share/presign");
    for bad in [json!(0), json!(7 * 86_400 + 1), json!(-5), json!("7d")] {
        let r = post_json(
            &presign,
            &json!({"sessionId": "s", "expiresIn": bad, "size": 2}),
        );
        assert_eq!(r.status, 400, "expiresIn {bad}: {}", r.text());
    }
    let r = post_json(
        &presign,
        &json!({"sessionId": "s", "expiresIn": 7 * 86_400, "size": 2}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = post_json(&presign, &json!({"sessionId": "s", "size": 2})).json();
    let at = created["shareExpiresAt"].as_i64().unwrap();
    let now = bshare::model::now_millis();
    assert!(
        (now + 3_590_000..=now + 3_600_000).contains(&at),
        "--default-expiry applies: {created}"
    );
    // OpenCode's own create gets the default too.
    let r = post_json(&server.url("/api/share"), &json!({"sessionID": "ses_oc"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["shareExpiresAt"].as_i64().unwrap() > now);
    // Without either flag, shares do not expire.
    let plain = env.server(&[]);
    let created = create_share(&plain, None, None);
    assert!(created["shareExpiresAt"].is_null(), "{created}");
}

fn create_tokens_guard_creation_only(stores: Stores) {
    const TOKEN: &str = "tok-4b1d9e77aa";
    const WRONG: &str = "tok-4b1d9e77ab";
    let env = Env::new(stores);
    let server = env.server(&["--create-token", &format!("first-token, {TOKEN}")]);
    let presign = server.url("/api/share/presign");
    let body = json!({"sessionId": "ses_t", "size": 2}).to_string();
    let create = |url: &str, auth: Option<&str>| {
        let mut headers = vec![("Content-Type", "application/json")];
        let bearer;
        if let Some(token) = auth {
            bearer = format!("Bearer {token}");
            headers.push(("Authorization", &bearer));
        }
        http("POST", url, &headers, Some(body.as_bytes()))
    };
    let r = create(&presign, None);
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (401, Some("TOKEN_REQUIRED")),
        "{}",
        r.text()
    );
    assert_eq!(create(&presign, Some(WRONG)).status, 403);
    assert_eq!(create(&presign, Some("")).status, 401);
    assert_eq!(create(&presign, Some("first-token")).status, 201);
    let r = create(&presign, Some(TOKEN));
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["shareId"].as_str().unwrap().to_owned();
    // Uploading, re-syncing, viewing and deleting need no token.
    assert_eq!(
        upload(created["presignedUrl"].as_str().unwrap(), b"{}").status,
        200
    );
    let (h, secret) = secret_header(&created);
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[h_pair(h, &secret), ("Content-Type", "application/json")],
        Some(br#"{"size": 2}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&server.url(&format!("/share/{id}.json"))).status, 200);

    // OpenCode's create, under the /t/<token> prefix; its links stay /share/<id>.
    let oc = json!({"sessionID": "ses_oc"});
    let r = post_json(&server.url(&format!("/t/{TOKEN}/api/share")), &oc);
    assert_eq!(r.status, 200, "{}", r.text());
    let oc_share = r.json();
    let oc_id = oc_share["id"].as_str().unwrap();
    assert_eq!(oc_share["url"], server.url(&format!("/share/{oc_id}")));
    assert_eq!(
        post_json(&server.url(&format!("/t/{WRONG}/api/share")), &oc).status,
        403
    );
    assert_eq!(post_json(&server.url("/api/share"), &oc).status, 401);
    let r = post_json(
        &server.url(&format!("/t/{TOKEN}/api/share/{oc_id}/sync")),
        &json!({"secret": oc_share["secret"], "data": []}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // Only the API lives under the prefix.
    assert_eq!(
        get(&server.url(&format!("/t/{TOKEN}/share/{id}"))).status,
        404
    );
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[h_pair(h, &secret)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let logs = server.logs();
    assert!(logs.contains("POST /t/…/api/share "), "{logs}");
    for token in [TOKEN, WRONG, "first-token"] {
        assert!(!logs.contains(token), "{token} in the log:\n{logs}");
    }
}

fn neither_secret_nor_address_is_served_stored_or_logged(stores: Stores) {
    const ADDRESS: &str = "203.0.113.77";
    let env = Env::new(stores);
    let server = env.server(&["--trust-proxy", "127.0.0.1"]);
    let short = read_data(SHORT);
    let r = http(
        "POST",
        &server.url("/api/share/presign"),
        &[
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ADDRESS),
        ],
        Some(
            json!({"sessionId": "ses_p", "size": short.len()})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let created = r.json();
    let id = created["shareId"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert_eq!(
        upload(created["presignedUrl"].as_str().unwrap(), &short).status,
        200
    );
    for path in [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/share/{id}.json"),
        format!("/api/share/{id}"),
        format!("/api/share/{id}/data"),
    ] {
        let r = get(&server.url(&path));
        assert_eq!(r.status, 200, "{path}");
        let text = format!("{:?}{}", r.headers, r.text());
        assert!(!text.contains(secret), "{path} shows the secret");
        assert!(
            !text.contains(ADDRESS),
            "{path} shows the creator's address"
        );
    }
    let octets: [u8; 4] = [203, 0, 113, 77];
    match &env.pg {
        Some(pg) => {
            let mut c = pg.client();
            for table in [
                "shares",
                "create_counts",
                "used_upload_nonces",
                "server_keys",
            ] {
                let rows = c
                    .query(&format!("SELECT row_to_json(t)::text FROM {table} t"), &[])
                    .unwrap();
                for row in rows {
                    let row: String = row.get(0);
                    assert!(
                        !row.contains(ADDRESS) && !row.contains(secret),
                        "{table}: {row}"
                    );
                    // bytea as hex in JSON: \\xcb00714d would be the raw address.
                    assert!(!row.contains("cb00714d"), "{table}: {row}");
                }
            }
            let hash: Vec<u8> = c
                .query_one("SELECT client_hash FROM create_counts", &[])
                .unwrap()
                .get(0);
            assert_eq!(hash.len(), 16, "a keyed hash, not the address");
        }
        None => {
            for file in ["bshare.db", "bshare.db-wal"] {
                let bytes =
                    std::fs::read(env.dir.path().join("server").join(file)).unwrap_or_default();
                for needle in [ADDRESS.as_bytes(), &octets[..], secret.as_bytes()] {
                    assert!(
                        !bytes.windows(needle.len()).any(|w| w == needle),
                        "{file} holds {needle:?}"
                    );
                }
            }
        }
    }
    let logs = server.logs();
    assert!(
        !logs.contains(ADDRESS),
        "the log holds the address:\n{logs}"
    );
}

/// A document stored while the limit was higher (or put in the bucket by other means) is refused
/// with a sentence, read no further than the limit.
fn objects_over_the_limit_are_never_read(stores: Stores) {
    let env = Env::new(stores);
    let generous = env.server(&[]);
    let long = read_data(LONG);
    let created = share_document(&generous, &long);
    let id = created["shareId"].as_str().unwrap();
    let limit = (long.len() / 2).to_string();
    let strict = env.server(&["--max-document-bytes", &limit]);
    let page = get(&strict.url(&format!("/share/{id}")));
    assert_eq!(page.status, 502, "{}", page.text());
    assert!(page.text().contains("too large to show"), "{}", page.text());
    for path in [format!("/share/{id}.md"), format!("/share/{id}.json")] {
        assert_eq!(get(&strict.url(&path)).status, 502, "{path}");
    }
    for path in [format!("/api/share/{id}"), format!("/api/share/{id}/data")] {
        let r = get(&strict.url(&path));
        assert_eq!(
            (r.status, r.json()["code"].as_str()),
            (502, Some("DOCUMENT_TOO_LARGE")),
            "{path}: {}",
            r.text()
        );
        assert!(r.json()["error"].as_str().unwrap().contains(&limit));
    }
    assert_eq!(get(&generous.url(&format!("/share/{id}"))).status, 200);
}

#[test]
fn s3_upload_urls_always_bind_a_length() {
    let env = Env::new(Stores::PostgresS3);
    let server = env.server(&[]);
    let r = post_json(
        &server.url("/api/share/presign"),
        &json!({"sessionId": "s"}),
    );
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "{}",
        r.text()
    );
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("size is required")
    );
    let created = create_share(&server, None, Some(10));
    let id = created["shareId"].as_str().unwrap();
    let (h, secret) = secret_header(&created);
    let resync = |body: &[u8]| {
        http(
            "POST",
            &server.url(&format!("/api/share/{id}/presign")),
            &[h_pair(h, &secret), ("Content-Type", "application/json")],
            Some(body),
        )
    };
    assert_eq!(resync(b"{}").status, 400);
    let fresh = resync(br#"{"size": 12}"#);
    assert_eq!(fresh.status, 200, "{}", fresh.text());
    // The bucket refuses any other length than the one the URL binds.
    let url = fresh.json()["presignedUrl"].as_str().unwrap().to_owned();
    assert_ne!(upload(&url, &[b' '; 5000]).status, 200);
    assert_eq!(upload(&url, br#"{"a":"12345"}"#[..12].as_ref()).status, 200);
}
