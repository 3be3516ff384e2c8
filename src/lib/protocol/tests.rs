//! Tests of the sync merge against the traffic OpenCode 1.18.33 really sent (tests/data).

use serde_json::{Value, json};

use super::*;

fn data_file(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> ShareData {
    serde_json::from_slice(&data_file(&format!(
        "opencode-1.18.33-{name}.sharedata.json"
    )))
    .unwrap()
}

/// One share of the recording: the session it was made for and its sync batches, in order.
struct RecordedShare {
    share_id: String,
    session_id: String,
    batches: Vec<Vec<SyncItem>>,
}

/// The recording, share by share. The recording server answered the n-th `POST /api/share` with
/// the n-th share id, so creates and share ids pair up in order.
fn recording() -> Vec<RecordedShare> {
    let bytes = data_file("opencode-1.18.33-share-sync.jsonl");
    let mut sessions = Vec::new();
    let mut shares: Vec<RecordedShare> = Vec::new();
    for line in String::from_utf8(bytes).unwrap().lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        let method = request["method"].as_str().unwrap();
        let path = request["path"].as_str().unwrap();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            ("POST", ["api", "share"]) => {
                sessions.push(request["body"]["sessionID"].as_str().unwrap().to_owned());
            }
            ("POST", ["api", "share", id, "sync"]) => {
                let body: SyncRequest = serde_json::from_value(request["body"].clone()).unwrap();
                assert!(
                    body.secret.is_some(),
                    "OpenCode sends the secret in the body"
                );
                if let Some(share) = shares.iter_mut().find(|s| s.share_id == *id) {
                    share.batches.push(body.data);
                } else {
                    shares.push(RecordedShare {
                        share_id: (*id).to_owned(),
                        session_id: sessions[shares.len()].clone(),
                        batches: vec![body.data],
                    });
                }
            }
            _ => {}
        }
    }
    shares
}

fn fresh(share: &RecordedShare) -> ShareData {
    ShareData {
        share_id: share.share_id.clone(),
        session_id: share.session_id.clone(),
        ..ShareData::default()
    }
}

fn replay(share: &RecordedShare, batches: usize) -> ShareData {
    let mut doc = fresh(share);
    for batch in &share.batches[..batches] {
        apply_items(&mut doc, batch).unwrap();
    }
    doc
}

/// The session with the fields that genuinely change between the fixture's moment and the
/// recording's masked: `share` (set when the session is shared) and `time.updated`, plus `fields`.
fn session_without(session: &Value, fields: &[&str]) -> Value {
    let mut s = session.clone();
    let map = s.as_object_mut().unwrap();
    map.remove("share");
    for f in fields {
        map.remove(*f);
    }
    map["time"].as_object_mut().unwrap().remove("updated");
    s
}

fn message_ids(doc: &ShareData) -> Vec<&str> {
    doc.messages
        .iter()
        .map(|m| m.info["id"].as_str().unwrap())
        .collect()
}

fn part<'a>(doc: &'a ShareData, id: &str) -> &'a Value {
    doc.messages
        .iter()
        .flat_map(|m| &m.parts)
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("part {id} is in the document"))
}

#[test]
fn the_recording_holds_the_two_fixture_sessions() {
    let shares = recording();
    assert_eq!(shares.len(), 3);
    assert_eq!(shares[0].session_id, fixture("long").session_id);
    assert_eq!(shares[1].session_id, fixture("short").session_id);
}

#[test]
fn full_sync_of_the_long_session_gives_the_fixture() {
    let share = &recording()[0];
    let expected = fixture("long");
    let doc = replay(share, 1);

    assert_eq!(
        doc.session["share"]["url"],
        format!("http://127.0.0.1:18443/share/{}", share.share_id),
        "OpenCode sets share.url once the share exists"
    );
    assert_eq!(
        session_without(&doc.session, &[]),
        session_without(&expected.session, &[])
    );
    assert_eq!(doc.messages.len(), 23);
    assert_eq!(doc.messages, expected.messages);
    assert!(doc.pending_parts.is_empty());
    assert_eq!(doc.session_diff, Some(json!([])));
    assert_eq!(doc.models.as_ref().unwrap()[0]["id"], "m1");
}

