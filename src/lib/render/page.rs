//! The HTML page: head, session header, prompt jump list, and every message with its parts; a
//! `task` call holds the subagent conversation it ran, collapsed (where: `model::SubagentPlan`).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::highlight::Highlighter;
use super::markdown;
use super::tools;
use super::util::{
    Tokens, clip, duration, escape_into, iso, money, nonempty, num_field, one_line, str_field,
    thousands, time_field, utc_datetime, utc_time,
};
use super::{PageContext, stylesheet_path};
use crate::model::{ChildSession, MessageWithParts, ShareData, SubagentPlan};

/// State of one page render: the output and what it may still spend on highlighting.
pub struct Page<'a> {
    pub out: String,
    pub hl: Highlighter,
    /// The session's working directory, stripped from paths to keep them short.
    pub dir: Option<&'a str>,
    last_model: Option<String>,
    last_agent: Option<&'a str>,
    /// Markdown blocks rendered so far; keeps footnote ids of different messages apart.
    md_blocks: usize,
    /// Date of the last message shown; a message on another day shows its date too.
    last_date: Option<String>,
    /// The document's subagent sessions and where each is shown.
    children: &'a [ChildSession],
    plan: SubagentPlan,
    /// The session being rendered (0: the main one, `k + 1`: `children[k]`), and the message
    /// and part within it: where a `task` call looks up the conversation to nest under it.
    at: (usize, usize, usize),
}

impl Page<'_> {
    /// Appends `text` rendered as markdown.
    pub fn markdown(&mut self, text: &str) {
        self.md_blocks += 1;
        markdown::render(&mut self.out, text, &mut self.hl, self.md_blocks);
    }
}

/// Facts for the header, gathered in one pass over the messages.
pub(super) struct Summary<'a> {
    pub(super) title: &'a str,
    pub(super) models: Vec<String>,
    pub(super) version: Option<&'a str>,
    pub(super) created: Option<i64>,
    pub(super) updated: Option<i64>,
    pub(super) first: Option<i64>,
    pub(super) last: Option<i64>,
    pub(super) cost: f64,
    pub(super) tokens: Tokens,
    pub(super) prompts: usize,
    /// Subagent sessions in the document, and what their assistant messages cost.
    pub(super) subagents: usize,
    pub(super) subagent_cost: f64,
    pub(super) files: Vec<FileChange<'a>>,
}

pub(super) struct FileChange<'a> {
    pub(super) file: &'a str,
    pub(super) additions: u64,
    pub(super) deletions: u64,
}

