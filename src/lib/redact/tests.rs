use serde_json::json;

use super::*;

fn redact(s: &str) -> (String, Vec<&'static str>) {
    let mut ids = Vec::new();
    let out = rules()
        .redact_str(s, &mut |id, _| ids.push(id))
        .unwrap_or_else(|| s.to_owned());
    (out, ids)
}

/// The samples of `rules.json` (the plugin runs the same ones in `plugin/test/redact.test.ts`).
#[test]
fn rule_samples() {
    let file = rule_file();
    let mut failures = Vec::new();
    for rule in &file.rules {
        assert!(
            !rule.must_match.is_empty(),
            "rule {} has no samples",
            rule.id
        );
        for sample in &rule.must_match {
            let (text, expected) = match sample {
                Sample::Whole(s) => (s.clone(), format!("[REDACTED:{}]", rule.id)),
                Sample::Text { text, redacted } => (text.clone(), redacted.clone()),
            };
            let (got, _) = redact(&text);
            if got != expected {
                failures.push(format!(
                    "{}: {text:?}\n   gave {got:?}\n   want {expected:?}",
                    rule.id
                ));
            }
        }
        for text in rule.must_not.iter().chain(&file.global_must_not) {
            let (got, ids) = redact(text);
            if !ids.is_empty() {
                failures.push(format!(
                    "{}: {text:?} must not match, gave {got:?}",
                    rule.id
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_family_the_design_names_has_a_rule() {
    let ids = rules().ids();
    for id in [
        "openai-key",
        "anthropic-key",
        "openrouter-key",
        "huggingface-token",
        "aws-access-key-id",
        "aws-secret-access-key",
        "github-token",
        "github-fine-grained-pat",
        "gitlab-token",
        "slack-token",
        "slack-webhook",
        "stripe-key",
        "google-api-key",
        "npm-token",
        "pypi-token",
        "sendgrid-key",
        "twilio-key",
        "jwt",
        "private-key",
        "env-secret",
        "secret-assignment",
        "secret-param",
        "url-credentials",
    ] {
        assert!(ids.contains(&id), "no rule {id}");
    }
}

#[test]
fn patterns_stay_in_the_common_subset() {
    for rule in rule_file().rules {
        let p = &rule.pattern;
        for banned in [
            "(?=", "(?!", "(?<=", "(?<!", "(?i", "(?m", "(?s", "(?x", "\\\\b", "\\p{",
        ] {
            assert!(
                !p.contains(banned),
                "{}: {banned} is not read alike by both engines",
                rule.id
            );
        }
        assert!(
            !(1..10).any(|n| p.contains(&format!("\\{n}"))),
            "{}: backreference",
            rule.id
        );
        assert!(
            !p.contains("\\d") && !p.contains("\\w"),
            "{}: \\d and \\w differ with Unicode",
            rule.id
        );
    }
}

#[test]
fn secrets_at_the_edges_of_a_string_and_next_to_each_other() {
    let gh = "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er";
    let aws = "AKIAMR46PQM4I2HZ4UEP";
    assert_eq!(redact(gh).0, "[REDACTED:github-token]");
    assert_eq!(redact(&format!("x {gh}")).0, "x [REDACTED:github-token]");
    assert_eq!(redact(&format!("{gh}\n")).0, "[REDACTED:github-token]\n");
    assert_eq!(
        redact(&format!("{gh} {aws}")).0,
        "[REDACTED:github-token] [REDACTED:aws-access-key-id]"
    );
    assert_eq!(
        redact(&format!("{gh},{gh}")).0,
        "[REDACTED:github-token],[REDACTED:github-token]"
    );
    // Far into a large string: nothing is scanned in pieces, so nothing is split.
    let mut big = "lorem ipsum dolor ".repeat(60_000);
    big.push_str(aws);
    let (out, ids) = redact(&big);
    assert_eq!(ids, ["aws-access-key-id"]);
    assert!(out.ends_with("dolor [REDACTED:aws-access-key-id]"));
    // A key glued to a word is not a key of that shape (\b), but a key after punctuation is.
    assert_eq!(redact(&format!("x{aws}")).1.len(), 0);
    assert_eq!(
        redact(&format!("({aws})")).0,
        "([REDACTED:aws-access-key-id])"
    );
}

/// OpenCode sends a growing part again and again; each stage is redacted on its own, and the
/// stage that holds the whole key leaves none of it.
#[test]
fn a_key_growing_across_sync_stages() {
    let key = "sk-proj-CfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1vRt_1fjORS";
    for end in (0..=key.len()).step_by(5).chain([key.len()]) {
        let text = format!("my key is {}", &key[..end]);
        let (out, _) = redact(&text);
        if end == key.len() {
            assert_eq!(out, "my key is [REDACTED:openai-key]");
        }
    }
}

#[test]
fn escaped_json_is_read_before_it_is_scanned() {
    // `\u0073k-` is `sk-`: the document is scanned as parsed strings, never as raw bytes.
    let raw =
        r#"{"text":"key: \u0073k-proj-CfrL1spNxnyVmihA\u002d2O76UMFxFkM-R5Kjp1vRt_1fjORS end"}"#;
    let mut v: Value = serde_json::from_str(raw).unwrap();
    rules().redact_value(&mut v, &Options::default(), &mut |_, _| {});
    assert_eq!(v["text"], "key: [REDACTED:openai-key] end");

    // A tool's output that is itself JSON, holding a key, a password and a URL with one.
    let inner = json!({
        "token": "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er",
        "config": {"password": "hunter2hunter2", "db": "postgres://app:pw-9f8e7d@db/app"},
    })
    .to_string();
    // …and the same once more encoded: a JSON string inside a JSON string inside the output.
    let twice = serde_json::to_string(&inner).unwrap();
    let mut part = json!({"type": "tool", "state": {"output": inner, "metadata": {"raw": twice}}});
    let mut found = Vec::new();
    rules().redact_value(&mut part, &Options::default(), &mut |id, _| found.push(id));
    let out = serde_json::to_string(&part).unwrap();
    for secret in ["ghp_qrc5", "hunter2", "pw-9f8e7d"] {
        assert!(!out.contains(secret), "{secret} left in {out}");
    }
    assert_eq!(
        found.iter().filter(|&&id| id == "github-token").count(),
        2,
        "{found:?}"
    );
    assert_eq!(
        found
            .iter()
            .filter(|&&id| id == "secret-assignment")
            .count(),
        2,
        "{found:?}"
    );
    assert_eq!(
        found.iter().filter(|&&id| id == "url-credentials").count(),
        2,
        "{found:?}"
    );
    // Still JSON, and the inner JSON still parses.
    let back: Value = serde_json::from_str(&out).unwrap();
    let inner_back: Value =
        serde_json::from_str(back["state"]["output"].as_str().unwrap()).unwrap();
    assert_eq!(inner_back["token"], "[REDACTED:github-token]");
    let twice_back: String =
        serde_json::from_str(back["state"]["metadata"]["raw"].as_str().unwrap()).unwrap();
    let twice_inner: Value = serde_json::from_str(&twice_back).unwrap();
    assert_eq!(
        twice_inner["config"]["password"],
        "[REDACTED:secret-assignment]"
    );
}

#[test]
fn object_keys_are_scanned_too() {
    let mut v = json!({
        "env": {"https://bot:ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er@github.com": "origin", "HOME": "/home/u"}
    });
    rules().redact_value(&mut v, &Options::default(), &mut |_, _| {});
    let env = v["env"].as_object().unwrap();
    assert!(
        env.contains_key("https://bot:[REDACTED:github-token]@github.com"),
        "{env:?}"
    );
    assert_eq!(env["HOME"], "/home/u");
}

#[test]
fn a_document_records_counts_and_findings_never_values() {
    let doc = ShareData {
        share_id: "abcd1234".into(),
        session_id: "ses_1".into(),
        session: json!({"id": "ses_1", "title": "deploy with AKIAMR46PQM4I2HZ4UEP", "directory": "/home/ann/proj"}),
        messages: vec![
            crate::model::MessageWithParts {
                info: json!({"id": "m1", "role": "user"}),
                parts: vec![
                    json!({"type": "text", "text": "use ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er and 3b16494331a59c4ad1ebd086c40f36094fcc9a5c"}),
                ],
            },
            crate::model::MessageWithParts {
                info: json!({"id": "m2", "role": "assistant"}),
                parts: vec![
                    json!({"type": "text", "text": "and ghp_8bOfZqfM2oeq3hDavJA76rNicHTp8hkqdlm7 in /home/ann/proj/x.rs"}),
                ],
            },
        ],
        ..ShareData::default()
    };
    let opts = Options {
        home: Some("/home/ann".into()),
    };
    let (bytes, report) = prepare_upload(&doc, true, &opts).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        !text.contains("ghp_qrc5") && !text.contains("AKIAMR") && !text.contains("/home/ann"),
        "{text}"
    );
    assert!(
        text.contains("3b16494331a59c4ad1ebd086c40f36094fcc9a5c") && text.contains("~/proj/x.rs")
    );
    let back: ShareData = serde_json::from_slice(&bytes).unwrap();
    let counts = back.redaction.unwrap().counts;
    assert_eq!(counts.get("github-token"), Some(&2));
    assert_eq!(counts.get("aws-access-key-id"), Some(&1));
    assert_eq!(report.total(), 3);
    let messages: Vec<Option<usize>> = report.findings.iter().map(|f| f.message).collect();
    assert!(messages.contains(&None) && messages.contains(&Some(1)) && messages.contains(&Some(2)));
    assert!(
        report.findings.iter().all(|f| !f.excerpt.contains("qrc5")),
        "{report:?}"
    );
    assert_eq!(
        report
            .findings
            .iter()
            .find(|f| f.message == Some(1))
            .unwrap()
            .excerpt,
        "ghp_…[40 chars]"
    );

    // Opted out: the document goes as it is, with no summary.
    let (bytes, report) = prepare_upload(&doc, false, &opts).unwrap();
    assert!(String::from_utf8(bytes).unwrap().contains("ghp_qrc5"));
    assert_eq!(report.total(), 0);
}

#[test]
fn recount_counts_placeholders_of_real_rules_only() {
    let mut doc = ShareData::default();
    doc.messages.push(crate::model::MessageWithParts {
        info: json!({"id": "m1"}),
        parts: vec![json!({"text": "[REDACTED:jwt] [REDACTED:jwt] [REDACTED:nonsense] [REDACTED:npm-token"})],
    });
    recount(&mut doc);
    assert_eq!(
        doc.redaction.unwrap().counts,
        BTreeMap::from([("jwt".to_owned(), 2)])
    );
    let mut empty = ShareData::default();
    recount(&mut empty);
    assert!(empty.redaction.is_none());
}

#[test]
fn masks_show_little() {
    assert_eq!(mask("sk-proj-0123456789abcdefghij"), "sk-p…[28 chars]");
    assert_eq!(mask("hunter22"), "hu…[8 chars]");
    assert_eq!(mask("abc"), "…[3 chars]");
}

#[test]
fn home_is_replaced_only_at_a_path_boundary() {
    assert_eq!(
        replace_home("/home/ann/x and /home/ann", "/home/ann").unwrap(),
        "~/x and ~"
    );
    assert!(replace_home("/home/anna/x", "/home/ann").is_none());
}
