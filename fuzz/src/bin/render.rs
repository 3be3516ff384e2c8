//! The ShareData renderer (page and Markdown transcript) on any bytes that parse as a document.
//!
//! Besides not panicking: nothing from the document becomes a `<script>` element (the page's own
//! live-follow script, once in the head, is the only one).
#![no_main]

use bshare::model::ShareData;
use bshare::render::{PageContext, render_page, render_transcript_markdown};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<ShareData>(data) else {
        return;
    };
    let page = render_page(
        &doc,
        &PageContext {
            share_url: "https://share.example/share/fuzzshare",
        },
    );
    // The page's own script tag (live follow) is the one script: once, in the head.
    let own = bshare::render::live_script_tag();
    assert!(page.matches(&own).count() <= 1, "the page's script tag twice");
    if let Some(at) = page.find(&own) {
        assert!(
            page.find("</head>").is_some_and(|head_end| at < head_end),
            "the page's script tag outside the head"
        );
    }
    assert!(
        !page
            .replacen(&own, "", 1)
            .to_ascii_lowercase()
            .contains("<script"),
        "a <script> element in the page other than its own"
    );
    let _ = render_transcript_markdown(&doc);
});