impl<'a> Summary<'a> {
    pub(super) fn of(doc: &'a ShareData) -> Summary<'a> {
        let s = &doc.session;
        let mut sum = Summary {
            title: nonempty(s, "title").unwrap_or("Untitled session"),
            models: Vec::new(),
            version: nonempty(s, "version"),
            created: time_field(s, "created").or(Some(doc.created_at)),
            updated: time_field(s, "updated").or(Some(doc.updated_at)),
            first: None,
            last: None,
            cost: 0.0,
            tokens: Tokens::default(),
            prompts: 0,
            subagents: doc.children.len(),
            subagent_cost: doc
                .children
                .iter()
                .flat_map(|c| &c.messages)
                .filter(|m| str_field(&m.info, "role") == Some("assistant"))
                .filter_map(|m| num_field(&m.info, "cost"))
                .filter(|c| c.is_finite() && *c > 0.0)
                .sum(),
            files: Vec::new(),
        };
        let mut file_index: HashMap<&str, usize> = HashMap::new();
        for m in &doc.messages {
            let info = &m.info;
            let created = time_field(info, "created");
            let end = time_field(info, "completed").or(created);
            sum.first = min_opt(sum.first, created);
            sum.last = max_opt(sum.last, end);
            match str_field(info, "role") {
                Some("user") => {
                    sum.prompts += 1;
                    collect_diffs(
                        info.get("summary").and_then(|s| s.get("diffs")),
                        &mut sum.files,
                        &mut file_index,
                    );
                }
                Some("assistant") => {
                    sum.cost += num_field(info, "cost").unwrap_or(0.0);
                    sum.tokens.add(Tokens::from_value(info.get("tokens")));
                    if let Some(model) = model_name(info)
                        && !sum.models.contains(&model)
                    {
                        sum.models.push(model);
                    }
                }
                _ => {}
            }
        }
        // Documents without per-message accounting may still carry the session's totals.
        if sum.cost == 0.0 {
            sum.cost = num_field(s, "cost").unwrap_or(0.0);
        }
        if sum.tokens.is_zero() {
            sum.tokens = Tokens::from_value(s.get("tokens"));
        }
        if sum.files.is_empty() {
            collect_diffs(
                s.get("summary").and_then(|s| s.get("diffs")),
                &mut sum.files,
                &mut file_index,
            );
        }
        if sum.models.is_empty()
            && let Some(m) = s.get("model").and_then(|m| nonempty(m, "id"))
        {
            sum.models.push(m.to_string());
        }
        sum
    }
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn collect_diffs<'a>(
    diffs: Option<&'a Value>,
    files: &mut Vec<FileChange<'a>>,
    index: &mut HashMap<&'a str, usize>,
) {
    let Some(diffs) = diffs.and_then(Value::as_array) else {
        return;
    };
    for d in diffs {
        let Some(file) = nonempty(d, "file") else {
            continue;
        };
        let (add, del) = (
            super::util::count_field(d, "additions"),
            super::util::count_field(d, "deletions"),
        );
        let i = *index.entry(file).or_insert_with(|| {
            files.push(FileChange {
                file,
                additions: 0,
                deletions: 0,
            });
            files.len() - 1
        });
        files[i].additions = files[i].additions.saturating_add(add);
        files[i].deletions = files[i].deletions.saturating_add(del);
    }
}

/// `provider/model` of an assistant message.
pub fn model_name(info: &Value) -> Option<String> {
    let model = nonempty(info, "modelID")
        .or_else(|| info.get("model").and_then(|m| nonempty(m, "modelID")))?;
    Some(match nonempty(info, "providerID") {
        Some(p) => format!("{p}/{model}"),
        None => model.to_string(),
    })
}

/// The text a user typed in a message (synthetic parts left out).
pub fn prompt_text(m: &MessageWithParts) -> Option<&str> {
    m.parts.iter().find_map(|p| {
        (str_field(p, "type") == Some("text") && !is_synthetic(p))
            .then(|| nonempty(p, "text"))
            .flatten()
    })
}

pub fn is_synthetic(p: &Value) -> bool {
    p.get("synthetic").and_then(Value::as_bool) == Some(true)
        || p.get("ignored").and_then(Value::as_bool) == Some(true)
}

/// Renders the whole page.
pub fn render_page(doc: &ShareData, ctx: &PageContext) -> String {
    let summary = Summary::of(doc);
    let size_hint: usize = doc.messages.iter().map(|m| m.parts.len() * 600 + 300).sum();
    let mut page = Page {
        out: String::with_capacity(8 * 1024 + size_hint),
        hl: Highlighter::default(),
        dir: nonempty(&doc.session, "directory"),
        last_model: None,
        last_agent: None,
        md_blocks: 0,
        last_date: summary
            .created
            .and_then(utc_datetime)
            .map(|d| d[..10].to_string()),
        children: &doc.children,
        plan: SubagentPlan::of(doc),
        at: (0, 0, 0),
    };
    let description = description(doc, &summary);
    let share_url = Some(ctx.share_url).filter(|u| markdown::safe_href(u).is_some());
    head(&mut page.out, summary.title, &description, share_url, true);
    header(&mut page.out, &summary);
    redaction_note(&mut page.out, doc);
    jump_list(&mut page.out, doc);
    page.out.push_str(MAIN_OPEN);
    for (i, m) in doc.messages.iter().enumerate() {
        page.at = (0, i, 0);
        message(&mut page, i + 1, m);
    }
    loose_subagents(&mut page, doc.children_omitted);
    page.out.push_str(MAIN_CLOSE);
    foot(&mut page.out, share_url);
    page.out
}

const MAIN_OPEN: &str = "<main id=\"messages\">\n";
const MAIN_CLOSE: &str = "</main>\n";

/// A message's stable id on the page (`data-id`): OpenCode's own message id when it is a plain
/// one, else its position. The live-follow script asks for what follows it.
fn message_id(m: &MessageWithParts, n: usize) -> String {
    // `m` and digits are positions: a document's id of that shape could name another message.
    let positional = |id: &str| {
        id.strip_prefix('m')
            .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
    };
    match str_field(&m.info, "id") {
        Some(id) if is_message_id(id) && !positional(id) => id.to_owned(),
        _ => format!("m{n}"),
    }
}

/// ASCII letters, digits, `_` and `-`, at most 100: safe in an attribute and a query string as
/// is.
pub fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// See [`super::messages_from`]. Document text never holds a raw `<` or `"` (it is escaped), so
/// the markers found here are the page's own.
pub fn messages_from<'a>(html: &'a [u8], after: &str) -> &'a [u8] {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let Some(open) = find(html, MAIN_OPEN.as_bytes()) else {
        return &[];
    };
    let body = &html[open + MAIN_OPEN.len()..];
    let end = find(body, MAIN_CLOSE.as_bytes()).unwrap_or(body.len());
    let body = &body[..end];
    if after.is_empty() {
        return body;
    }
    let marker = format!(" data-id=\"{after}\">");
    let Some(at) = find(body, marker.as_bytes()) else {
        return body;
    };
    let start = body[..at]
        .windows(b"<article".len())
        .rposition(|w| w == b"<article")
        .unwrap_or(0);
    &body[start..]
}

