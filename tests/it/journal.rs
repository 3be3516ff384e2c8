//! Sync batches journaled and folded into the document (`http::journal`): the store's part on
//! SQLite and PostgreSQL, and the server's on both store pairs, read off the stored object itself.

use std::path::PathBuf;
use std::time::Duration;

use bshare::config::DatabaseConfig;
use bshare::http::journal;
use bshare::store::{self, JournalBatch, MetaStore, ShareRow};
use serde_json::{Value, json};

use crate::support::{
    Env, PgDb, SHORT_UPLOAD_URLS, Server, Stores, eventually, get, http, post_json, upload,
    wait_past_upload_window,
};

fn row(id: &str, expires_at: Option<i64>) -> ShareRow {
    ShareRow {
        id: id.into(),
        session_id: "ses_journal".into(),
        secret_hash: bshare::crypto::secret_hash("s"),
        created_at: 1,
        updated_at: 1,
        deleted_at: None,
        upload_until: 0,
        expires_at,
    }
}

fn batch(at: i64, items: &str) -> JournalBatch {
    JournalBatch::new(at, false, items.as_bytes().to_vec(), 1)
}

/// The share's journaled batches, as a reader reads them: under its lock.
fn batches(s: &mut dyn MetaStore, id: &str) -> Vec<JournalBatch> {
    let mut batches = Vec::new();
    s.with_share_locked(id, None, &mut |_, journal| {
        batches = journal.batches()?;
        Ok(())
    })
    .unwrap();
    batches
}

