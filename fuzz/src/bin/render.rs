//! The ShareData renderer (page and Markdown transcript) on any bytes that parse as a document.
//!
//! Besides not panicking: nothing from the document becomes a `<script>` element.
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
    assert!(
        !page.to_ascii_lowercase().contains("<script"),
        "a <script> element in the page"
    );
    let _ = render_transcript_markdown(&doc);
});
