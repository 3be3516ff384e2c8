//! The registry shared by the Rust side and the plugin: both writers at once lose nothing.

use std::process::Command;

fn bun() -> String {
    std::env::var("BSHARE_TEST_BUN").unwrap_or_else(|_| {
        panic!(
            "BSHARE_TEST_BUN is not set: run the tests with `scripts/test`, which installs Bun from \
             the npm registry"
        )
    })
}

#[test]
fn plugin_and_bshare_write_one_registry_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bshare/shares.json");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin/test/registry-writer.ts");
    let mut plugin = Command::new(bun())
        .arg(&script)
        .arg(&path)
        .args(["50", "plugin"])
        .spawn()
        .expect("start bun");
    for i in 0..50 {
        bshare::registry::update(&path, |r| {
            r.upsert(bshare::registry::Entry {
                share_id: format!("rust-{i:04}"),
                session_id: format!("ses_rust_{i}"),
                secret: "s".into(),
                url: format!("http://127.0.0.1:8080/share/rust-{i:04}"),
                server: "http://127.0.0.1:8080".into(),
                title: "t".into(),
                created_at: 1,
                updated_at: 1,
                extra: serde_json::Map::new(),
            });
        })
        .unwrap();
    }
    assert!(
        plugin.wait().unwrap().success(),
        "the plugin's writer failed"
    );
    let registry = bshare::registry::load(&path).unwrap();
    let mut ids: Vec<&str> = registry
        .shares
        .iter()
        .map(|e| e.share_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| i.starts_with("plugin-")).count(), 50);
    assert_eq!(ids.iter().filter(|i| i.starts_with("rust-")).count(), 50);
    assert!(!dir.path().join("bshare/shares.json.lock").exists());
}
