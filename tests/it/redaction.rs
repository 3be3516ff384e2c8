//! What every end-to-end redaction test checks (CLI, plugin, OpenCode's own protocol): a session
//! holding one secret of each family (`tests/data/redaction-secrets.json`) leaves none of them in
//! the stored object or in any page variant; the page shows the placeholders and the count, and
//! the look-alikes (SHAs, UUIDs, digests) are still there.

use serde_json::Value;

use crate::support::{self, Server};

pub struct Secrets {
    pub entries: Vec<(String, String, String)>,
    pub lookalikes: Vec<String>,
}

pub fn secrets() -> Secrets {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/redaction-secrets.json"
    );
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let s = |v: &Value| v.as_str().unwrap().to_owned();
    Secrets {
        entries: v["secrets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (s(&e["rule"]), s(&e["secret"]), s(&e["line"])))
            .collect(),
        lookalikes: v["lookalikes"].as_array().unwrap().iter().map(s).collect(),
    }
}

/// Every line of the data file and the look-alikes, as one message would hold them.
pub fn session_text() -> String {
    let s = secrets();
    let mut text = String::from("Here is everything I have:\n\n");
    for (_, _, line) in &s.entries {
        text.push_str(line);
        text.push_str("\n\n");
    }
    text.push_str("Not secrets: ");
    text.push_str(&s.lookalikes.join(", "));
    text
}

/// The stored object and every page variant of share `id` hold no secret, every rule's
/// placeholder and every look-alike; the page shows the count. `min_count` is the least number of
/// secrets the page must say were removed.
pub fn assert_redacted_everywhere(server: &Server, id: &str, stored: &[u8], min_count: u64) {
    let s = secrets();
    let stored = String::from_utf8_lossy(stored).into_owned();
    let mut variants = vec![("stored object".to_owned(), stored)];
    for path in [
        format!("/share/{id}"),
        format!("/share/{id}.md"),
        format!("/share/{id}.json"),
        format!("/api/share/{id}"),
        format!("/api/share/{id}/data"),
    ] {
        let r = support::get(&server.url(&path));
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        variants.push((path, r.text()));
    }
    for (what, text) in &variants {
        for (rule, secret, _) in &s.entries {
            assert!(
                !text.contains(secret.as_str()),
                "{what} holds the {rule} secret {secret}"
            );
            assert!(
                text.contains(&format!("[REDACTED:{rule}]")),
                "{what} lacks the placeholder of {rule}"
            );
        }
        for look in &s.lookalikes {
            assert!(
                text.contains(look.as_str()),
                "{what} lost the look-alike {look}"
            );
        }
    }
    let doc: Value = serde_json::from_str(&variants[0].1).unwrap();
    let total: u64 = doc["redaction"]["counts"]
        .as_object()
        .unwrap_or_else(|| panic!("no redaction counts in {}", &variants[0].1[..200]))
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(
        total >= min_count,
        "counted {total}, want at least {min_count}"
    );
    let page = &variants[1].1;
    assert!(
        page.contains(&format!(
            "{total} secrets were removed before this was shared"
        )),
        "the page does not say {total} secrets were removed"
    );
}
