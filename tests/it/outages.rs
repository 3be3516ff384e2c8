//! PostgreSQL restarted and the bucket killed while clients keep working: what was acknowledged
//! stays, what fails says so as a JSON 503, and service comes back by itself.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

const SHORT: &str = "opencode-1.18.33-short.sharedata.json";

/// One request as a client saw it: when it started (since the load began) and its status.
#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Duration,
    status: u16,
}

/// A failure must be a JSON 503 `UNAVAILABLE`.
fn check_failure(what: &str, r: &Resp) {
    assert_eq!(r.status, 503, "{what}: {} {}", r.status, r.text());
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("application/json")),
        "{what}: {:?}",
        r.headers
    );
    assert_eq!(r.json()["code"], "UNAVAILABLE", "{what}: {}", r.text());
}

/// A server on `db` that keeps documents on local disk in `dir`.
fn pg_env(db: &PgDb, dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("BSHARE_DATA_DIR".to_owned(), dir.display().to_string()),
        ("DATABASE_URL".to_owned(), db.url.clone()),
    ]
}

fn pg_s3_env(db: &PgDb, s3: &S3Server, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut env = pg_env(db, dir);
    env.extend([
        ("S3_BUCKET".to_owned(), s3.bucket.clone()),
        ("S3_ENDPOINT".to_owned(), s3.endpoint.clone()),
        ("S3_REGION".to_owned(), "us-east-1".to_owned()),
        ("S3_ACCESS_KEY_ID".to_owned(), s3.access_key.clone()),
        ("S3_SECRET_ACCESS_KEY".to_owned(), s3.secret_key.clone()),
    ]);
    env
}

