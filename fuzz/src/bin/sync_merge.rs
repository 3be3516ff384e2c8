//! The sync merge (`protocol::parse_sync_request` + `apply_items`) on any bytes as a sync body.
//!
//! Besides not panicking: a refused batch leaves the document as it was, and a batch applied
//! twice gives what it gave once (items replace by key).
#![no_main]

use bshare::model::ShareData;
use bshare::protocol::{apply_items, parse_sync_request, to_items};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_sync_request(data) else {
        return;
    };
    let mut doc = ShareData {
        share_id: "fuzzshare".into(),
        // No session yet: items of any session are taken, as for a share OpenCode just made.
        session_id: String::new(),
        ..ShareData::default()
    };
    let before = doc.clone();
    if apply_items(&mut doc, &request.data).is_err() {
        assert_eq!(doc, before, "a refused batch changed the document");
        return;
    }
    let once = doc.clone();
    apply_items(&mut doc, &request.data).expect("a batch accepted once is accepted again");
    assert_eq!(doc, once, "applying a batch twice differs from once");
    // The item list of the document is a valid batch too.
    let mut again = before;
    apply_items(&mut again, &to_items(&doc)).expect("the document's own items are a valid batch");
});
