//! The OpenCode protocol endpoints through the route table, on SQLite and the local object store
//! in a temporary directory, fed with the traffic OpenCode 1.18.33 really sent.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::ServerConfig;
use crate::http::context::{App, Worker};
use crate::http::{Request, Response, routes};
use crate::model::ShareData;
use crate::protocol::{self, SyncItem};

fn config(dir: &std::path::Path) -> ServerConfig {
    crate::http::test_config(dir)
}

struct Server {
    _dir: tempfile::TempDir,
    app: Arc<App>,
    w: Worker,
}

fn server_with(adjust: impl FnOnce(&mut ServerConfig)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    adjust(&mut config);
    let app = App::open(config).unwrap();
    let w = app.worker();
    Server { _dir: dir, app, w }
}

fn server() -> Server {
    server_with(|_| {})
}

fn call(w: &mut Worker, method: &str, path: &str, body: &Value) -> Response {
    let mut req = Request::new(method, path);
    if !body.is_null() {
        req.body = serde_json::to_vec(body).unwrap();
        req.headers
            .push(("Content-Type".into(), "application/json".into()));
    }
    routes::route(w, &req)
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(response.body.as_bytes()).unwrap()
}

fn text_of(response: &Response) -> String {
    String::from_utf8_lossy(response.body.as_bytes()).into_owned()
}