/// What every store promises of the journal.
fn journal_contract(s: &mut dyn MetaStore) {
    const LIMIT: u64 = 10_000;
    assert!(s.insert_share(&row("journalshare", None)).unwrap());
    let first = batch(10, r#"[{"type":"model","data":[1]}]"#);
    // The document's size is unknown until the server writes it: not admitted.
    assert_eq!(s.append_sync("journalshare", &first, LIMIT).unwrap(), None);
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        assert!(journal.batches()?.is_empty());
        journal.folded(0, 1000)
    })
    .unwrap();
    let size = s
        .append_sync("journalshare", &first, LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!((size.journal_bytes, size.doc_bytes), (first.weight, 1000));
    assert_eq!(s.get_share("journalshare").unwrap().unwrap().updated_at, 10);
    let second = batch(20, r#"[{"type":"model","data":[2]}]"#);
    let size = s
        .append_sync("journalshare", &second, LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(size.journal_bytes, first.weight + second.weight);
    // One that could take the document past the limit is not admitted, and nothing is kept.
    let huge = JournalBatch::new(30, true, vec![b' '; 9000], 1);
    assert_eq!(s.append_sync("journalshare", &huge, LIMIT).unwrap(), None);

    let kept = batches(s, "journalshare");
    assert_eq!(kept.len(), 2);
    assert!(kept[0].seq < kept[1].seq, "in the order acknowledged");
    assert_eq!((kept[0].at, &kept[0].items), (10, &first.items));
    assert_eq!((kept[1].at, kept[1].redacted), (20, false));
    assert_eq!(kept[1].weight, second.weight);
    assert_eq!(s.journal_head("journalshare").unwrap(), kept[1].seq);

    // Quiet since 20, not since 19.
    assert_eq!(s.quiet_journals(20, 0, 10).unwrap(), ["journalshare"]);
    assert!(s.quiet_journals(19, 0, 10).unwrap().is_empty());

    // A fold of the first batch leaves the second, and its weight.
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.folded(kept[0].seq, 1500)
    })
    .unwrap();
    let left = batches(s, "journalshare");
    assert_eq!(left, kept[1..]);
    let third = batch(40, "[]");
    let size = s
        .append_sync("journalshare", &third, LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(
        (size.journal_bytes, size.doc_bytes),
        (second.weight + third.weight, 1500)
    );
    // A fold of everything.
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.folded(i64::MAX, 1600)
    })
    .unwrap();
    assert!(batches(s, "journalshare").is_empty());
    assert_eq!(s.journal_head("journalshare").unwrap(), 0);
    assert!(s.quiet_journals(i64::MAX, i64::MAX, 10).unwrap().is_empty());

    // An upload URL makes the size unknown again, and is recorded within the lock.
    s.with_share_locked("journalshare", Some(50), &mut |_, journal| {
        journal.upload_opened(50)
    })
    .unwrap();
    let share = s.get_share("journalshare").unwrap().unwrap();
    assert_eq!((share.upload_until, share.updated_at), (50, 50));
    assert_eq!(s.append_sync("journalshare", &third, LIMIT).unwrap(), None);
    // An earlier expiry does not shorten it.
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.upload_opened(40)
    })
    .unwrap();
    assert_eq!(
        s.get_share("journalshare").unwrap().unwrap().upload_until,
        50
    );
    // Under the lock the journal is replaced by one batch whatever the size (the caller checked
    // it), its weight with it; the size stays unknown.
    let before = batch(44, "[]");
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.replace(&before)
    })
    .unwrap();
    let waiting = batch(45, r#"[{"type":"model","data":[3]}]"#);
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.replace(&waiting)
    })
    .unwrap();
    let kept = batches(s, "journalshare");
    assert_eq!(kept.len(), 1, "the one batch replaced the other");
    assert_eq!((kept[0].at, &kept[0].items), (45, &waiting.items));
    assert_eq!(s.append_sync("journalshare", &third, LIMIT).unwrap(), None);
    // Quiet, but not folded before its last upload URL (until 50) has expired.
    assert!(s.quiet_journals(45, 49, 10).unwrap().is_empty());
    assert_eq!(s.quiet_journals(45, 50, 10).unwrap(), ["journalshare"]);
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        let after = journal.batches()?[0].seq - 1;
        journal.folded(after, 0)
    })
    .unwrap();
    assert_eq!(batches(s, "journalshare"), kept, "a later fold keeps it");
    let size = s
        .append_sync("journalshare", &third, LIMIT)
        .unwrap()
        .unwrap();
    assert_eq!(size.journal_bytes, waiting.weight + third.weight);
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.folded(i64::MAX, 0)
    })
    .unwrap();
    s.with_share_locked("journalshare", None, &mut |_, journal| {
        journal.folded(0, 100)
    })
    .unwrap();
    assert!(
        s.append_sync("journalshare", &third, LIMIT)
            .unwrap()
            .is_some()
    );

    // The tombstone takes the journal with it, and nothing is journaled after it.
    assert!(s.mark_deleted("journalshare", 60).unwrap());
    assert!(batches(s, "journalshare").is_empty());
    assert_eq!(s.append_sync("journalshare", &third, LIMIT).unwrap(), None);

    // Nor into an expired share, nor an unknown one.
    assert!(s.insert_share(&row("expiredshare", Some(70))).unwrap());
    s.with_share_locked("expiredshare", None, &mut |_, journal| {
        journal.folded(0, 100)
    })
    .unwrap();
    assert!(
        s.append_sync("expiredshare", &batch(69, "[]"), LIMIT)
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.append_sync("expiredshare", &batch(70, "[]"), LIMIT)
            .unwrap(),
        None
    );
    assert_eq!(
        s.append_sync("nosuchshare", &batch(1, "[]"), LIMIT)
            .unwrap(),
        None
    );
}

#[test]
fn the_journal_contract_holds_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let connector = store::open(&DatabaseConfig::Sqlite {
        path: dir.path().join("meta.db"),
    })
    .unwrap();
    journal_contract(connector.connect().unwrap().as_mut());
}

#[test]
fn the_journal_contract_holds_on_postgres() {
    let db = PgDb::create();
    let connector = store::open(&DatabaseConfig::Postgres {
        url: db.url.clone(),
    })
    .unwrap();
    journal_contract(connector.connect().unwrap().as_mut());
}

// ---------------------------------------------------------------------------------------------
// The server

const SESSION: &str = "ses_journal0000000000000000";

