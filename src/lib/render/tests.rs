//! Tests of the whole page: fixture snapshots, hostile documents, generated documents, and the
//! committed syntax colours.

use serde_json::{Value, json};

use super::*;
use crate::model::ShareData;

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/data/opencode-1.18.33-{name}.sharedata.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap()
}

fn fixture(name: &str) -> ShareData {
    serde_json::from_slice(&fixture_bytes(name)).unwrap()
}

const CTX: PageContext = PageContext {
    share_url: "https://share.example.com/share/FixLong1",
};

/// Snapshots name the stylesheet without its content hash, so a CSS change does not touch them.
macro_rules! assert_page_snapshot {
    ($name:expr, $html:expr) => {
        insta::with_settings!({filters => vec![(r"/assets/style-[0-9a-f]{10}\.css", "/assets/style-HASH.css"), (r"/assets/live-[0-9a-f]{10}\.js", "/assets/live-HASH.js")]}, {
            insta::assert_snapshot!($name, $html);
        })
    };
}

/// Tags the renderer may emit. Anything else in the output came from a document.
const ALLOWED_TAGS: &[&str] = &[
    "!doctype",
    "html",
    "head",
    "meta",
    "title",
    "link",
    "body",
    "header",
    "main",
    "footer",
    "nav",
    "article",
    "details",
    "summary",
    "ol",
    "ul",
    "li",
    "a",
    "p",
    "div",
    "span",
    "pre",
    "code",
    "h1",
    "h3",
    "h4",
    "h5",
    "h6",
    "dl",
    "dt",
    "dd",
    "time",
    "b",
    "strong",
    "em",
    "del",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "input",
    "sup",
    "blockquote",
    "hr",
    "br",
    "img",
];

/// `html` without the page's own script tag, which must appear at most once, in the head, and
/// never inside the body (where a document's content goes).
fn without_own_script(html: &str) -> String {
    let tag = crate::render::live_script_tag();
    assert!(html.matches(&tag).count() <= 1, "the script tag twice");
    if let Some(at) = html.find(&tag) {
        let head_end = html.find("</head>").expect("a page has a head");
        assert!(at < head_end, "the script tag outside the head");
    }
    let stripped = html.replacen(&tag, "", 1);
    assert!(
        !stripped.to_ascii_lowercase().contains("<script"),
        "a script tag other than the page's own"
    );
    stripped
}