/// Subagent sessions no call on the page names (or nested too deep to show under theirs), and
/// how many were left out of the document.
fn loose_subagents(page: &mut Page, omitted: u64) {
    let loose = std::mem::take(&mut page.plan.loose);
    if !loose.is_empty() {
        page.out
            .push_str("<div class=\"divider\">Subagent sessions not shown under a call</div>\n");
        for k in loose {
            subagent(page, k);
        }
    }
    if omitted > 0 {
        let _ = writeln!(
            page.out,
            "<p class=\"note\">{} subagent session{} left out of this share: with {} the document would have been over the size limit.</p>",
            thousands(omitted),
            if omitted == 1 { " was" } else { "s were" },
            if omitted == 1 { "it" } else { "them" }
        );
    }
}

/// The subagent conversation a `task` call ran, nested in its tool box, when the document has it.
pub fn nested_subagent(page: &mut Page) {
    let (session, message, part) = page.at;
    if let Some(k) = page.plan.under(session, message, part) {
        subagent(page, k);
    }
}

/// One subagent session as a collapsed conversation: its messages rendered like the main
/// session's, with anchors of their own (`s<k>-m<n>`).
fn subagent(page: &mut Page, k: usize) {
    let children = page.children;
    let Some(child) = children.get(k) else {
        return;
    };
    let n = child.messages.len();
    let _ = write!(
        page.out,
        "<details class=\"subagent\" id=\"s{}\"><summary>Subagent conversation · ",
        k + 1
    );
    if let Some(title) = nonempty(&child.session, "title") {
        escape_into(&mut page.out, &one_line(title, 160));
        page.out.push_str(" · ");
    }
    let _ = write!(
        page.out,
        "{} message{}</summary>\n<div class=\"sub\">\n",
        thousands(n as u64),
        if n == 1 { "" } else { "s" }
    );
    // The child names its own model and agent on its first message; the parent goes on as it was.
    let saved = (page.at, page.last_model.take(), page.last_agent.take());
    for (i, m) in child.messages.iter().enumerate() {
        page.at = (k + 1, i, 0);
        message(page, i + 1, m);
    }
    (page.at, page.last_model, page.last_agent) = saved;
    page.out.push_str("</div></details>\n");
}

fn description(doc: &ShareData, s: &Summary) -> String {
    let mut d = format!("OpenCode session · {} messages", doc.messages.len());
    if let Some(m) = s.models.first() {
        d.push_str(" · ");
        d.push_str(clip(m, 80));
    }
    if let Some(p) = doc.messages.iter().find_map(prompt_text) {
        d.push_str(" · ");
        d.push_str(&one_line(p, 160));
    }
    d
}

