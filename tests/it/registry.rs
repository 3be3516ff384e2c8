//! The registry shared by the Rust side and the plugin: both writers at once lose nothing.

use std::process::Command;
use std::time::{Duration, Instant};

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
    let barrier = dir.path().join("barrier");
    std::fs::create_dir_all(&barrier).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin/test/registry-writer.ts");
    let mut plugin = Command::new(bun())
        .arg(&script)
        .arg(&path)
        .args(["50", "plugin"])
        .arg(&barrier)
        .spawn()
        .expect("start bun");
    // The start barrier: Bun is up and waiting, then both go at once.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !barrier.join("plugin.ready").exists() {
        assert!(
            Instant::now() < deadline,
            "the plugin's writer never got ready"
        );
        assert!(
            plugin.try_wait().unwrap().is_none(),
            "the plugin's writer exited early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::fs::write(barrier.join("go"), "").unwrap();
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
        // Like the plugin's writer: room for the other between two writes.
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        plugin.wait().unwrap().success(),
        "the plugin's writer failed"
    );
    let registry = bshare::registry::load(&path).unwrap();
    let order: Vec<&str> = registry
        .shares
        .iter()
        .map(|e| e.share_id.as_str())
        .collect();
    let mut ids = order.clone();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "{ids:?}");
    assert_eq!(ids.iter().filter(|i| i.starts_with("plugin-")).count(), 50);
    assert_eq!(ids.iter().filter(|i| i.starts_with("rust-")).count(), 50);
    // The writers overlapped: entries are in the order they were written, and neither writer's
    // 50 came all before or all after the other's.
    let switches = order
        .windows(2)
        .filter(|w| w[0].split('-').next() != w[1].split('-').next())
        .count();
    assert!(switches >= 2, "the writers did not overlap: {order:?}");
    assert!(!dir.path().join("bshare/shares.json.lock").exists());
}