/// The stored object of share `id`, as the bucket or the data directory holds it.
fn object(env: &Env, id: &str) -> Option<Value> {
    let key = bshare::model::object_key(id);
    let path: PathBuf = match &env.s3 {
        Some(s3) => s3.object_path(&key),
        None => env
            .dir
            .path()
            .join("server/objects/sessions")
            .join(format!("{}.json", bshare::model::case_safe_stem(id))),
    };
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).expect("the object is JSON"))
}

fn message(id: &str, created: i64) -> Value {
    json!({"type": "message", "data": {
        "id": id, "sessionID": SESSION, "role": "user", "time": {"created": created}
    }})
}

fn part(message: &str, id: &str, text: &str) -> Value {
    json!({"type": "part", "data": {
        "id": id, "messageID": message, "sessionID": SESSION, "type": "text", "text": text
    }})
}

fn sync(server: &Server, id: &str, secret: &str, items: &[Value]) {
    let r = post_json(
        &server.url(&format!("/api/share/{id}/sync")),
        &json!({ "secret": secret, "data": items }),
    );
    assert_eq!(r.status, 200, "sync: {}", r.text());
}

/// A share made as OpenCode makes one: its id and secret.
fn opencode_share(server: &Server) -> (String, String) {
    let created = post_json(&server.url("/api/share"), &json!({ "sessionID": SESSION })).json();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

/// A re-sync's upload URL for a document of `size` bytes: the answer (`presignedUrl`,
/// `expiresAt`).
fn resync_url(server: &Server, id: &str, secret: &str, size: usize) -> Value {
    let r = http(
        "POST",
        &server.url(&format!("/api/share/{id}/presign")),
        &[
            ("Content-Type", "application/json"),
            ("X-Share-Secret", secret),
        ],
        Some(json!({ "size": size }).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "presign: {}", r.text());
    r.json()
}

/// The texts of every part the document holds, in order.
fn texts(doc: &Value) -> Vec<String> {
    doc["messages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["parts"].as_array().unwrap().iter())
        .map(|p| p["text"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn journaled_batches_are_seen_at_once_and_folded_later(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&SHORT_UPLOAD_URLS);
    let (id, secret) = opencode_share(&server);
    let (id, secret) = (id.as_str(), secret.as_str());

    // The first batch is merged into the object itself: the document's size was not known.
    let session = json!({"type": "session", "data": {"id": SESSION, "title": "journal"}});
    sync(
        &server,
        id,
        secret,
        &[
            session,
            message("msg_1", 1),
            part("msg_1", "prt_1", "first"),
        ],
    );
    let stored = object(&env, id).expect("the first batch wrote the object");
    assert_eq!(texts(&stored), ["first"]);

    // The next ones are journaled: the object stays as it was, every view has them at once.
    sync(&server, id, secret, &[part("msg_1", "prt_2", "second")]);
    sync(
        &server,
        id,
        secret,
        &[message("msg_2", 2), part("msg_2", "prt_3", "third")],
    );
    assert_eq!(
        object(&env, id).unwrap(),
        stored,
        "a journaled batch leaves the object"
    );
    let doc = get(&server.url(&format!("/api/share/{id}"))).json();
    assert_eq!(texts(&doc), ["first", "second", "third"]);
    let page = get(&server.url(&format!("/share/{id}"))).text();
    assert!(page.contains("third"), "the page shows the journaled batch");
    let items = get(&server.url(&format!("/api/share/{id}/data"))).json();
    assert_eq!(
        items.as_array().unwrap().len(),
        6,
        "session, 2 messages, 3 parts"
    );

    // A journal grown by half the document is folded by the fold thread, off the request.
    let big = "x".repeat(300 * 1024);
    sync(&server, id, secret, &[part("msg_2", "prt_4", &big)]);
    assert!(
        eventually(Duration::from_secs(10), || object(&env, id)
            .is_some_and(|o| texts(&o).len() == 4)),
        "the fold thread wrote the journal into the object"
    );
    let folded = object(&env, id).unwrap();
    assert_eq!(folded, get(&server.url(&format!("/api/share/{id}"))).json());
    assert_eq!(texts(&folded)[..3], ["first", "second", "third"]);

    // An upload URL is handed out only once the object holds every acknowledged batch.
    sync(&server, id, secret, &[part("msg_2", "prt_5", "fifth")]);
    assert_eq!(object(&env, id).unwrap(), folded);
    let upload_expires = resync_url(&server, id, secret, 1000)["expiresAt"]
        .as_i64()
        .unwrap();
    let before_upload = object(&env, id).unwrap();
    assert_eq!(texts(&before_upload).len(), 5);

    // While the URL is open the batches wait in the journal: the upload would replace them. On
    // S3 the object is left alone (a PUT could land between a read and a write of it); on disk
    // uploads come through the server under the share's lock, and the first batch, merged under
    // it, is written into the object too.
    sync(&server, id, secret, &[part("msg_2", "prt_6", "sixth")]);
    sync(&server, id, secret, &[part("msg_2", "prt_7", "seventh")]);
    let seen = get(&server.url(&format!("/api/share/{id}"))).json();
    assert_eq!(texts(&seen).len(), 7);
    match env.s3 {
        Some(_) => assert_eq!(object(&env, id).unwrap(), before_upload),
        None => assert_eq!(texts(&object(&env, id).unwrap()).len(), 6),
    }

    // Then a quiet share's journal is folded by the sweeper (quiet 10 s, swept every 10 s).
    wait_past_upload_window(upload_expires);
    assert!(
        eventually(Duration::from_secs(30), || object(&env, id)
            .is_some_and(|o| texts(&o).len() == 7)),
        "the sweeper folded the quiet share's journal"
    );
    assert_eq!(object(&env, id).unwrap(), seen);

    // A takedown drops the journal: nothing of it comes back.
    sync(&server, id, secret, &[part("msg_2", "prt_8", "eighth")]);
    let r = http(
        "DELETE",
        &server.url(&format!("/api/share/{id}")),
        &[("Content-Type", "application/json")],
        Some(json!({ "secret": secret }).to_string().as_bytes()),
    );
    assert_eq!(r.status, 200, "delete: {}", r.text());
    assert!(object(&env, id).is_none());
    std::thread::sleep(Duration::from_secs(1));
    assert!(object(&env, id).is_none());
    assert!(!server.logs().contains(secret));
}

/// A batch OpenCode syncs while a re-sync's upload URL is open is applied on top of what that URL
/// uploads, whenever the upload lands, as the README promises of re-sync. On S3 the PUT goes
/// straight to the bucket: a batch the server wrote into the object would be lost with it.
fn a_batch_synced_while_an_upload_is_open_outlives_the_upload(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&SHORT_UPLOAD_URLS);
    let (id, secret) = opencode_share(&server);
    let (id, secret) = (id.as_str(), secret.as_str());
    let session = json!({"type": "session", "data": {"id": SESSION, "title": "re-sync"}});
    sync(
        &server,
        id,
        secret,
        &[
            session,
            message("msg_1", 1),
            part("msg_1", "prt_1", "first"),
        ],
    );

    // The client's re-sync: its copy of the session has a part the server has not seen.
    let mut copy = get(&server.url(&format!("/api/share/{id}"))).json();
    copy["messages"][0]["parts"]
        .as_array_mut()
        .unwrap()
        .push(part("msg_1", "prt_c", "from the client")["data"].clone());
    let copy = serde_json::to_vec(&copy).unwrap();
    resync_url(&server, id, secret, copy.len());

    // OpenCode syncs a batch before the upload lands; the client asks for its URL again (the
    // first answer was lost, say), and the upload replaces the object.
    sync(
        &server,
        id,
        secret,
        &[
            message("msg_2", 2),
            part("msg_2", "prt_2", "synced meanwhile"),
        ],
    );
    let answer = resync_url(&server, id, secret, copy.len());
    let r = upload(answer["presignedUrl"].as_str().unwrap(), &copy);
    assert!(r.status < 300, "upload: {} {}", r.status, r.text());

    let mut want = vec!["first", "from the client", "synced meanwhile"];
    want.sort_unstable();
    let sorted = |doc: &Value| {
        let mut t = texts(doc);
        t.sort_unstable();
        t
    };
    let doc = get(&server.url(&format!("/api/share/{id}"))).json();
    assert_eq!(
        sorted(&doc),
        want,
        "the document has the upload and the batch"
    );
    let page = get(&server.url(&format!("/share/{id}"))).text();
    assert!(page.contains("synced meanwhile") && page.contains("from the client"));

    // Once no upload can land any more, the sweeper folds the batch into the object itself.
    wait_past_upload_window(answer["expiresAt"].as_i64().unwrap());
    assert!(
        eventually(Duration::from_secs(40), || object(&env, id)
            .is_some_and(|o| sorted(&o) == want)),
        "the object holds the upload and the batch: {:?}",
        object(&env, id).map(|o| sorted(&o))
    );
    assert_eq!(
        sorted(&get(&server.url(&format!("/api/share/{id}"))).json()),
        want
    );
}

/// Within an upload URL's window the journal holds one version of each item, however often
/// OpenCode resends it (a part being written is sent whole each time): it stays about the
/// document's size, and so does what every batch and every view reads.
fn the_journal_of_an_open_upload_keeps_one_version_of_each_item(stores: Stores) {
    let env = Env::new(stores);
    let server = env.server(&[]);
    let (id, secret) = opencode_share(&server);
    let (id, secret) = (id.as_str(), secret.as_str());
    let session = json!({"type": "session", "data": {"id": SESSION, "title": "streaming"}});
    sync(&server, id, secret, &[session, message("msg_1", 1)]);
    resync_url(&server, id, secret, 1000);
    // One part written in 40 steps of 4 KiB: 40 copies sent, 160 KiB at the end.
    let mut text = String::new();
    for step in 0..40 {
        text.push_str(&format!("{step:04} {}\n", "y".repeat(4091)));
        sync(&server, id, secret, &[part("msg_1", "prt_1", &text)]);
    }
    let doc = get(&server.url(&format!("/api/share/{id}"))).json();
    assert_eq!(texts(&doc), [text.clone()]);
    let connector = store::open(&match &env.pg {
        Some(pg) => DatabaseConfig::Postgres {
            url: pg.url.clone(),
        },
        None => DatabaseConfig::Sqlite {
            path: env.dir.path().join("server/bshare.db"),
        },
    })
    .unwrap();
    let mut store = connector.connect().unwrap();
    let weight = |store: &mut Box<dyn MetaStore>| -> (usize, i64) {
        let kept = batches(store.as_mut(), id);
        (kept.len(), kept.iter().map(|b| b.weight).sum())
    };
    // 3.2 MiB were sent. On disk the object is written too, so batches are journaled without a
    // merge up to a fold's due size (256 KiB), then kept as one again by the fold thread.
    let bound = match env.s3 {
        Some(_) => 2 * text.len() as i64,
        None => 2 * text.len() as i64 + journal::FOLD_MIN_BYTES,
    };
    assert!(
        eventually(Duration::from_secs(10), || weight(&mut store).1 < bound),
        "{:?} (batches, bytes) journaled for a part of {}",
        weight(&mut store),
        text.len()
    );
}

/// An upload that lands under waiting batches can leave no room for them: the upload stands,
/// the batches go (and the log says so), and the share stays readable and syncable, whether
/// OpenCode's next batch or the sweeper comes first. Before, every fold of the share failed for
/// good, and so did every later batch.
fn an_upload_that_leaves_no_room_for_waiting_batches_keeps_the_share_usable(stores: Stores) {
    let env = Env::new(stores);
    let limit = 200 * 1024;
    let limit_arg = limit.to_string();
    let mut args = SHORT_UPLOAD_URLS.to_vec();
    args.extend(["--max-document-bytes", &limit_arg]);
    let server = env.server(&args);
    let big = |c: &str| c.repeat(limit * 2 / 3);
    // A share whose upload lands after a batch that fitted the document as it was, not beside
    // the upload; the upload URL's expiry.
    let prepare = || {
        let (id, secret) = opencode_share(&server);
        let session = json!({"type": "session", "data": {"id": SESSION, "title": "full"}});
        sync(&server, &id, &secret, &[session, message("msg_1", 1)]);
        let mut copy = get(&server.url(&format!("/api/share/{id}"))).json();
        copy["messages"][0]["parts"]
            .as_array_mut()
            .unwrap()
            .push(part("msg_1", "prt_c", &big("c"))["data"].clone());
        let copy = serde_json::to_vec(&copy).unwrap();
        let answer = resync_url(&server, &id, &secret, copy.len());
        sync(&server, &id, &secret, &[part("msg_1", "prt_s", &big("s"))]);
        let r = upload(answer["presignedUrl"].as_str().unwrap(), &copy);
        assert!(r.status < 300, "upload: {} {}", r.status, r.text());
        (id, secret, answer["expiresAt"].as_i64().unwrap())
    };
    let document = |id: &str| {
        let r = get(&server.url(&format!("/api/share/{id}")));
        assert_eq!(r.status, 200, "{}", r.text());
        texts(&r.json())
    };
    // OpenCode goes on as the upload lands: its next batch is taken, and the batches without
    // room go.
    let (streaming, streaming_secret, _) = prepare();
    sync(
        &server,
        &streaming,
        &streaming_secret,
        &[part("msg_1", "prt_d", "after")],
    );
    assert!(server.logs().contains("journaled sync batch(es) dropped"));
    assert_eq!(document(&streaming), [big("c"), "after".to_owned()]);

    let (quiet, _, expires) = prepare();
    wait_past_upload_window(expires);
    // Until a fold, views show both (and are cached now that the window has passed).
    let seen = document(&quiet);
    if server.logs().matches("dropped").count() == 1 {
        assert_eq!(seen, [big("c"), big("s")]);
    }

    // A quiet share: the sweeper's fold drops them, and every view is told.
    assert!(
        eventually(Duration::from_secs(40), || server
            .logs()
            .matches("journaled sync batch(es) dropped")
            .count()
            == 2),
        "the sweeper's fold drops the batches: {}",
        server.logs()
    );
    assert_eq!(document(&quiet), [big("c")]);
}

mod embedded {
    #[test]
    fn journaled_batches_are_seen_at_once_and_folded_later() {
        super::journaled_batches_are_seen_at_once_and_folded_later(super::Stores::Embedded);
    }

    #[test]
    fn the_journal_of_an_open_upload_keeps_one_version_of_each_item() {
        super::the_journal_of_an_open_upload_keeps_one_version_of_each_item(
            super::Stores::Embedded,
        );
    }

    #[test]
    fn an_upload_that_leaves_no_room_for_waiting_batches_keeps_the_share_usable() {
        super::an_upload_that_leaves_no_room_for_waiting_batches_keeps_the_share_usable(
            super::Stores::Embedded,
        );
    }

    #[test]
    fn a_batch_synced_while_an_upload_is_open_outlives_the_upload() {
        super::a_batch_synced_while_an_upload_is_open_outlives_the_upload(super::Stores::Embedded);
    }
}

mod postgres_s3 {
    #[test]
    fn journaled_batches_are_seen_at_once_and_folded_later() {
        super::journaled_batches_are_seen_at_once_and_folded_later(super::Stores::PostgresS3);
    }

    #[test]
    fn the_journal_of_an_open_upload_keeps_one_version_of_each_item() {
        super::the_journal_of_an_open_upload_keeps_one_version_of_each_item(
            super::Stores::PostgresS3,
        );
    }

    #[test]
    fn an_upload_that_leaves_no_room_for_waiting_batches_keeps_the_share_usable() {
        super::an_upload_that_leaves_no_room_for_waiting_batches_keeps_the_share_usable(
            super::Stores::PostgresS3,
        );
    }

    #[test]
    fn a_batch_synced_while_an_upload_is_open_outlives_the_upload() {
        super::a_batch_synced_while_an_upload_is_open_outlives_the_upload(
            super::Stores::PostgresS3,
        );
    }
}