#[test]
fn postgres_restarted_under_steady_load_loses_nothing_acknowledged() {
    let cluster = PgCluster::start();
    let db = PgDb::create_on(&cluster.admin_url());
    let s3 = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg_s3_env(&db, &s3, dir.path()), &[]);
    let doc = read_data(SHORT);

    // A share to re-sync and an OpenCode share to sync into.
    let resynced = share_document(&server, &doc);
    let resync_id = resynced["shareId"].as_str().unwrap().to_owned();
    let resync_secret = resynced["secret"].as_str().unwrap().to_owned();
    let r = post_json(
        &server.url("/api/share"),
        &json!({ "sessionID": "ses_load" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let sync_id = r.json()["id"].as_str().unwrap().to_owned();
    let sync_secret = r.json()["secret"].as_str().unwrap().to_owned();

    let started = Instant::now();
    let stop = AtomicBool::new(false);
    let created = Mutex::new(Vec::<String>::new());
    let synced = Mutex::new(Vec::<String>::new());
    let resync_acked = Mutex::new(Vec::<usize>::new());
    let seen = Mutex::new(Vec::<(&str, Seen)>::new());
    let (down_at, back_at) =
        std::thread::scope(|s| {
            let _stop = StopOnDrop(&stop);
            // Two creators: create, then upload to the bucket.
            for _ in 0..2 {
                s.spawn(|| {
                    while !stop.load(Ordering::SeqCst) {
                        let at = started.elapsed();
                        let r = post_json(
                            &server.url("/api/share/presign"),
                            &json!({ "sessionId": "ses_load", "size": doc.len() }),
                        );
                        seen.lock().unwrap().push((
                            "create",
                            Seen {
                                at,
                                status: r.status,
                            },
                        ));
                        if r.status == 201 {
                            let v = r.json();
                            let up = upload(v["presignedUrl"].as_str().unwrap(), &doc);
                            assert_eq!(up.status, 200, "the bucket is up: {}", up.text());
                            created
                                .lock()
                                .unwrap()
                                .push(v["shareId"].as_str().unwrap().to_owned());
                        } else {
                            check_failure("create", &r);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                });
            }
            // A re-syncer: a fresh upload URL, then a new version of the document.
            s.spawn(|| {
                let mut version = 0;
                while !stop.load(Ordering::SeqCst) {
                    version += 1;
                    let mut body: serde_json::Value = serde_json::from_slice(&doc).unwrap();
                    body["session"]["title"] = format!("version {version}").into();
                    let bytes = serde_json::to_vec(&body).unwrap();
                    let at = started.elapsed();
                    let r = http(
                        "POST",
                        &server.url(&format!("/api/share/{resync_id}/presign")),
                        &[
                            ("X-Share-Secret", &resync_secret),
                            ("Content-Type", "application/json"),
                        ],
                        Some(json!({ "size": bytes.len() }).to_string().as_bytes()),
                    );
                    seen.lock().unwrap().push((
                        "re-sync",
                        Seen {
                            at,
                            status: r.status,
                        },
                    ));
                    if r.status == 200 {
                        let up = upload(r.json()["presignedUrl"].as_str().unwrap(), &bytes);
                        assert_eq!(up.status, 200, "{}", up.text());
                        resync_acked.lock().unwrap().push(version);
                    } else {
                        check_failure("re-sync", &r);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            // Two OpenCode syncers into one share: each batch one new message.
            for client in 0..2 {
                let (synced, seen, stop) = (&synced, &seen, &stop);
                let (sync_id, sync_secret, server) = (&sync_id, &sync_secret, &server);
                s.spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let msg = format!("msg_c{client}_{n:05}");
                    let batch = json!({"secret": sync_secret, "data": [{"type": "message", "data": {
                        "id": msg, "sessionID": "ses_load", "role": "user", "time": {"created": n}
                    }}]});
                    let at = started.elapsed();
                    let r = post_json(&server.url(&format!("/api/share/{sync_id}/sync")), &batch);
                    seen.lock().unwrap().push(("sync", Seen { at, status: r.status }));
                    if r.status == 200 {
                        synced.lock().unwrap().push(msg);
                    } else {
                        check_failure("sync", &r);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            }
            std::thread::sleep(Duration::from_secs(3));
            let down_at = started.elapsed();
            cluster.stop();
            std::thread::sleep(Duration::from_secs(3));
            cluster.start_again();
            let back_at = started.elapsed();
            std::thread::sleep(Duration::from_secs(10));
            stop.store(true, Ordering::SeqCst);
            (down_at, back_at)
        });

    let seen = seen.into_inner().unwrap();
    let failed_during: Vec<_> = seen
        .iter()
        .filter(|(_, s)| s.status != 200 && s.status != 201)
        .collect();
    assert!(
        !failed_during.is_empty(),
        "the outage was seen by the clients"
    );
    for (what, s) in &seen {
        if s.status >= 500 {
            assert!(
                // A request begun just before the stop may fail too.
                s.at + Duration::from_secs(2) >= down_at
                    && s.at <= back_at + Duration::from_secs(5),
                "{what} failed at {:?}, outside the outage ({down_at:?} to {back_at:?}) and the 5 s after it",
                s.at
            );
        }
    }
    for what in ["create", "re-sync", "sync"] {
        assert!(
            seen.iter().any(|(w, s)| *w == what
                && s.at > back_at + Duration::from_secs(5)
                && s.status < 300),
            "{what} works again after the restart"
        );
    }

    // Everything acknowledged is there.
    let created = created.into_inner().unwrap();
    assert!(created.len() > 10, "{} creates", created.len());
    for id in &created {
        let r = get(&server.url(&format!("/api/share/{id}")));
        assert_eq!(
            (r.status, r.body == doc),
            (200, true),
            "share {id}: {}",
            r.text()
        );
    }
    let last = *resync_acked.into_inner().unwrap().last().unwrap();
    let page = get(&server.url(&format!("/api/share/{resync_id}"))).json();
    assert_eq!(page["session"]["title"], format!("version {last}"));
    let items = get(&server.url(&format!("/api/share/{sync_id}/data"))).json();
    let have: std::collections::HashSet<&str> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .filter_map(|i| i["data"]["id"].as_str())
        .collect();
    let synced = synced.into_inner().unwrap();
    for msg in &synced {
        assert!(have.contains(msg.as_str()), "acknowledged {msg} is lost");
    }
    drop(db);
}

/// Connections that sat unused through a PostgreSQL restart: the first request on each must not
/// fail, however long after the restart it comes. The listener sees the restart as it happens,
/// and every connection made before it is replaced before its next use.
#[test]
fn connections_idle_through_a_postgres_restart_fail_no_request_after_it() {
    let cluster = PgCluster::start();
    let db = PgDb::create_on(&cluster.admin_url());
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&pg_env(&db, dir.path()), &[]);
    let create = || {
        post_json(
            &server.url("/api/share/presign"),
            &json!({ "sessionId": "ses_idle" }),
        )
    };
    // Concurrent creates, so that several workers hold a connection.
    let burst = || {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| (0..5).map(|_| create().status).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    };
    assert!(burst().iter().all(|&s| s == 201));

    // Nothing is asked while the database is down: every connection stays as it was.
    cluster.stop();
    std::thread::sleep(Duration::from_secs(1));
    cluster.start_again();
    std::thread::sleep(Duration::from_secs(2));

    let one = create();
    assert_eq!(
        one.status,
        201,
        "the first request after the restart: {}",
        one.text()
    );
    let statuses = burst();
    assert!(
        statuses.iter().all(|&s| s == 201),
        "requests after the restart: {statuses:?}"
    );
    drop(db);
}

#[test]
fn a_killed_bucket_fails_fast_while_cached_pages_are_served() {
    let mut env = Env::new(Stores::PostgresS3);
    // Short upload URLs: cached pages then soon stop checking the object.
    let server = env.server(&SHORT_UPLOAD_URLS);
    let doc = read_data(SHORT);
    let cached = share_document(&server, &doc)["shareId"]
        .as_str()
        .unwrap()
        .to_owned();
    let uncached = share_document(&server, &doc);
    wait_past_upload_window(uncached["expiresAt"].as_i64().unwrap());
    let uncached = uncached["shareId"].as_str().unwrap().to_owned();
    assert_eq!(get(&server.url(&format!("/share/{cached}"))).status, 200);

    let started = Instant::now();
    env.s3.as_mut().unwrap().stop();
    let down_for = Duration::from_secs(6);
    while started.elapsed() < down_for {
        let r = get(&server.url(&format!("/share/{cached}")));
        assert_eq!(
            (r.status, r.header("x-cache")),
            (200, Some("hit")),
            "a cached page is served without the bucket"
        );
        for path in [
            format!("/share/{uncached}"),
            format!("/api/share/{uncached}"),
        ] {
            let t = Instant::now();
            let r = get(&server.url(&path));
            assert_eq!(r.status, 503, "{path}: {}", r.text());
            assert!(
                t.elapsed() < Duration::from_secs(15),
                "{path} took {:?}: longer than the object store's timeout",
                t.elapsed()
            );
        }
        let r = get(&server.url(&format!("/api/share/{uncached}")));
        check_failure("document without the bucket", &r);
        std::thread::sleep(Duration::from_millis(200));
    }
    env.s3.as_mut().unwrap().restart();
    let back = Instant::now();
    assert!(
        eventually(Duration::from_secs(5), || {
            get(&server.url(&format!("/share/{uncached}"))).status == 200
        }),
        "service resumes by itself"
    );
    eprintln!("served again {:?} after the bucket", back.elapsed());
    assert_eq!(
        get(&server.url(&format!("/api/share/{uncached}"))).body,
        doc
    );
}