/// `<!doctype>` through `<body>`.
/// `live`: the share page, which loads the live-follow script.
pub fn head(out: &mut String, title: &str, description: &str, share_url: Option<&str>, live: bool) {
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<title>");
    let title = one_line(title, 200);
    escape_into(out, &title);
    out.push_str("</title>\n<meta name=\"description\" content=\"");
    escape_into(out, description);
    out.push_str("\">\n<meta property=\"og:type\" content=\"article\">\n<meta property=\"og:title\" content=\"");
    escape_into(out, &title);
    out.push_str("\">\n<meta property=\"og:description\" content=\"");
    escape_into(out, description);
    out.push_str("\">\n");
    if let Some(url) = share_url {
        out.push_str("<meta property=\"og:url\" content=\"");
        escape_into(out, url);
        out.push_str("\">\n<link rel=\"alternate\" type=\"text/markdown\" href=\"");
        escape_into(out, url);
        out.push_str(".md\">\n");
    }
    out.push_str("<link rel=\"stylesheet\" href=\"");
    out.push_str(stylesheet_path());
    out.push_str("\">\n");
    if live {
        out.push_str(&super::live_script_tag());
        out.push('\n');
    }
    out.push_str("</head>\n<body>\n");
}

pub fn foot(out: &mut String, share_url: Option<&str>) {
    out.push_str("<footer class=\"foot\">Shared with bshare");
    if let Some(url) = share_url {
        out.push_str(" · <a href=\"");
        escape_into(out, url);
        out.push_str(".md\">Markdown</a> · <a href=\"#top\">Top</a>");
    }
    out.push_str("</footer>\n</body>\n</html>\n");
}

fn fact(out: &mut String, label: &str, value_html: &str) {
    out.push_str("<div><dt>");
    out.push_str(label);
    out.push_str("</dt><dd>");
    out.push_str(value_html);
    out.push_str("</dd></div>\n");
}

fn time_html(ms: i64, text: &str) -> String {
    let mut s = String::from("<time datetime=\"");
    s.push_str(&iso(ms).unwrap_or_default());
    s.push_str("\">");
    s.push_str(text);
    s.push_str("</time>");
    s
}

fn header(out: &mut String, s: &Summary) {
    out.push_str(
        "<header class=\"top\" id=\"top\">\n<p class=\"kicker\">OpenCode session</p>\n<h1>",
    );
    escape_into(out, s.title);
    out.push_str("</h1>\n<dl class=\"facts\">\n");
    if !s.models.is_empty() {
        let label = if s.models.len() == 1 {
            "Model"
        } else {
            "Models"
        };
        fact(out, label, &super::util::escape(&s.models.join(", ")));
    }
    if let Some(v) = s.version {
        fact(out, "OpenCode", &super::util::escape(v));
    }
    for (label, t) in [("Created", s.created), ("Updated", s.updated)] {
        if let Some((t, text)) = t.and_then(|t| Some((t, utc_datetime(t)?))) {
            fact(out, label, &time_html(t, &text));
        }
    }
    if let (Some(a), Some(b)) = (s.first, s.last)
        && b >= a
    {
        fact(out, "Duration", &duration(b.saturating_sub(a)));
    }
    // A document without any accounting says nothing rather than "$0.0000".
    if s.cost > 0.0 || !s.tokens.is_zero() {
        fact(out, "Cost", &money(s.cost));
        let t = s.tokens;
        let mut tokens = String::new();
        for (n, label) in [
            (t.input, "input"),
            (t.output, "output"),
            (t.reasoning, "reasoning"),
            (t.cache_read, "cache read"),
            (t.cache_write, "cache write"),
        ] {
            let _ = write!(tokens, "<span><b>{}</b> {label}</span> ", thousands(n));
        }
        fact(out, "Tokens", tokens.trim_end());
    }
    if s.subagents > 0 {
        let mut text = format!(
            "{} session{}",
            thousands(s.subagents as u64),
            if s.subagents == 1 { "" } else { "s" }
        );
        if s.subagent_cost > 0.0 {
            text.push_str(" · ");
            text.push_str(&money(s.subagent_cost));
        }
        fact(out, "Subagents", &text);
    }
    out.push_str("</dl>\n");
    files_changed(out, &s.files, "files");
    out.push_str("</header>\n");
}