#[test]
fn every_batch_of_the_long_session_extends_the_fixture() {
    let share = &recording()[0];
    let expected = fixture("long");
    let doc = replay(share, share.batches.len());

    // The recording went on after the fixture was taken: one more turn ("[long-3]"), which also
    // raised the session's cost and tokens.
    assert_eq!(
        session_without(&doc.session, &["cost", "tokens"]),
        session_without(&expected.session, &["cost", "tokens"])
    );
    assert!(doc.session["cost"].as_f64() > expected.session["cost"].as_f64());
    assert_eq!(doc.messages[..23], expected.messages[..]);
    let later = &doc.messages[23..];
    assert_eq!(later.len(), 3);
    for m in later {
        assert!(m.info["time"]["created"].as_i64().unwrap() > expected.updated_at);
    }
    assert!(
        later[0].parts[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("[long-3]")
    );
    let last = &later[2];
    assert!(
        last.info["time"]["completed"].is_i64(),
        "the last message's final state won"
    );
    let kinds: Vec<&str> = last
        .parts
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["step-start", "text", "step-finish"]);
}

#[test]
fn sync_of_the_short_session_gives_the_fixture() {
    let share = &recording()[1];
    let expected = fixture("short");
    let doc = replay(share, share.batches.len());
    assert_eq!(
        session_without(&doc.session, &[]),
        session_without(&expected.session, &[])
    );
    assert_eq!(doc.messages, expected.messages);
}