/// Fails when `html` holds anything a browser could execute (the page's own script aside) or that loads from elsewhere: an
/// unknown tag (`<script>`, `<svg>`, `<iframe>`...), an event handler attribute, a `style`
/// attribute, anything loaded but our stylesheet and inline raster images (an `<img>` of another
/// host fails), or a link to anything but `http(s)`, `mailto` or a fragment.
fn assert_inert(html: &str) {
    let html = &without_own_script(html);
    let bytes = html.as_bytes();
    let mut i = 0;
    while let Some(off) = html[i..].find('<') {
        let start = i + off;
        let mut j = start + 1;
        if bytes.get(j) == Some(&b'/') {
            j += 1;
        }
        let name_end = html[j..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(html.len(), |e| j + e);
        let name = html[j..name_end].to_ascii_lowercase();
        assert!(
            ALLOWED_TAGS.contains(&name.as_str()),
            "unexpected tag <{name}> at {start}: {}",
            &html[start..(start + 80).min(html.len())]
        );
        let tag_text = &html[start..html[start..].find('>').map_or(html.len(), |e| start + e)];
        // Attributes: name="value" pairs up to the closing '>'.
        let mut k = name_end;
        loop {
            while k < bytes.len() && (bytes[k].is_ascii_whitespace() || bytes[k] == b'/') {
                k += 1;
            }
            assert!(k < bytes.len(), "unterminated tag at {start}");
            if bytes[k] == b'>' {
                break;
            }
            let an_end = html[k..]
                .find(|c: char| c == '=' || c == '>' || c.is_ascii_whitespace())
                .map_or(html.len(), |e| k + e);
            let attr = html[k..an_end].to_ascii_lowercase();
            assert!(
                !attr.starts_with("on"),
                "event handler attribute {attr} in <{name}>"
            );
            assert!(
                attr != "style" && attr != "srcdoc" && attr != "formaction",
                "attribute {attr} in <{name}>"
            );
            k = an_end;
            if bytes.get(k) == Some(&b'=') {
                k += 1;
                assert_eq!(
                    bytes.get(k),
                    Some(&b'"'),
                    "unquoted attribute {attr} in <{name}>"
                );
                let v_end = html[k + 1..]
                    .find('"')
                    .map(|e| k + 1 + e)
                    .expect("closing quote");
                let value = &html[k + 1..v_end];
                assert!(!value.contains('<'), "raw < in attribute {attr}");
                let v = value.trim().to_ascii_lowercase();
                // What the browser loads by itself: only our stylesheet and inline raster images.
                // Other hosts are reached only when the reader follows a link.
                let ok = match (name.as_str(), attr.as_str()) {
                    // An alternate version is named, not loaded.
                    ("link", "href") if tag_text.contains(" rel=\"alternate\"") => {
                        v.starts_with("https://") || v.starts_with("http://")
                    }
                    ("link", "href") => v.starts_with("/assets/"),
                    ("img", "src") => v.starts_with("data:image/"),
                    ("a", "href") => {
                        v.starts_with("http://")
                            || v.starts_with("https://")
                            || v.starts_with("mailto:")
                            || v.starts_with('#')
                    }
                    (_, "href" | "src" | "srcset" | "poster" | "background" | "action") => false,
                    _ => true,
                };
                assert!(ok, "unsafe {attr}={value:?} in <{name}>");
                k = v_end + 1;
            }
        }
        i = k + 1;
    }
}

#[test]
fn short_fixture_page() {
    let html = render_page(&fixture("short"), &CTX);
    assert_inert(&html);
    assert_page_snapshot!("short_page", html);
}

#[test]
fn long_fixture_page() {
    let html = render_page(&fixture("long"), &CTX);
    assert_inert(&html);
    assert_page_snapshot!("long_page", html);
}

#[test]
fn transcripts() {
    insta::assert_snapshot!(
        "short_transcript",
        render_transcript_markdown(&fixture("short"))
    );
    insta::assert_snapshot!(
        "long_transcript",
        render_transcript_markdown(&fixture("long"))
    );
}

#[test]
fn status_page() {
    let html = render_status_page(410, "Share removed", "The owner removed this share.");
    assert_inert(&html);
    assert_page_snapshot!("status_410", html);
}

#[test]
fn long_fixture_shows_what_a_reader_needs() {
    let html = render_page(&fixture("long"), &CTX);
    // Header facts.
    for needle in [
        "<h1>Add multiply, tests and CLI</h1>",
        "fake/m1",
        "1.18.33",
        "$0.1292",
        "<b>114,160</b> input",
        "<b>94,943</b> cache read",
        "5 files changed",
        "<meta name=\"robots\" content=\"noindex\">",
        "og:url\" content=\"https://share.example.com/share/FixLong1\"",
        stylesheet_path(),
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    // Every message has an anchor; both prompts are in the jump list.
    for n in 1..=23 {
        assert!(html.contains(&format!("id=\"m{n}\"")), "anchor m{n}");
    }
    assert!(html.contains("<a href=\"#m1\">") && html.contains("<a href=\"#m18\">"));
    // Each prompt says what its turn changed.
    assert!(html.contains("<details class=\"files turn\"><summary>5 files changed <span class=\"add\">+46</span> <span class=\"del\">−1</span>"));
    assert!(html.contains("<details class=\"files turn\"><summary>1 file changed <span class=\"add\">+0</span> <span class=\"del\">−1</span>"));
    // Tools: a failed read and edit are marked, the diff is coloured, the todo list is a checklist.
    assert_eq!(html.matches("<div class=\"tool failed").count(), 2);
    assert!(html.contains("File not found: /home/dev/calc/src/mathutil.py"));
    assert!(html.contains("<span class=\"a\">+def multiply(a, b):\n</span>"));
    assert!(html.contains("<ul class=\"todos\">"));
    assert!(html.contains("<span class=\"badge agent\">explore</span>"));
    assert!(!html.contains("<task_result>") && !html.contains("&lt;task_result&gt;"));
    assert!(!html.contains("style="), "CSP forbids inline styles");
    without_own_script(&html);
    assert!(html.contains(&crate::render::live_script_tag()));
}

#[test]
fn render_is_deterministic() {
    let doc = fixture("long");
    assert_eq!(render_page(&doc, &CTX), render_page(&doc, &CTX));
}

#[test]
fn stylesheet_path_names_its_content() {
    let p = stylesheet_path();
    assert!(
        p.starts_with("/assets/style-") && p.rsplit_once('.').map(|(_, e)| e) == Some("css"),
        "{p}"
    );
    assert_eq!(p.len(), "/assets/style-".len() + 10 + ".css".len());
}

// ---------- hostile documents ----------

fn evil(tag: &str) -> String {
    format!(
        "{tag}<script>alert('{tag}')</script><img src=x onerror=alert(1)>\"><svg onload=alert(2)>'><iframe src=javascript:alert(3)>"
    )
}

const BAD_URLS: &[&str] = &[
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
];

fn evil_markdown(tag: &str) -> String {
    let mut s = format!(
        "{}\n\n<div onclick=\"alert(1)\">raw block</div>\n\n",
        evil(tag)
    );
    for (i, u) in BAD_URLS.iter().enumerate() {
        s.push_str(&format!("[link{i}]({u}) ![img{i}]({u}) <{u}> "));
    }
    // An image on another host would be fetched by every reader's browser: it must become a link.
    s.push_str(
        "![remote](https://tracker.example/pixel.png) ![remote2](http://tracker.example/p.gif) ",
    );
    s.push_str("[ok](https://example.com/\"onmouseover=\"alert(1)) <a href=\"javascript:alert(1)\">a</a>\n\n```html\n<script>alert(1)</script>\n```\n");
    s
}

fn evil_tool(name: &str, input: Value, meta: Value, status: &str) -> Value {
    json!({"type": "tool", "tool": name, "callID": evil("callid"), "state": {
        "status": status, "input": input, "metadata": meta,
        "output": evil(&format!("{name}out")), "title": evil(&format!("{name}title")),
        "error": evil(&format!("{name}err")),
        "time": {"start": 1, "end": 2}}})
}

fn hostile_document() -> ShareData {
    let e = evil;
    let parts = vec![
        json!({"type": "text", "text": evil_markdown("usertext")}),
        json!({"type": "text", "synthetic": true, "text": e("synthetic")}),
        json!({"type": "file", "mime": e("mime"), "filename": e("filename"), "url": "javascript:alert(1)"}),
        json!({"type": "file", "mime": "image/svg+xml", "filename": "x.svg", "url": "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"}),
        json!({"type": "file", "mime": "image/png", "filename": "p.png", "url": "data:image/png;base64,iVBOR\"onerror=\"alert(1)"}),
        json!({"type": "file", "mime": "text/html", "filename": "h.html", "url": "data:text/html;base64,PHNjcmlwdD4="}),
    ];
    let assistant_parts = vec![
        json!({"type": "step-start"}),
        json!({"type": "reasoning", "text": evil_markdown("reasoning")}),
        json!({"type": "text", "text": evil_markdown("assistanttext")}),
        evil_tool(
            "bash",
            json!({"command": e("command"), "description": e("description")}),
            json!({"output": e("bashoutput"), "exit": 1}),
            "completed",
        ),
        evil_tool(
            "edit",
            json!({"filePath": e("editpath"), "oldString": e("old"), "newString": e("new")}),
            json!({"diff": format!("@@ -1 +1 @@\n-{}\n+{}\n", e("diffdel"), e("diffadd")), "filediff": {"additions": 1, "deletions": 1}}),
            "completed",
        ),
        evil_tool(
            "edit",
            json!({"filePath": e("editpath2"), "oldString": e("oldonly"), "newString": e("newonly")}),
            json!({}),
            "error",
        ),
        evil_tool(
            "write",
            json!({"filePath": format!("{}.html", e("writepath")), "content": e("writecontent")}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "write",
            json!({"filePath": "x.js", "content": format!("{}\n", e("jscontent"))}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "read",
            json!({"filePath": e("readpath")}),
            json!({"preview": e("preview")}),
            "completed",
        ),
        evil_tool(
            "grep",
            json!({"pattern": e("pattern"), "include": e("include"), "path": e("grepdir")}),
            json!({"matches": 2}),
            "completed",
        ),
        evil_tool(
            "glob",
            json!({"pattern": e("glob")}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "list",
            json!({"path": e("listpath")}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "webfetch",
            json!({"url": "javascript:alert(1)", "format": e("format")}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "webfetch",
            json!({"url": "JaVaScRiPt:alert(1)"}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "webfetch",
            json!({"url": "data:text/html,<script>alert(1)</script>"}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "todowrite",
            json!({"todos": [{"content": e("todo"), "status": e("todostatus"), "priority": e("prio")}, {"content": e("todo2"), "status": "completed"}]}),
            json!({}),
            "completed",
        ),
        evil_tool(
            "task",
            json!({"description": e("taskdesc"), "prompt": evil_markdown("taskprompt"), "subagent_type": e("subagent")}),
            json!({"sessionId": e("childid")}),
            "completed",
        ),
        evil_tool(
            &e("toolname"),
            json!({"arg": e("toolinput"), "url": "javascript:alert(1)"}),
            json!({}),
            "completed",
        ),
        evil_tool("mcp_thing", json!({"x": 1}), json!({}), "error"),
        json!({"type": "step-finish", "reason": e("reason"), "tokens": {"input": 1}, "cost": 0.5}),
        json!({"type": "patch", "hash": e("hash"), "files": [e("patchfile")]}),
        json!({"type": "agent", "name": e("agentname")}),
        json!({"type": "subtask", "agent": e("subtaskagent"), "description": e("subtaskdesc"), "prompt": evil_markdown("subtaskprompt")}),
        json!({"type": "retry", "attempt": 2, "error": {"name": e("retryname"), "data": {"message": e("retrymsg")}}}),
        json!({"type": "compaction", "auto": true}),
        json!({"type": e("parttype"), "payload": e("unknownpart")}),
    ];
    let child_parts = vec![
        json!({"type": "text", "text": evil_markdown("childtext")}),
        evil_tool(
            "bash",
            json!({"command": e("childcommand")}),
            json!({"output": e("childoutput"), "exit": 0}),
            "completed",
        ),
    ];
    let doc = json!({
        "shareId": e("shareid"), "sessionId": e("sessionid"), "createdAt": 0, "updatedAt": 1,
        "children": [
            {"session": {"id": e("childid"), "title": e("childtitle"), "parentID": e("sessionid")},
             "messages": [{"info": {"role": "assistant", "agent": e("childagent"), "modelID": e("childmodel")},
                           "parts": child_parts}]},
            {"session": {"id": e("looseid"), "title": e("loosetitle")},
             "messages": [{"info": {"role": e("looserole")}, "parts": []}]},
        ],
        "childrenOmitted": 3,
        "session": {"title": e("title"), "version": e("version"), "directory": e("dir"),
                    "model": {"id": e("sessionmodel")}},
        "messages": [
            {"info": {"role": "user", "id": e("msgid"), "agent": e("useragent"), "time": {"created": 1000},
                      "summary": {"diffs": [{"file": e("difffile"), "additions": 1, "deletions": 2}]}},
             "parts": parts},
            {"info": {"role": "assistant", "modelID": e("modelid"), "providerID": e("provider"), "agent": e("agent"),
                      "time": {"created": 2000, "completed": 3000}, "cost": 0.1,
                      "error": {"name": e("errname"), "data": {"message": e("errmsg")}}},
             "parts": assistant_parts},
            {"info": {"role": "assistant", "modelID": "m", "error": {"name": "MessageAbortedError", "data": {"message": e("aborted")}}}, "parts": []},
            {"info": {"role": e("role")}, "parts": [{"type": "text", "text": e("otherrole")}]},
        ]
    });
    serde_json::from_value(doc).unwrap()
}

#[test]
fn hostile_documents_render_inert_and_visible() {
    let doc = hostile_document();
    let html = render_page(
        &doc,
        &PageContext {
            share_url: "javascript:alert(1)",
        },
    );
    assert_inert(&html);
    let lower = without_own_script(&html).to_ascii_lowercase();
    assert!(!lower.contains("<script") && !lower.contains("<svg") && !lower.contains("<iframe"));
    // Text may mention `href="javascript:` (as text); no tag may carry it.
    assert!(!lower.contains("<a href=\"javascript") && !lower.contains(" src=\"javascript"));
    assert!(!lower.contains("<a href=\"data:") && !lower.contains(" src=\"data:image/svg"));
    assert!(!lower.contains(" src=\"data:text"));
    // The hostile text is still there for the reader, escaped (highlighting may have split it
    // into spans, so the tags are taken out first).
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    for tag in [
        "title",
        "version",
        "usertext",
        "synthetic",
        "mime",
        "filename",
        "reasoning",
        "assistanttext",
        "command",
        "description",
        "bashoutput",
        "editpath",
        "diffdel",
        "diffadd",
        "oldonly",
        "newonly",
        "editerr",
        "writepath",
        "writecontent",
        "jscontent",
        "readpath",
        "preview",
        "pattern",
        "include",
        "grepdir",
        "glob",
        "listpath",
        "format",
        "webfetchout",
        "todo",
        "todo2",
        "prio",
        "taskdesc",
        "taskprompt",
        "subagent",
        "toolname",
        "toolinput",
        "mcp_thingerr",
        "reason",
        "patchfile",
        "agentname",
        "subtaskagent",
        "subtaskdesc",
        "subtaskprompt",
        "retrymsg",
        "parttype",
        "unknownpart",
        "difffile",
        "modelid",
        "provider",
        "agent",
        "errname",
        "errmsg",
        "aborted",
        "role",
        "otherrole",
        "useragent",
        "childtitle",
        "childtext",
        "childcommand",
        "childoutput",
        "childagent",
        "childmodel",
        "loosetitle",
        "looserole",
    ] {
        assert!(
            text.contains(&format!("{tag}&lt;script&gt;alert(")),
            "escaped text of {tag} is not visible"
        );
    }
    // The subagent's conversation is nested in its task call, the other one after the rest.
    let task = html.find("taskdesc&lt;script&gt;").unwrap();
    let child = html.find("childoutput&lt;script&gt;").unwrap();
    let loose = html.find("loosetitle&lt;script&gt;").unwrap();
    assert!(task < child && child < loose);
    assert!(html.contains("3 subagent sessions were left out of this share"));
    // Links with bad targets keep their text but lose the link.
    assert!(html.contains("link0") && html.contains("link4"));
    assert!(html.contains("<a href=\"https://example.com/&quot;onmouseover=&quot;alert(1)\" rel=\"nofollow noopener noreferrer\">ok</a>"));
    // The invalid data URLs were not inlined, and remote images are links, not images.
    assert!(!html.contains("<img"));
    assert!(html.contains("<a href=\"https://tracker.example/pixel.png\" rel=\"nofollow noopener noreferrer\">[image: remote]</a>"));

    let md = render_transcript_markdown(&doc);
    assert!(
        md.contains("title<script>"),
        "the transcript is text and keeps text as written"
    );
    assert!(md.contains("childoutput<script>"), "{md}");
}

#[test]
fn small_png_attachment_is_inlined() {
    let png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let doc: ShareData = serde_json::from_value(json!({
        "shareId": "abcdefgh", "sessionId": "s", "createdAt": 0, "updatedAt": 0,
        "messages": [{"info": {"role": "user"}, "parts": [
            {"type": "file", "mime": "image/png", "filename": "dot.png", "url": png},
            {"type": "file", "mime": "image/png", "filename": "big.png", "url": format!("data:image/png;base64,{}", "A".repeat(300_000))},
        ]}]
    }))
    .unwrap();
    let html = render_page(&doc, &CTX);
    assert_inert(&html);
    assert!(html.contains(&format!("<img src=\"{png}\" alt=\"dot.png\"")));
    assert_eq!(
        html.matches("<img").count(),
        1,
        "the big image is named, not inlined"
    );
    assert!(html.contains("image not shown"));
}

// ---------- generated documents ----------

/// xorshift64*: deterministic, dependency-free, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let strings = [
        "",
        "completed",
        "error",
        "running",
        "pending",
        "text",
        "tool",
        "reasoning",
        "file",
        "bash",
        "edit",
        "read",
        "12",
        "-5",
        "1e309",
        "NaN",
        "null",
        "user",
        "assistant",
        "image/png",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "<script>x</script>",
        "\u{0}\u{202e}é😀",
        "x.rs",
        "/home/dev/calc/a.py",
    ];
    match rng.below(if depth > 2 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => [
            json!(0),
            json!(-1),
            json!(1),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1.0e308),
            json!(-1.0e308),
            json!(0.5),
        ][rng.below(9)]
        .clone(),
        3 => json!(rng.next() as i64),
        4 | 5 => Value::String(strings[rng.below(strings.len())].to_string()),
        6 => Value::String("é<a>\n".repeat(rng.below(4000))),
        7 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "type",
                "text",
                "tool",
                "state",
                "status",
                "input",
                "output",
                "metadata",
                "time",
                "start",
                "end",
                "created",
                "completed",
                "tokens",
                "cost",
                "role",
                "error",
                "name",
                "data",
                "message",
                "todos",
                "diff",
                "filePath",
                "command",
                "exit",
                "url",
                "mime",
                "synthetic",
                "files",
                "cache",
                "read",
                "filediff",
            ];
            let mut m = serde_json::Map::new();
            for _ in 0..rng.below(5) {
                m.insert(
                    keys[rng.below(keys.len())].to_string(),
                    random_value(rng, depth + 1),
                );
            }
            Value::Object(m)
        }
    }
}

/// Replaces one randomly chosen node below `v` (never `v` itself) with a random value.
fn mutate(rng: &mut Rng, v: &mut Value) {
    let mut cur = v;
    loop {
        let len = match &*cur {
            Value::Object(m) => m.len(),
            Value::Array(a) => a.len(),
            _ => 0,
        };
        if len == 0 {
            return;
        }
        let i = rng.below(len);
        let stop = rng.below(4) == 0;
        let child = match cur {
            Value::Object(m) => m.values_mut().nth(i),
            Value::Array(a) => a.get_mut(i),
            _ => None,
        };
        let Some(child) = child else { return };
        if stop || !(child.is_object() || child.is_array()) {
            *child = random_value(rng, 0);
            return;
        }
        cur = child;
    }
}

fn render_all(doc: &ShareData) {
    let html = render_page(doc, &CTX);
    assert!(html.ends_with("</html>\n"));
    assert_inert(&html);
    let _ = render_transcript_markdown(doc);
}

#[test]
fn mutated_documents_render() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for name in ["short", "long"] {
        let base: Value = serde_json::from_slice(&fixture_bytes(name)).unwrap();
        let mut rendered = 0;
        for round in 0..150 {
            let mut v = base.clone();
            for _ in 0..=(round % 20) {
                // Keep the envelope intact most of the time so the mutations reach the messages.
                let n = v["messages"].as_array().map_or(0, Vec::len);
                let m = rng.below(n);
                let parts = v["messages"][m]["parts"].as_array().map_or(0, Vec::len);
                let p = rng.below(parts);
                match rng.below(6) {
                    0 => mutate(&mut rng, &mut v["session"]),
                    1 => mutate(&mut rng, &mut v["messages"][m]["info"]),
                    2 if parts > 0 => v["messages"][m]["parts"][p] = random_value(&mut rng, 0),
                    _ if parts > 0 => mutate(&mut rng, &mut v["messages"][m]["parts"][p]),
                    _ => {}
                }
            }
            if let Ok(doc) = serde_json::from_value::<ShareData>(v) {
                render_all(&doc);
                rendered += 1;
            }
        }
        println!("mutated {name}: {rendered} of 150 documents parsed and rendered");
        // The mutations keep the envelope's required fields, so every document parses.
        assert_eq!(rendered, 150, "{name}: mutated documents that parsed");
    }
}

#[test]
fn wrong_types_everywhere_render() {
    let mut rng = Rng(42);
    let base: Value = serde_json::from_slice(&fixture_bytes("long")).unwrap();
    // Every field of every info and part (and of their direct children) replaced, one document per seed.
    const TRIED: usize = 30;
    let mut rendered = 0;
    for _ in 0..TRIED {
        let mut v = base.clone();
        if let Some(msgs) = v["messages"].as_array_mut() {
            for m in msgs {
                for key in ["info", "parts"] {
                    let mut stack = vec![&mut m[key]];
                    while let Some(node) = stack.pop() {
                        match node {
                            Value::Object(o) => {
                                for (_, child) in o.iter_mut() {
                                    if rng.below(3) == 0 {
                                        *child = random_value(&mut rng, 1);
                                    } else {
                                        stack.push(child);
                                    }
                                }
                            }
                            Value::Array(a) => stack.extend(a.iter_mut()),
                            _ => {}
                        }
                    }
                }
            }
        }
        v["session"] = random_value(&mut rng, 0);
        if let Ok(doc) = serde_json::from_value::<ShareData>(v) {
            render_all(&doc);
            rendered += 1;
        }
    }
    println!("wrong types everywhere: {rendered} of {TRIED} documents parsed and rendered");
    // The model takes any value where it expects another type, so every one of them must reach
    // the renderer: a document refused at parsing would spare the renderer the test.
    assert_eq!(
        rendered, TRIED,
        "documents with wrong types that parsed and rendered"
    );
    // Whole parts of the wrong kind.
    let doc: ShareData = serde_json::from_value(json!({
        "shareId": "abcdefgh", "sessionId": "s", "createdAt": i64::MIN, "updatedAt": i64::MAX,
        "session": "not an object",
        "messages": [
            {"info": "nope", "parts": [1, "text", null, [], {"type": 5}, {"type": "tool", "state": "done"},
                {"type": "tool", "tool": "bash", "state": {"input": "ls", "metadata": [], "status": 3}},
                {"type": "text", "text": {"nested": true}}, {"type": "step-finish", "tokens": "many", "cost": "0.5"}]},
            {"info": {"role": "assistant", "time": {"created": "yesterday", "completed": -1e300}, "tokens": {"input": 1e300, "cache": 7}, "cost": 1e308}, "parts": []},
        ]
    }))
    .unwrap();
    render_all(&doc);
}

/// Cuts a JSON text at `at` and closes what is open, dropping the element cut in half; `None`
/// when nothing complete is left.
fn repair_truncated(text: &str, at: usize) -> Option<String> {
    let prefix = &text.as_bytes()[..at];
    let (mut in_str, mut escaped) = (false, false);
    let mut stack: Vec<u8> = Vec::new();
    let mut last_cut: Option<(usize, Vec<u8>)> = None;
    for (i, &b) in prefix.iter().enumerate() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                stack.push(b);
                // Just inside a container: cutting here leaves it empty and valid.
                last_cut = Some((i + 1, stack.clone()));
            }
            b'}' | b']' => {
                stack.pop();
            }
            // Everything before a comma is a complete member.
            b',' => last_cut = Some((i, stack.clone())),
            _ => {}
        }
    }
    let (cut, open) = last_cut?;
    let mut out = String::from_utf8(prefix[..cut].to_vec()).ok()?;
    for b in open.iter().rev() {
        out.push(if *b == b'{' { '}' } else { ']' });
    }
    Some(out)
}