/// "N secrets were removed before this was shared", from the document's redaction summary
/// (counts only: the values never left the sharer's machine).
fn redaction_note(out: &mut String, doc: &ShareData) {
    let Some(r) = &doc.redaction else { return };
    let total = r.counts.values().fold(0u64, |a, &n| a.saturating_add(n));
    if total == 0 {
        return;
    }
    let (noun, verb) = if total == 1 {
        ("secret", "was")
    } else {
        ("secrets", "were")
    };
    let _ = write!(
        out,
        "<p class=\"redacted-note\" id=\"redacted\">{} {noun} {verb} removed before this was shared (",
        thousands(total)
    );
    for (i, (rule, n)) in r.counts.iter().filter(|(_, n)| **n > 0).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        escape_into(out, rule);
        let _ = write!(out, " {}", thousands(*n));
    }
    out.push_str("). Each shows as <code>[REDACTED:…]</code>.</p>\n");
}

/// A collapsed list of changed files with their line counts.
fn files_changed(out: &mut String, files: &[FileChange], class: &str) {
    if files.is_empty() {
        return;
    }
    let (add, del) = files.iter().fold((0u64, 0u64), |(a, d), f| {
        (a.saturating_add(f.additions), d.saturating_add(f.deletions))
    });
    let _ = write!(
        out,
        "<details class=\"{class}\"><summary>{} file{} changed <span class=\"add\">+{}</span> <span class=\"del\">−{}</span></summary>\n<ul>\n",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        thousands(add),
        thousands(del)
    );
    for f in files {
        out.push_str("<li><code>");
        escape_into(out, f.file);
        let _ = writeln!(
            out,
            "</code> <span class=\"add\">+{}</span> <span class=\"del\">−{}</span></li>",
            thousands(f.additions),
            thousands(f.deletions)
        );
    }
    out.push_str("</ul></details>\n");
}

fn jump_list(out: &mut String, doc: &ShareData) {
    let prompts: Vec<(usize, &MessageWithParts)> = doc
        .messages
        .iter()
        .enumerate()
        .filter(|(_, m)| str_field(&m.info, "role") == Some("user"))
        .collect();
    if prompts.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<nav class=\"toc\"><details{}><summary>{} prompt{}</summary>\n<ol>\n",
        if prompts.len() <= 12 { " open" } else { "" },
        prompts.len(),
        if prompts.len() == 1 { "" } else { "s" }
    );
    for (i, m) in prompts {
        let _ = write!(out, "<li><a href=\"#m{}\">", i + 1);
        if let Some(t) = time_field(&m.info, "created").and_then(utc_time) {
            let _ = write!(out, "<time>{t}</time> ");
        }
        escape_into(out, &one_line(prompt_text(m).unwrap_or("(no text)"), 110));
        out.push_str("</a></li>\n");
    }
    out.push_str("</ol></details></nav>\n");
}

fn message<'a>(page: &mut Page<'a>, n: usize, m: &'a MessageWithParts) {
    let info = &m.info;
    let role = str_field(info, "role").unwrap_or("message");
    let class = match role {
        "user" => "user",
        "assistant" => "assistant",
        _ => "other",
    };
    // Messages of subagent sessions have anchors of their own, `s<k>-m<n>`; only the main
    // session's carry a `data-id` (what the live-follow script asks for what follows).
    let anchor = match page.at.0 {
        0 => format!("m{n}"),
        s => format!("s{s}-m{n}"),
    };
    let data_id = (page.at.0 == 0).then(|| message_id(m, n));
    let out = &mut page.out;
    let _ = match &data_id {
        Some(data_id) => write!(
            out,
            "<article class=\"msg {class}\" id=\"{anchor}\" data-id=\"{data_id}\">\n<div class=\"mh\"><a class=\"anchor\" href=\"#{anchor}\">#{n}</a> <span class=\"role\">"
        ),
        None => write!(
            out,
            "<article class=\"msg {class}\" id=\"{anchor}\">\n<div class=\"mh\"><a class=\"anchor\" href=\"#{anchor}\">#{n}</a> <span class=\"role\">"
        ),
    };
    match role {
        "user" => out.push_str("User"),
        "assistant" => out.push_str("Assistant"),
        other => escape_into(out, clip(other, 40)),
    }
    out.push_str("</span>");
    // Model and agent are named when they change, not on every step of a long run.
    if role == "assistant"
        && let Some(model) = model_name(info)
        && page.last_model.as_deref() != Some(model.as_str())
    {
        out.push_str(" <span class=\"model\">");
        escape_into(out, &model);
        out.push_str("</span>");
        page.last_model = Some(model);
    }
    if let Some(a) = nonempty(info, "agent").or_else(|| nonempty(info, "mode"))
        && page.last_agent != Some(a)
    {
        out.push_str(" <span class=\"agent\">");
        escape_into(out, clip(a, 60));
        out.push_str("</span>");
        page.last_agent = Some(a);
    }
    let created = time_field(info, "created");
    if let Some(t) = created
        && let Some(full) = utc_datetime(t)
    {
        let date = &full[..10];
        let text = if page.last_date.as_deref() == Some(date) {
            full[11..19].to_string()
        } else {
            page.last_date = Some(date.to_string());
            full.clone()
        };
        out.push_str(" <span class=\"when\">");
        out.push_str(&time_html(t, &text));
        if let Some(done) = time_field(info, "completed").filter(|d| *d >= t) {
            let _ = write!(out, " · {}", duration(done.saturating_sub(t)));
        }
        out.push_str("</span>");
    }
    out.push_str("</div>\n");
    for (i, part) in m.parts.iter().enumerate() {
        page.at.2 = i;
        self::part(page, part, role);
    }
    if let Some(err) = info.get("error").filter(|e| !e.is_null()) {
        message_error(&mut page.out, err);
    }
    if role == "user" {
        // What the work on this prompt changed, as OpenCode summarised it.
        let mut files = Vec::new();
        collect_diffs(
            info.get("summary").and_then(|s| s.get("diffs")),
            &mut files,
            &mut HashMap::new(),
        );
        files_changed(&mut page.out, &files, "files turn");
    }
    page.out.push_str("</article>\n");
}