#[test]
fn parts_sent_in_stages_end_in_their_final_state() {
    let share = &recording()[2];
    // After the third batch the tool call had only been announced.
    let early = replay(share, 3);
    let bash = part(&early, "prt_20aee9360001NN8WRCRtlfJsmH");
    assert_eq!(bash["state"]["status"], "pending");
    assert_eq!(part(&early, "prt_20aee9265001IVgzgxhZQgGGNn")["text"], "");

    let doc = replay(share, share.batches.len());
    let bash = part(&doc, "prt_20aee9360001NN8WRCRtlfJsmH");
    assert_eq!(bash["state"]["status"], "completed");
    assert!(bash["state"]["output"].as_str().is_some());
    assert_eq!(
        part(&doc, "prt_20aee9265001IVgzgxhZQgGGNn")["text"],
        "Checking the history:"
    );
    assert!(
        part(&doc, "prt_20aee8d7d001JcyMyqdJQN2cN3")["text"]
            .as_str()
            .unwrap()
            .starts_with("The user wants the recent history")
    );
    assert_eq!(message_ids(&doc).len(), 3);
    for m in &doc.messages {
        let ids: Vec<&str> = m.parts.iter().map(|p| p["id"].as_str().unwrap()).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        assert_eq!(ids, sorted, "parts are in id order");
        // Every part appears once however often it was sent.
        sorted.dedup();
        assert_eq!(sorted.len(), m.parts.len());
    }
    let last = doc.messages.last().unwrap();
    assert!(
        last.parts[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Recent history")
    );
}

#[test]
fn messages_are_ordered_by_creation_time_then_id_whatever_the_arrival_order() {
    let expected = fixture("short");
    let mut items = to_items(&expected);
    items.reverse();
    let mut doc = ShareData {
        session_id: expected.session_id.clone(),
        ..ShareData::default()
    };
    apply_items(&mut doc, &items).unwrap();
    assert_eq!(doc.messages, expected.messages);

    // Same creation time: the id decides.
    let mut doc = ShareData::default();
    let batch = [
        SyncItem::new("message", json!({"id": "msg_b", "time": {"created": 5}})),
        SyncItem::new("message", json!({"id": "msg_c", "time": {"created": 1}})),
        SyncItem::new("message", json!({"id": "msg_a", "time": {"created": 5}})),
        SyncItem::new("message", json!({"id": "msg_0"})),
    ];
    apply_items(&mut doc, &batch).unwrap();
    assert_eq!(message_ids(&doc), ["msg_c", "msg_a", "msg_b", "msg_0"]);
}

#[test]
fn a_part_before_its_message_waits_for_it() {
    let mut doc = ShareData::default();
    let part_b = json!({"id": "prt_b", "messageID": "msg_1", "type": "text", "text": "second"});
    let part_a = json!({"id": "prt_a", "messageID": "msg_1", "type": "text", "text": ""});
    apply_items(
        &mut doc,
        &[
            SyncItem::new("part", part_b.clone()),
            SyncItem::new("part", part_a.clone()),
        ],
    )
    .unwrap();
    assert!(doc.messages.is_empty());
    assert_eq!(doc.pending_parts.len(), 2);

    // It is kept through a store round trip and still offered to `opencode import`.
    let stored: ShareData = serde_json::from_slice(&serde_json::to_vec(&doc).unwrap()).unwrap();
    assert_eq!(stored, doc);
    assert_eq!(to_items(&doc).len(), 2);

    // A newer stage of a waiting part replaces it.
    let part_a_done = json!({"id": "prt_a", "messageID": "msg_1", "type": "text", "text": "first"});
    apply_items(&mut doc, &[SyncItem::new("part", part_a_done.clone())]).unwrap();
    assert_eq!(doc.pending_parts.len(), 2);

    let info = json!({"id": "msg_1", "role": "user", "time": {"created": 1}});
    apply_items(&mut doc, &[SyncItem::new("message", info.clone())]).unwrap();
    assert!(doc.pending_parts.is_empty());
    assert_eq!(doc.messages.len(), 1);
    assert_eq!(doc.messages[0].info, info);
    assert_eq!(doc.messages[0].parts, [part_a_done, part_b]);
}

#[test]
fn a_part_waits_only_for_its_own_message() {
    let mut doc = ShareData::default();
    apply_items(
        &mut doc,
        &[
            SyncItem::new("part", json!({"id": "prt_1", "messageID": "msg_2"})),
            SyncItem::new("message", json!({"id": "msg_1", "time": {"created": 1}})),
        ],
    )
    .unwrap();
    assert!(doc.messages[0].parts.is_empty());
    assert_eq!(doc.pending_parts.len(), 1);
}

#[test]
fn a_batch_with_one_bad_item_changes_nothing() {
    let mut doc = replay(&recording()[1], 1);
    let before = doc.clone();
    let good = to_items(&fixture("short"));
    let cases: Vec<(SyncItem, &str)> = vec![
        (
            SyncItem::new("message", json!({"role": "user"})),
            "`id` is missing",
        ),
        (
            SyncItem::new("message", json!({"id": 42})),
            "`id` must be a non-empty string",
        ),
        (
            SyncItem::new("message", json!({"id": ""})),
            "`id` must be a non-empty string",
        ),
        (
            SyncItem::new("message", json!("msg_1")),
            "`data` must be an object",
        ),
        (
            SyncItem::new("part", json!({"id": "prt_1"})),
            "`messageID` is missing",
        ),
        (
            SyncItem::new("part", json!({"id": "prt_1", "messageID": ["msg_1"]})),
            "`messageID` must be a non-empty string",
        ),
        (
            SyncItem::new("part", Value::Null),
            "`data` must be an object",
        ),
        (SyncItem::new("session", json!({})), "`id` is missing"),
        (
            SyncItem::new("session", json!({"id": "ses_other"})),
            "belongs to session ses_other",
        ),
        (
            SyncItem::new("message", json!({"id": "msg_1", "sessionID": "ses_other"})),
            "belongs to session ses_other",
        ),
        (
            SyncItem::new("session_diff", json!({})),
            "`data` must be a list",
        ),
        (SyncItem::new("model", json!("m1")), "`data` must be a list"),
    ];
    for (bad, reason) in cases {
        let mut batch = good[..10].to_vec();
        batch.push(bad.clone());
        batch.extend_from_slice(&good[10..]);
        let err = apply_items(&mut doc, &batch).unwrap_err();
        assert_eq!(err.status(), 400, "{bad:?}");
        let message = err.to_string();
        assert!(
            message.contains("sync item 10") && message.contains(reason),
            "{bad:?}: {message}"
        );
        assert_eq!(doc, before, "{bad:?} left the document as it was");
    }
}

#[test]
fn unknown_item_types_are_ignored() {
    let share = &recording()[1];
    let mut batch = share.batches[0].clone();
    batch.insert(
        3,
        SyncItem::new("future_thing", json!({"whatever": [1, 2]})),
    );
    batch.push(SyncItem::new("todo", Value::Null));
    let mut doc = fresh(share);
    apply_items(&mut doc, &batch).unwrap();
    assert_eq!(doc, replay(share, share.batches.len()));
    assert!(to_items(&doc).iter().all(|i| i.kind != "future_thing"));
}

#[test]
fn to_items_is_what_opencode_import_reads() {
    let doc = fixture("long");
    let items = to_items(&doc);
    assert_eq!(items[0], SyncItem::new("session", doc.session.clone()));
    let messages: Vec<&Value> = items
        .iter()
        .filter(|i| i.kind == "message")
        .map(|i| &i.data)
        .collect();
    let infos: Vec<&Value> = doc.messages.iter().map(|m| &m.info).collect();
    assert_eq!(messages, infos, "messages in the page's order");
    let parts = items.iter().filter(|i| i.kind == "part").count();
    assert_eq!(parts, 85);
    for item in items.iter().filter(|i| i.kind == "part") {
        assert!(
            doc.messages
                .iter()
                .any(|m| m.info["id"] == item.data["messageID"])
        );
    }
    // No session_diff or model in a document that never heard of them.
    assert_eq!(items.len(), 1 + 23 + 85);

    let synced = replay(&recording()[1], 1);
    let items = to_items(&synced);
    let kinds: Vec<&str> = items.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(&kinds[kinds.len() - 2..], ["session_diff", "model"]);
    let json: Value = serde_json::from_slice(&items_json(&synced).unwrap()).unwrap();
    assert_eq!(json, serde_json::to_value(&items).unwrap());
    assert_eq!(json[0]["type"], "session");
}

#[test]
fn to_items_then_apply_items_gives_the_same_document() {
    let shares = recording();
    let mut docs = vec![fixture("short"), fixture("long")];
    docs.extend(shares.iter().map(|s| replay(s, s.batches.len())));
    let mut waiting = ShareData::default();
    apply_items(
        &mut waiting,
        &[
            SyncItem::new("message", json!({"id": "msg_1", "time": {"created": 1}})),
            SyncItem::new("part", json!({"id": "prt_9", "messageID": "msg_x"})),
        ],
    )
    .unwrap();
    docs.push(waiting);
    for doc in docs {
        let mut copy = ShareData {
            share_id: doc.share_id.clone(),
            session_id: doc.session_id.clone(),
            created_at: doc.created_at,
            updated_at: doc.updated_at,
            ..ShareData::default()
        };
        apply_items(&mut copy, &to_items(&doc)).unwrap();
        assert_eq!(copy, doc);
        // Applying the same items again changes nothing.
        apply_items(&mut copy, &to_items(&doc)).unwrap();
        assert_eq!(copy, doc);
    }
}

#[test]
fn the_extra_fields_stay_out_of_documents_that_lack_them() {
    let doc = fixture("short");
    let json = serde_json::to_value(&doc).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "createdAt",
            "messages",
            "session",
            "sessionId",
            "shareId",
            "updatedAt"
        ]
    );
    let synced = serde_json::to_value(replay(&recording()[1], 1)).unwrap();
    assert_eq!(synced["sessionDiff"], json!([]));
    assert_eq!(synced["models"][0]["providerID"], "fake");
}