/// The recording's sync batches for the share made for `session_id`, in order.
fn recorded_batches(session_id: &str) -> Vec<Vec<SyncItem>> {
    let path = format!(
        "{}/tests/data/opencode-1.18.33-share-sync.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let requests: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let share_path = requests
        .iter()
        .filter(|r| r["path"].as_str().unwrap().ends_with("/sync"))
        .find(|r| {
            r["body"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["type"] == "session" && i["data"]["id"] == session_id)
        })
        .map(|r| r["path"].clone())
        .unwrap();
    requests
        .iter()
        .filter(|r| r["path"] == share_path)
        .map(|r| serde_json::from_value(r["body"]["data"].clone()).unwrap())
        .collect()
}

const LONG: &str = "ses_df514140fffe4u9ZGLczLpllLo";
const SHORT: &str = "ses_df514253affeB36ro8YNVEUXH4";

/// `POST /api/share` as OpenCode sends it; the answer's `id` and `secret`.
fn create(w: &mut Worker, session_id: &str) -> (String, String) {
    let response = call(w, "POST", "/api/share", &json!({ "sessionID": session_id }));
    assert_eq!(response.status, 200, "{}", text_of(&response));
    let answer = json_of(&response);
    let id = answer["id"].as_str().unwrap().to_owned();
    assert_eq!(answer["url"], format!("http://share.test/share/{id}"));
    (id, answer["secret"].as_str().unwrap().to_owned())
}

fn sync(w: &mut Worker, id: &str, secret: &str, items: &[SyncItem]) -> Response {
    call(
        w,
        "POST",
        &format!("/api/share/{id}/sync"),
        &json!({ "secret": secret, "data": items }),
    )
}

fn stored(w: &mut Worker, id: &str) -> Option<ShareData> {
    let response = call(w, "GET", &format!("/api/share/{id}"), &Value::Null);
    match response.status {
        200 => Some(serde_json::from_slice(response.body.as_bytes()).unwrap()),
        404 => None,
        other => panic!("GET /api/share/{id}: {other} {}", text_of(&response)),
    }
}

#[test]
fn opencode_shares_a_session_and_it_reads_back() {
    let mut s = server();
    let (id, secret) = create(&mut s.w, LONG);
    assert!(
        stored(&mut s.w, &id).is_none(),
        "no document before the first sync"
    );

    let batches = recorded_batches(LONG);
    let mut expected = ShareData {
        share_id: id.clone(),
        session_id: LONG.into(),
        ..ShareData::default()
    };
    for batch in &batches {
        let response = sync(&mut s.w, &id, &secret, batch);
        assert_eq!(response.status, 200, "{}", text_of(&response));
        assert_eq!(json_of(&response), json!({}));
        protocol::apply_items(&mut expected, batch).unwrap();
    }
    let doc = stored(&mut s.w, &id).unwrap();
    assert_eq!(doc.session, expected.session);
    assert_eq!(doc.messages, expected.messages);
    assert_eq!(doc.messages.len(), 26);
    assert_eq!(doc.session_id, LONG);
    assert!(doc.updated_at >= doc.created_at && doc.created_at > 0);

    let data = call(
        &mut s.w,
        "GET",
        &format!("/api/share/{id}/data"),
        &Value::Null,
    );
    assert_eq!(data.status, 200);
    assert_eq!(data.header("Content-Type"), Some("application/json"));
    let items: Vec<SyncItem> = serde_json::from_slice(data.body.as_bytes()).unwrap();
    assert_eq!(items, protocol::to_items(&doc));
    assert_eq!(items[0].kind, "session");

    let page = call(&mut s.w, "GET", &format!("/share/{id}"), &Value::Null);
    assert_eq!(page.status, 200);
    assert!(text_of(&page).contains("Add multiply, tests and CLI"));
}

#[test]
fn the_page_shows_what_each_sync_brings() {
    let mut s = server();
    let (id, secret) = create(&mut s.w, LONG);
    let batches = recorded_batches(LONG);
    assert_eq!(sync(&mut s.w, &id, &secret, &batches[0]).status, 200);
    let page = text_of(&call(
        &mut s.w,
        "GET",
        &format!("/share/{id}"),
        &Value::Null,
    ));
    assert!(!page.contains("[long-3]"));
    // Served from the cache now; the next sync must replace it.
    assert_eq!(s.app.cache.len(), 1);
    assert_eq!(sync(&mut s.w, &id, &secret, &batches[1]).status, 200);
    let page = text_of(&call(
        &mut s.w,
        "GET",
        &format!("/share/{id}"),
        &Value::Null,
    ));
    assert!(page.contains("[long-3]"), "the new message is on the page");
}

#[test]
fn secrets_and_share_states_are_checked_and_refusals_change_nothing() {
    let mut s = server();
    let (id, secret) = create(&mut s.w, SHORT);
    let batch = &recorded_batches(SHORT)[0];
    assert_eq!(sync(&mut s.w, &id, &secret, &batch[..10]).status, 200);
    let before = stored(&mut s.w, &id).unwrap();

    let path = format!("/api/share/{id}/sync");
    let missing = call(&mut s.w, "POST", &path, &json!({ "data": batch }));
    assert_eq!(missing.status, 401);
    assert_eq!(json_of(&missing)["code"], "SECRET_REQUIRED");
    let wrong = sync(&mut s.w, &id, "not-the-secret", batch);
    assert_eq!(wrong.status, 403);
    assert_eq!(json_of(&wrong)["code"], "SECRET_MISMATCH");
    assert_eq!(sync(&mut s.w, "unknown-share", &secret, batch).status, 404);
    assert_eq!(sync(&mut s.w, "a.b", &secret, batch).status, 404);

    let mut bad = batch.clone();
    bad.insert(12, SyncItem::new("part", json!({ "id": "prt_x" })));
    let invalid = sync(&mut s.w, &id, &secret, &bad);
    assert_eq!(invalid.status, 400);
    let message = json_of(&invalid)["error"].as_str().unwrap().to_owned();
    assert!(
        message.contains("sync item 12") && message.contains("messageID"),
        "{message}"
    );

    let not_json = routes::route(&mut s.w, &{
        let mut r = Request::new("POST", &path);
        r.body = b"{\"secret\": 1".to_vec();
        r
    });
    assert_eq!(not_json.status, 400);
    assert_eq!(
        stored(&mut s.w, &id).unwrap(),
        before,
        "refused batches changed nothing"
    );

    // OpenCode's unshare: the secret in the JSON body.
    let wrong_delete = call(
        &mut s.w,
        "DELETE",
        &format!("/api/share/{id}"),
        &json!({"secret": "x"}),
    );
    assert_eq!(wrong_delete.status, 403);
    let delete = call(
        &mut s.w,
        "DELETE",
        &format!("/api/share/{id}"),
        &json!({ "secret": secret }),
    );
    assert_eq!(delete.status, 200, "{}", text_of(&delete));
    // Taken down twice, as when it was unshared elsewhere before OpenCode's own unshare: OpenCode
    // (secret in the body) is told it is gone; bshare's clients (header) and anyone without the
    // secret still get 410.
    let again = call(
        &mut s.w,
        "DELETE",
        &format!("/api/share/{id}"),
        &json!({ "secret": secret }),
    );
    assert_eq!((again.status, json_of(&again)), (200, json!({"ok": true})));
    let mut by_header = Request::new("DELETE", &format!("/api/share/{id}"));
    by_header
        .headers
        .push(("X-Share-Secret".into(), secret.clone()));
    assert_eq!(routes::route(&mut s.w, &by_header).status, 410);
    for body in [json!({"secret": "x"}), json!({})] {
        let refused = call(&mut s.w, "DELETE", &format!("/api/share/{id}"), &body);
        assert_eq!(refused.status, 410, "{body}");
        assert_eq!(json_of(&refused)["code"], "SHARE_DELETED");
    }
    let gone = sync(&mut s.w, &id, &secret, batch);
    assert_eq!(gone.status, 410);
    assert_eq!(
        call(
            &mut s.w,
            "GET",
            &format!("/api/share/{id}/data"),
            &Value::Null
        )
        .status,
        410
    );
    assert_eq!(
        call(&mut s.w, "GET", &format!("/share/{id}"), &Value::Null).status,
        410
    );
}

#[test]
fn data_of_a_share_without_content_is_not_found() {
    let mut s = server();
    let (id, _) = create(&mut s.w, SHORT);
    let data = call(
        &mut s.w,
        "GET",
        &format!("/api/share/{id}/data"),
        &Value::Null,
    );
    assert_eq!(data.status, 404);
    assert_eq!(json_of(&data)["code"], "NOT_UPLOADED");
    assert_eq!(
        call(&mut s.w, "GET", "/api/share/nosuchshare/data", &Value::Null).status,
        404
    );
}

#[test]
fn a_sync_that_would_outgrow_the_size_limit_changes_nothing() {
    let mut s = server_with(|c| c.max_document_bytes = 30_000);
    let (id, secret) = create(&mut s.w, LONG);
    let batch = &recorded_batches(LONG)[0];
    let small = &batch[..20];
    assert_eq!(sync(&mut s.w, &id, &secret, small).status, 200);
    let before = stored(&mut s.w, &id).unwrap();
    let too_big = sync(&mut s.w, &id, &secret, batch);
    assert_eq!(too_big.status, 413, "{}", text_of(&too_big));
    assert_eq!(json_of(&too_big)["code"], "TOO_LARGE");
    assert_eq!(stored(&mut s.w, &id).unwrap(), before);
}

#[test]
fn syncs_are_not_held_to_the_request_limit_but_failed_ones_are() {
    let mut s = server_with(|c| c.request_limit_per_minute = 3);
    let (id, secret) = create(&mut s.w, SHORT);
    let batch = &recorded_batches(SHORT)[0];
    // More batches in a minute than the limit allows other calls: OpenCode sends one a second.
    for chunk in batch.chunks(3) {
        assert_eq!(sync(&mut s.w, &id, &secret, chunk).status, 200);
    }
    assert!(batch.len() / 3 > 3);
    for _ in 0..3 {
        assert_eq!(sync(&mut s.w, &id, "guess", &batch[..1]).status, 403);
    }
    let limited = sync(&mut s.w, &id, "guess", &batch[..1]);
    assert_eq!(limited.status, 429);
    assert!(limited.header("Retry-After").is_some());
    // The owner still gets through.
    assert_eq!(sync(&mut s.w, &id, &secret, &batch[..1]).status, 200);
}

#[test]
fn two_servers_syncing_one_share_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let first = App::open(config(dir.path())).unwrap();
    let second = App::open(config(dir.path())).unwrap();
    let (id, secret) = create(&mut first.worker(), SHORT);

    let batch = recorded_batches(SHORT)[0].clone();
    let session = batch[0].clone();
    let messages: Vec<SyncItem> = batch
        .iter()
        .filter(|i| i.kind == "message")
        .cloned()
        .collect();
    let parts: Vec<SyncItem> = batch.iter().filter(|i| i.kind == "part").cloned().collect();
    assert_eq!(
        sync(&mut first.worker(), &id, &secret, &[session]).status,
        200
    );
    assert_eq!(
        sync(&mut first.worker(), &id, &secret, &messages).status,
        200
    );

    // Each server gets every other part, one part per batch, at the same time.
    let threads: Vec<_> = [first.clone(), second.clone()]
        .into_iter()
        .enumerate()
        .map(|(n, app)| {
            let mine: Vec<SyncItem> = parts.iter().skip(n).step_by(2).cloned().collect();
            let (id, secret) = (id.clone(), secret.clone());
            std::thread::spawn(move || {
                let mut w = app.worker();
                for part in mine {
                    let response = sync(&mut w, &id, &secret, &[part]);
                    assert_eq!(response.status, 200, "{}", text_of(&response));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut expected = ShareData {
        share_id: id.clone(),
        session_id: SHORT.into(),
        ..ShareData::default()
    };
    protocol::apply_items(&mut expected, &batch).unwrap();
    let doc = stored(&mut second.worker(), &id).unwrap();
    assert_eq!(
        doc.messages, expected.messages,
        "every part of both servers is kept"
    );
}

/// A text part holding `text`, as OpenCode syncs it.
fn text_part(session_id: &str, text: &str) -> Vec<SyncItem> {
    vec![
        SyncItem::new(
            "message",
            json!({"id": "msg_r1", "sessionID": session_id, "role": "user", "time": {"created": 1}}),
        ),
        SyncItem::new(
            "part",
            json!({"id": "prt_r1", "messageID": "msg_r1", "sessionID": session_id, "type": "text", "text": text}),
        ),
    ]
}

#[test]
fn sync_batches_are_redacted_before_they_are_merged_and_counted_once() {
    let key = "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er";
    let mut s = server();
    let (id, secret) = create(&mut s.w, LONG);
    // OpenCode sends the part again as it grows: the count is of the document, not of batches.
    for text in [
        format!("token {key}"),
        format!("token {key} and more"),
        format!("token {key} and more, commit 3b16494331a59c4ad1ebd086c40f36094fcc9a5c"),
    ] {
        assert_eq!(
            sync(&mut s.w, &id, &secret, &text_part(LONG, &text)).status,
            200
        );
    }
    let doc = stored(&mut s.w, &id).unwrap();
    let raw = serde_json::to_string(&doc).unwrap();
    assert!(!raw.contains("ghp_qrc5"), "{raw}");
    assert_eq!(
        doc.messages[0].parts[0]["text"],
        "token [REDACTED:github-token] and more, commit 3b16494331a59c4ad1ebd086c40f36094fcc9a5c"
    );
    assert_eq!(
        doc.redaction.unwrap().counts,
        [("github-token".to_owned(), 1)].into()
    );
    let page = text_of(&call(
        &mut s.w,
        "GET",
        &format!("/share/{id}"),
        &Value::Null,
    ));
    assert!(
        page.contains("1 secret was removed before this was shared"),
        "{page}"
    );

    // The server's explicit opt-out stores the batch as it came.
    let mut s = server_with(|c| c.redact_sync = false);
    let (id, secret) = create(&mut s.w, LONG);
    assert_eq!(
        sync(&mut s.w, &id, &secret, &text_part(LONG, key)).status,
        200
    );
    let doc = stored(&mut s.w, &id).unwrap();
    assert_eq!(doc.messages[0].parts[0]["text"], key);
    assert!(doc.redaction.is_none());
}