/// An assistant error (aborted, API error...), shown after whatever the message produced.
fn message_error(out: &mut String, err: &Value) {
    let name = err
        .as_str()
        .or_else(|| nonempty(err, "name"))
        .unwrap_or("Error");
    let (class, label) = match name {
        "MessageAbortedError" => ("error aborted", "Aborted"),
        "APIError" => ("error", "API error"),
        "ProviderAuthError" => ("error", "Provider authentication error"),
        "MessageOutputLengthError" => ("error aborted", "Output length limit reached"),
        "UnknownError" => ("error", "Error"),
        _ => ("error", ""),
    };
    let data = err.get("data").unwrap_or(&Value::Null);
    let message = nonempty(data, "message").or_else(|| nonempty(err, "message"));
    let _ = write!(out, "<div class=\"{class}\"><strong>");
    if label.is_empty() {
        escape_into(out, clip(name, 80));
    } else {
        out.push_str(label);
    }
    out.push_str("</strong>");
    if let Some(code) = num_field(data, "statusCode") {
        let _ = write!(out, " <span class=\"badge\">HTTP {}</span>", code as i64);
    }
    if let Some(msg) = message {
        out.push_str("<pre class=\"out\">");
        escape_into(out, clip(msg, tools::OUTPUT_LIMIT));
        out.push_str("</pre>");
    } else if name == "MessageAbortedError" {
        out.push_str(" <span>The response was stopped before it finished.</span>");
    }
    out.push_str("</div>\n");
}

fn part(page: &mut Page, p: &Value, role: &str) {
    let ty = str_field(p, "type").unwrap_or("");
    match ty {
        "text" => text_part(page, p, role),
        "reasoning" => reasoning(page, p),
        "file" => tools::file_part(page, p),
        "tool" => tools::tool(page, p),
        "step-finish" => step_finish(&mut page.out, p),
        "patch" => patch(page, p),
        "agent" => note(
            &mut page.out,
            "Agent",
            nonempty(p, "name").unwrap_or("?"),
            None,
        ),
        "subtask" => tools::subtask(page, p),
        "retry" => retry(&mut page.out, p),
        "compaction" => {
            let auto = p.get("auto").and_then(Value::as_bool) == Some(true);
            page.out.push_str(if auto {
                "<div class=\"divider\">Conversation compacted automatically</div>\n"
            } else {
                "<div class=\"divider\">Conversation compacted</div>\n"
            });
        }
        // Bookkeeping with nothing for a reader.
        "step-start" | "snapshot" => {}
        _ => unknown(page, p, ty),
    }
}