#[test]
fn truncated_documents_render() {
    for name in ["short", "long"] {
        let text = String::from_utf8(fixture_bytes(name)).unwrap();
        let (mut cuts, mut parsed) = (0, 0);
        for at in (1..text.len()).step_by(97) {
            if !text.is_char_boundary(at) {
                continue;
            }
            cuts += 1;
            match repair_truncated(&text, at).map(|t| serde_json::from_str::<ShareData>(&t)) {
                Some(Ok(doc)) => {
                    render_all(&doc);
                    parsed += 1;
                }
                // Only a cut before the envelope's required fields (the first lines) may fail.
                _ => assert!(
                    at < 200,
                    "{name}: the document cut at byte {at} did not parse"
                ),
            }
        }
        println!("truncated {name}: {parsed} of {cuts} cuts parsed and rendered");
        assert!(
            parsed + 2 >= cuts,
            "{name}: only {parsed} of {cuts} cuts parsed"
        );
    }
}

// ---------- the committed syntax colours ----------

const CSS_BEGIN: &str = "/* BEGIN GENERATED SYNTAX COLOURS */\n";
const CSS_END: &str = "/* END GENERATED SYNTAX COLOURS */\n";

fn syntax_css() -> String {
    use syntect::highlighting::ThemeSet;
    use syntect::html::css_for_theme_with_class_style;
    let themes = ThemeSet::load_defaults();
    let mut out = String::new();
    for (scheme, theme) in [("light", "InspiredGitHub"), ("dark", "base16-ocean.dark")] {
        let css =
            css_for_theme_with_class_style(&themes.themes[theme], highlight::CLASS_STYLE).unwrap();
        out.push_str(&format!(
            "@media (prefers-color-scheme: {scheme}) {{\n/* syntect theme {theme} */\n"
        ));
        // Comments dropped; the page sets the block's own background, so only token colours stay.
        let mut plain = String::with_capacity(css.len());
        let mut rest = css.as_str();
        while let Some(start) = rest.find("/*") {
            plain.push_str(&rest[..start]);
            rest = rest[start..]
                .find("*/")
                .map_or("", |end| &rest[start + end + 2..]);
        }
        plain.push_str(rest);
        for rule in plain.split_inclusive('}') {
            let compact = rule.split_whitespace().collect::<Vec<_>>().join(" ");
            if compact.is_empty() || compact.starts_with(".s-code ") {
                continue;
            }
            out.push_str(&compact);
            out.push('\n');
        }
        out.push_str("}\n");
    }
    out
}