fn text_part(page: &mut Page, p: &Value, role: &str) {
    let text = str_field(p, "text").unwrap_or("");
    if text.trim().is_empty() {
        return;
    }
    if is_synthetic(p) {
        // OpenCode adds these for attachments; the reader can open them, they do not shout.
        page.out
            .push_str("<details class=\"synthetic\"><summary>Added by OpenCode · ");
        escape_into(&mut page.out, &one_line(text, 80));
        page.out.push_str("</summary><pre class=\"out\">");
        escape_into(&mut page.out, clip(text, tools::OUTPUT_LIMIT));
        page.out.push_str("</pre></details>\n");
        return;
    }
    page.out.push_str(if role == "user" {
        "<div class=\"md prompt\">"
    } else {
        "<div class=\"md\">"
    });
    page.markdown(text);
    page.out.push_str("</div>\n");
}

fn reasoning(page: &mut Page, p: &Value) {
    let text = str_field(p, "text").unwrap_or("");
    if text.trim().is_empty() {
        return;
    }
    page.out
        .push_str("<details class=\"reasoning\"><summary>Thinking");
    if let (Some(a), Some(b)) = (time_field(p, "start"), time_field(p, "end"))
        && b >= a
    {
        let _ = write!(page.out, " · {}", duration(b.saturating_sub(a)));
    }
    page.out.push_str("</summary><div class=\"md\">");
    page.markdown(text);
    page.out.push_str("</div></details>\n");
}

fn step_finish(out: &mut String, p: &Value) {
    let tokens = Tokens::from_value(p.get("tokens"));
    let cost = num_field(p, "cost");
    if tokens.is_zero() && cost.is_none() {
        return;
    }
    out.push_str("<p class=\"step\">");
    if let Some(reason) = nonempty(p, "reason") {
        escape_into(out, clip(reason, 40));
        out.push_str(" · ");
    }
    out.push_str(&tokens.summary());
    if let Some(c) = cost {
        if !tokens.is_zero() {
            out.push_str(" · ");
        }
        out.push_str(&money(c));
    }
    out.push_str("</p>\n");
}

fn patch(page: &mut Page, p: &Value) {
    let files: Vec<&str> = p
        .get("files")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let out = &mut page.out;
    out.push_str("<p class=\"note\">Changed ");
    if files.is_empty() {
        out.push_str("files");
    }
    for (i, f) in files.iter().enumerate() {
        if i == 20 {
            let _ = write!(out, " and {} more", files.len() - 20);
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("<code>");
        escape_into(out, super::util::relative(f, page.dir));
        out.push_str("</code>");
    }
    if let Some(hash) = nonempty(p, "hash") {
        out.push_str(" <span class=\"muted\">snapshot ");
        escape_into(out, clip(hash, 8));
        out.push_str("</span>");
    }
    out.push_str("</p>\n");
}

fn note(out: &mut String, label: &str, value: &str, extra: Option<&str>) {
    out.push_str("<p class=\"note\">");
    out.push_str(label);
    out.push_str(" <b>");
    escape_into(out, clip(value, 200));
    out.push_str("</b>");
    if let Some(e) = extra {
        out.push(' ');
        escape_into(out, e);
    }
    out.push_str("</p>\n");
}

fn retry(out: &mut String, p: &Value) {
    out.push_str("<div class=\"error aborted\"><strong>Retry");
    if let Some(n) = num_field(p, "attempt") {
        let _ = write!(out, " {}", n as i64);
    }
    out.push_str("</strong>");
    let err = p.get("error").unwrap_or(&Value::Null);
    let msg = err
        .as_str()
        .or_else(|| err.get("data").and_then(|d| nonempty(d, "message")))
        .or_else(|| nonempty(err, "message"))
        .or_else(|| nonempty(err, "name"));
    if let Some(m) = msg {
        out.push_str(" <span>");
        escape_into(out, &one_line(m, 400));
        out.push_str("</span>");
    }
    out.push_str("</div>\n");
}

fn unknown(page: &mut Page, p: &Value, ty: &str) {
    let out = &mut page.out;
    out.push_str("<details class=\"unknown\"><summary>");
    if ty.is_empty() {
        out.push_str("Part of unknown shape");
    } else {
        out.push_str("Part <code>");
        escape_into(out, clip(ty, 60));
        out.push_str("</code>");
    }
    out.push_str("</summary><pre class=\"out\">");
    let json = super::util::pretty_json(p);
    escape_into(out, clip(&json, 4096));
    out.push_str("</pre></details>\n");
}