/// The syntax colours in style.css are what syntect generates; `BSHARE_BLESS_CSS=1 cargo test`
/// rewrites them.
#[test]
fn stylesheet_syntax_colours_are_current() {
    let path = format!("{}/src/lib/render/style.css", env!("CARGO_MANIFEST_DIR"));
    let css = std::fs::read_to_string(&path).unwrap();
    let begin = css.find(CSS_BEGIN).expect("begin marker") + CSS_BEGIN.len();
    let end = css.find(CSS_END).expect("end marker");
    let generated = syntax_css();
    if std::env::var_os("BSHARE_BLESS_CSS").is_some() {
        let updated = format!("{}{generated}{}", &css[..begin], &css[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        css[begin..end] == generated,
        "style.css syntax colours are stale: run BSHARE_BLESS_CSS=1 cargo test --lib render"
    );
}

/// The part types and states the fixtures do not contain, in a plausible document.
fn other_parts_document() -> ShareData {
    serde_json::from_value(json!({
        "shareId": "Other123", "sessionId": "ses_other", "createdAt": 1_795_479_000_000_i64, "updatedAt": 1_795_479_100_000_i64,
        "session": {"title": "Other parts", "directory": "/work/app", "version": "1.18.33"},
        "messages": [
            {"info": {"role": "user", "time": {"created": 1_795_479_000_000_i64}, "agent": "plan"},
             "parts": [
                {"type": "text", "text": "Plan the migration, then @general do it."},
                {"type": "agent", "name": "general"},
                {"type": "subtask", "agent": "general", "description": "Run the migration", "prompt": "Apply `0002_users.sql` and report."},
                {"type": "file", "mime": "image/png", "filename": "dot.png",
                 "url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="},
                {"type": "file", "mime": "application/pdf", "filename": "spec.pdf", "url": "file:///work/app/docs/spec.pdf"},
             ]},
            {"info": {"role": "assistant", "modelID": "claude-x", "providerID": "anthropic", "agent": "plan",
                      "time": {"created": 1_795_479_001_000_i64, "completed": 1_795_479_031_000_i64},
                      "error": {"name": "APIError", "data": {"message": "Overloaded", "statusCode": 529, "isRetryable": true}}},
             "parts": [
                {"type": "retry", "attempt": 1, "error": {"name": "APIError", "data": {"message": "Rate limited"}}, "time": {"created": 1_795_479_002_000_i64}},
                {"type": "tool", "tool": "bash", "state": {"status": "running", "input": {"command": "make migrate"}, "time": {"start": 1_795_479_003_000_i64}}},
                {"type": "tool", "tool": "list", "state": {"status": "pending", "input": {"path": "/work/app/migrations"}}},
                {"type": "tool", "tool": "github_create_issue", "state": {"status": "completed", "title": "Issue #12",
                    "input": {"repo": "acme/app", "title": "Migration plan", "labels": ["db"]}, "output": "Created https://github.com/acme/app/issues/12"}},
                {"type": "compaction", "auto": true},
                {"type": "future-part", "payload": {"x": 1}},
             ]},
            {"info": {"role": "assistant", "modelID": "claude-x", "providerID": "anthropic",
                      "time": {"created": 1_795_565_440_000_i64}, "error": {"name": "MessageAbortedError", "data": {}}},
             "parts": [{"type": "text", "text": "Starting the migr"}]},
        ]
    }))
    .unwrap()
}

#[test]
fn other_parts_page() {
    let html = render_page(&other_parts_document(), &CTX);
    assert_inert(&html);
    assert!(html.contains(
        "<div class=\"error\"><strong>API error</strong> <span class=\"badge\">HTTP 529</span>"
    ));
    assert!(html.contains("<div class=\"error aborted\"><strong>Aborted</strong>"));
    assert!(html.contains("<span class=\"badge\">running</span>"));
    assert!(html.contains("<img src=\"data:image/png;base64,"));
    assert!(html.contains("Part <code>future-part</code>"));
    // Same day as the header: time only; the next day: the date too.
    assert!(html.contains(">00:10:01</time>"));
    assert!(html.contains(">2026-11-25 00:10:40 UTC</time>"));
    assert_page_snapshot!("other_parts_page", html);
    insta::assert_snapshot!(
        "other_parts_transcript",
        render_transcript_markdown(&other_parts_document())
    );
}

/// A redacted document says how many secrets were removed, and shows each placeholder; the
/// rule ids come from the document, so they are escaped like everything else.
#[test]
fn redacted_document_says_what_was_removed() {
    let mut doc = fixture("short");
    doc.messages[0].parts.push(json!({
        "id": "prt_zz_redact", "type": "text",
        "text": "deploy with ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er and AKIAMR46PQM4I2HZ4UEP, not 3b16494331a59c4ad1ebd086c40f36094fcc9a5c"
    }));
    let (bytes, report) =
        crate::redact::prepare_upload(&doc, true, &crate::redact::Options::default()).unwrap();
    assert_eq!(report.total(), 2);
    let doc: ShareData = serde_json::from_slice(&bytes).unwrap();
    let html = render_page(&doc, &CTX);
    assert_inert(&html);
    assert!(!html.contains("ghp_qrc5") && !html.contains("AKIAMR"));
    assert!(
        html.contains("[REDACTED:github-token]")
            && html.contains("3b16494331a59c4ad1ebd086c40f36094fcc9a5c")
    );
    let start = html.find("<header").unwrap();
    let end = html.find("<main").unwrap();
    assert_page_snapshot!("redacted_page_header", &html[start..end]);
    let md = render_transcript_markdown(&doc);
    assert!(md.contains("- Redacted: 2 secrets were removed before this was shared"));
    assert!(md.contains("[REDACTED:aws-access-key-id]"));

    let mut hostile = fixture("short");
    hostile.redaction = Some(crate::model::Redaction {
        counts: [
            ("<script>alert(1)</script>".to_owned(), 1),
            ("zero".to_owned(), 0),
        ]
        .into(),
    });
    let html = render_page(&hostile, &CTX);
    assert_inert(&html);
    assert!(html.contains(
        "1 secret was removed before this was shared (&lt;script&gt;alert(1)&lt;/script&gt; 1)"
    ));
    // No count, no note.
    let mut none = fixture("short");
    none.redaction = Some(crate::model::Redaction::default());
    assert!(!render_page(&none, &CTX).contains("removed before"));
}

#[test]
fn messages_have_stable_ids_and_fragments_start_at_one() {
    let doc = fixture("long");
    let html = render_page(&doc, &CTX);
    let ids: Vec<String> = doc
        .messages
        .iter()
        .map(|m| m.info["id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        assert!(
            html.contains(&format!(" data-id=\"{id}\">")),
            "message {id} has its id"
        );
    }
    let all = std::str::from_utf8(crate::render::messages_from(html.as_bytes(), "")).unwrap();
    assert_eq!(all.matches("<article ").count(), ids.len());
    assert!(all.starts_with("<article ") && !all.contains("</main>"));
    let tail = crate::render::messages_from(html.as_bytes(), &ids[ids.len() - 2]);
    let tail = std::str::from_utf8(tail).unwrap();
    assert_eq!(tail.matches("<article ").count(), 2, "{tail:.300}");
    assert!(tail.starts_with(&format!(
        "<article class=\"msg assistant\" id=\"m{}\" data-id=\"{}\">",
        ids.len() - 1,
        ids[ids.len() - 2]
    )));
    // An id the page does not have: every message.
    let unknown = crate::render::messages_from(html.as_bytes(), "msg_nothere");
    assert_eq!(unknown, all.as_bytes());
    // A document's id that is not plain, or looks like a position, is replaced by the position.
    let doc: ShareData = serde_json::from_value(json!({
        "shareId": "abcdefgh", "sessionId": "s", "createdAt": 0, "updatedAt": 0,
        "session": {"id": "ses_x", "title": "t"},
        "messages": [
            {"info": {"id": "\"><script>", "role": "user"}, "parts": [{"type": "text", "text": "a"}]},
            {"info": {"id": "m1", "role": "user"}, "parts": [{"type": "text", "text": "b"}]},
        ]
    }))
    .unwrap();
    let html = render_page(&doc, &CTX);
    assert!(
        html.contains("id=\"m1\" data-id=\"m1\">") && html.contains("id=\"m2\" data-id=\"m2\">")
    );
    assert_inert(&html);
}

/// A session whose task calls ran subagents: one with a subagent of its own, one whose session
/// was left out of the document, and a child no call names.
fn subagents_document() -> ShareData {
    let task = |id: &str, desc: &str, result: &str| {
        json!({"type": "tool", "tool": "task", "callID": format!("call_{id}"),
            "state": {"status": "completed",
                "input": {"description": desc, "prompt": format!("Please {desc}."), "subagent_type": "explore"},
                "output": format!("<task id=\"{id}\" state=\"completed\">\n<task_result>\n{result}\n</task_result>\n</task>"),
                "metadata": {"sessionId": id}, "title": desc,
                "time": {"start": 1_795_479_001_000_i64, "end": 1_795_479_009_000_i64}}})
    };
    let user = |id: &str, text: &str, at: i64| {
        json!({"info": {"role": "user", "id": format!("msg_{id}"), "time": {"created": at}, "agent": "explore"},
               "parts": [{"type": "text", "text": text}]})
    };
    serde_json::from_value(json!({
        "shareId": "Subagnt1", "sessionId": "ses_main", "createdAt": 1_795_479_000_000_i64, "updatedAt": 1_795_479_100_000_i64,
        "session": {"id": "ses_main", "title": "Find the TODOs", "directory": "/work/app", "version": "1.18.33"},
        "messages": [
            {"info": {"role": "user", "id": "msg_1", "time": {"created": 1_795_479_000_000_i64}, "agent": "build"},
             "parts": [{"type": "text", "text": "Find every TODO and the tests that cover them."}]},
            {"info": {"role": "assistant", "id": "msg_2", "modelID": "m1", "providerID": "fake", "agent": "build",
                      "time": {"created": 1_795_479_000_500_i64, "completed": 1_795_479_010_000_i64}},
             "parts": [
                task("ses_scan", "Scan for TODO comments", "Found 1 TODO: `src/cli.py:7`."),
                task("ses_gone", "List the tests", "3 test files."),
                {"type": "text", "text": "One TODO, in `src/cli.py`."},
             ]},
        ],
        "children": [
            {"session": {"id": "ses_scan", "parentID": "ses_main", "title": "Scan for TODO comments (@explore subagent)"},
             "messages": [
                user("s1", "Please Scan for TODO comments.", 1_795_479_001_000_i64),
                {"info": {"role": "assistant", "id": "msg_s2", "modelID": "m1", "providerID": "fake", "agent": "explore", "cost": 0.0042,
                          "time": {"created": 1_795_479_001_100_i64, "completed": 1_795_479_008_000_i64}},
                 "parts": [
                    {"type": "tool", "tool": "grep", "state": {"status": "completed", "input": {"pattern": "TODO", "path": "/work/app"},
                        "output": "Found 1 matches\n/work/app/src/cli.py:\n  Line 7: # TODO: support floats", "metadata": {"matches": 1}, "title": "TODO"}},
                    task("ses_deeper", "Read the file around it", "Line 7 parses ints only."),
                    {"type": "text", "text": "Found 1 TODO: `src/cli.py:7`."},
                 ]},
             ]},
            {"session": {"id": "ses_deeper", "parentID": "ses_scan", "title": "Read the file around it"},
             "messages": [
                user("d1", "Please Read the file around it.", 1_795_479_002_000_i64),
                {"info": {"role": "assistant", "id": "msg_d2", "modelID": "m2", "providerID": "fake", "agent": "explore",
                          "time": {"created": 1_795_479_002_100_i64}},
                 "parts": [
                    {"type": "tool", "tool": "read", "state": {"status": "completed", "input": {"filePath": "/work/app/src/cli.py", "offset": 5},
                        "metadata": {"preview": "def main():\n    # TODO: support floats\n    n = int(sys.argv[1])"}, "title": "src/cli.py"}},
                    {"type": "text", "text": "Line 7 parses ints only."},
                 ]},
             ]},
            {"session": {"id": "ses_other", "parentID": "ses_main", "title": "A subagent no call names"},
             "messages": [user("o1", "Left over.", 1_795_479_003_000_i64)]},
        ],
        "childrenOmitted": 1,
    }))
    .unwrap()
}

/// Each task call holds its subagent's whole conversation, collapsed, with the same tool
/// rendering; the subagent's own task call holds its subagent.
#[test]
fn subagents_page() {
    let doc = subagents_document();
    let html = render_page(&doc, &CTX);
    assert_inert(&html);
    let scan = html.find("<details class=\"subagent\" id=\"s1\">").unwrap();
    let grep = html.find("Line 7: # TODO: support floats").unwrap();
    let deeper = html.find("<details class=\"subagent\" id=\"s2\">").unwrap();
    let read = html.find("<span class=\"tn\">read</span>").unwrap();
    let other = html.find("<details class=\"subagent\" id=\"s3\">").unwrap();
    let gone = html.find("List the tests").unwrap();
    assert!(scan < grep && grep < deeper && deeper < read && read < gone && gone < other);
    assert!(html.contains("id=\"s1-m2\"") && html.contains("href=\"#s2-m1\""));
    assert!(
        !html.contains("<details class=\"subagent\" open"),
        "collapsed by default"
    );
    assert!(html.contains("1 subagent session was left out of this share"));
    assert!(html.contains("<dt>Subagents</dt><dd>3 sessions · $0.0042</dd>"));
    assert_page_snapshot!("subagents_page", html);
    insta::assert_snapshot!("subagents_transcript", render_transcript_markdown(&doc));
}
