//! The Markdown transcript (`/share/:id.md`): the same session as plain text, for agents,
//! `curl` and pasting into an issue. A subagent's conversation follows the `task` call that ran
//! it, as a quote (nested subagents as quotes within it).

use std::fmt::Write as _;

use serde_json::Value;

use super::page::{Summary, is_synthetic, model_name};
use super::util::{
    Tokens, duration, money, nonempty, num_field, one_line, pretty_json, str_field, time_field,
    utc_datetime,
};
use crate::model::{MessageWithParts, ShareData, SubagentPlan};

/// Renders the transcript. Message and tool text is passed through as written (it is
/// Markdown already); code and outputs go in fences long enough to hold them.
pub fn render_transcript_markdown(doc: &ShareData) -> String {
    let s = &doc.session;
    let mut out = String::with_capacity(4096 + doc.messages.len() * 1024);
    let title = one_line(nonempty(s, "title").unwrap_or("Untitled session"), 200);
    let _ = writeln!(out, "# {title}\n");
    if let Some(v) = nonempty(s, "version") {
        let _ = writeln!(out, "- OpenCode: {}", one_line(v, 40));
    }
    if let Some(t) = time_field(s, "created")
        .or(Some(doc.created_at))
        .and_then(utc_datetime)
    {
        let _ = writeln!(out, "- Created: {t}");
    }
    if let Some(t) = time_field(s, "updated")
        .or(Some(doc.updated_at))
        .and_then(utc_datetime)
    {
        let _ = writeln!(out, "- Updated: {t}");
    }
    if let Some(r) = &doc.redaction {
        let total = r.counts.values().fold(0u64, |a, &n| a.saturating_add(n));
        if total > 0 {
            let _ = writeln!(
                out,
                "- Redacted: {total} {} removed before this was shared",
                if total == 1 {
                    "secret was"
                } else {
                    "secrets were"
                }
            );
        }
    }
    let summary = Summary::of(doc);
    if !summary.models.is_empty() {
        let _ = writeln!(
            out,
            "- Models: {}",
            one_line(&summary.models.join(", "), 400)
        );
    }
    let _ = writeln!(
        out,
        "- Messages: {} ({} prompts)",
        doc.messages.len(),
        summary.prompts
    );
    let _ = writeln!(out, "- Cost: {}", money(summary.cost));
    let _ = writeln!(out, "- Tokens: {}", summary.tokens.summary());
    if summary.subagents > 0 {
        let _ = writeln!(
            out,
            "- Subagents: {} (cost {})",
            summary.subagents,
            money(summary.subagent_cost)
        );
    }
    if !summary.files.is_empty() {
        let _ = writeln!(out, "- Files changed:");
        for f in &summary.files {
            let _ = writeln!(
                out,
                "  - `{}` +{} −{}",
                one_line(f.file, 300).replace('`', "'"),
                f.additions,
                f.deletions
            );
        }
    }
    out.push('\n');

    let mut plan = SubagentPlan::of(doc);
    messages(&mut out, doc, &plan, 0, &doc.messages);
    let loose = std::mem::take(&mut plan.loose);
    if !loose.is_empty() {
        out.push_str("---\n\n_Subagent sessions not shown under a call:_\n\n");
        for k in loose {
            subagent(&mut out, doc, &plan, k);
        }
    }
    if doc.children_omitted > 0 {
        let n = doc.children_omitted;
        let _ = writeln!(
            out,
            "_{n} subagent session{} left out of this share: the document would have been over the size limit._\n",
            if n == 1 { " was" } else { "s were" }
        );
    }
    out
}

/// The messages of one session (0: the main one, `k + 1`: `children[k]`), each `task` call
/// followed by the conversation it ran.
fn messages(
    out: &mut String,
    doc: &ShareData,
    plan: &SubagentPlan,
    session: usize,
    list: &[MessageWithParts],
) {
    for (i, m) in list.iter().enumerate() {
        let info = &m.info;
        let role = str_field(info, "role").unwrap_or("message");
        let heading = match role {
            "user" => "User".to_string(),
            "assistant" => "Assistant".to_string(),
            other => one_line(other, 40),
        };
        let _ = write!(out, "---\n\n## {} · {heading}", i + 1);
        if role == "assistant"
            && let Some(model) = model_name(info)
        {
            let _ = write!(out, " ({})", one_line(&model, 80));
        }
        if let Some(t) = time_field(info, "created").and_then(utc_datetime) {
            let _ = write!(out, " · {t}");
        }
        out.push_str("\n\n");
        for (pi, p) in m.parts.iter().enumerate() {
            part(out, p);
            if let Some(k) = plan.under(session, i, pi) {
                subagent(out, doc, plan, k);
            }
        }
        if let Some(err) = info.get("error").filter(|e| !e.is_null()) {
            let name = err
                .as_str()
                .or_else(|| nonempty(err, "name"))
                .unwrap_or("Error");
            let msg = err
                .get("data")
                .and_then(|d| nonempty(d, "message"))
                .unwrap_or("");
            let _ = writeln!(
                out,
                "**Error: {}** {}\n",
                one_line(name, 80),
                one_line(msg, 2000)
            );
        }
    }
}

/// A subagent's conversation as a quote, so that it reads as nested in any Markdown viewer.
fn subagent(out: &mut String, doc: &ShareData, plan: &SubagentPlan, k: usize) {
    let Some(child) = doc.children.get(k) else {
        return;
    };
    let mut inner = String::new();
    let title = nonempty(&child.session, "title").unwrap_or("Subagent");
    let n = child.messages.len();
    let _ = writeln!(
        inner,
        "**Subagent conversation: {}** ({n} message{})\n",
        one_line(title, 200),
        if n == 1 { "" } else { "s" }
    );
    messages(&mut inner, doc, plan, k + 1, &child.messages);
    for line in inner.trim_end().lines() {
        out.push('>');
        if !line.is_empty() {
            out.push(' ');
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push('\n');
}

/// A fence of backticks longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    "`".repeat(longest.max(2) + 1)
}

fn block(out: &mut String, lang: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    let f = fence(text);
    let _ = writeln!(out, "{f}{lang}\n{}\n{f}\n", text.trim_end_matches('\n'));
}

fn part(out: &mut String, p: &Value) {
    match str_field(p, "type").unwrap_or("") {
        "text" => {
            let text = str_field(p, "text").unwrap_or("");
            if text.trim().is_empty() {
                return;
            }
            if is_synthetic(p) {
                out.push_str("_Added by OpenCode:_\n\n");
                block(out, "", text);
            } else {
                let _ = writeln!(out, "{}\n", text.trim_end());
            }
        }
        "reasoning" => {
            let text = str_field(p, "text").unwrap_or("").trim();
            if !text.is_empty() {
                out.push_str("> _Thinking:_\n");
                for l in text.lines() {
                    let _ = writeln!(out, "> {l}");
                }
                out.push('\n');
            }
        }
        "tool" => tool(out, p),
        "file" => {
            let name = nonempty(p, "filename").unwrap_or("attachment");
            let mime = nonempty(p, "mime").unwrap_or("");
            let _ = writeln!(
                out,
                "_Attached file:_ `{}` {}\n",
                one_line(name, 200).replace('`', "'"),
                one_line(mime, 100)
            );
        }
        "step-finish" => {
            let t = Tokens::from_value(p.get("tokens"));
            let cost = num_field(p, "cost").map(money).unwrap_or_default();
            if !t.is_zero() || !cost.is_empty() {
                let _ = writeln!(out, "_Step: {} · {cost}_\n", t.summary());
            }
        }
        "patch" => {
            let files: Vec<&str> = p
                .get("files")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let _ = writeln!(out, "_Changed: {}_\n", files.join(", "));
        }
        "agent" => {
            let _ = writeln!(
                out,
                "_Agent: {}_\n",
                one_line(nonempty(p, "name").unwrap_or("?"), 100)
            );
        }
        "subtask" => {
            let _ = writeln!(
                out,
                "**Subtask** ({}): {}\n",
                one_line(nonempty(p, "agent").unwrap_or("?"), 60),
                one_line(nonempty(p, "description").unwrap_or(""), 200)
            );
            block(out, "", str_field(p, "prompt").unwrap_or(""));
        }
        "retry" => {
            let n = num_field(p, "attempt").map_or(String::new(), |n| format!(" {}", n as i64));
            let _ = writeln!(out, "_Retry{n}_\n");
        }
        "compaction" => out.push_str("_Conversation compacted._\n\n"),
        "step-start" | "snapshot" => {}
        other => {
            let _ = writeln!(out, "_Part `{}`:_\n", one_line(other, 60).replace('`', "'"));
            block(out, "json", &pretty_json(p));
        }
    }
}

fn tool(out: &mut String, p: &Value) {
    let name = nonempty(p, "tool").unwrap_or("tool");
    let null = Value::Null;
    let state = p.get("state").unwrap_or(&null);
    let input = state.get("input").unwrap_or(&null);
    let meta = state.get("metadata").unwrap_or(&null);
    let status = str_field(state, "status").unwrap_or("");
    let title = nonempty(state, "title").unwrap_or("");
    let _ = write!(out, "**Tool: {}**", one_line(name, 80));
    if !title.is_empty() {
        let _ = write!(out, " — {}", one_line(title, 200));
    }
    if let (Some(a), Some(b)) = (time_field(state, "start"), time_field(state, "end"))
        && b >= a
    {
        let _ = write!(out, " ({})", duration(b.saturating_sub(a)));
    }
    if status != "completed" && !status.is_empty() {
        let _ = write!(out, " [{}]", one_line(status, 20));
    }
    out.push_str("\n\n");
    match name {
        "bash" => {
            block(out, "sh", str_field(input, "command").unwrap_or(""));
            let text = nonempty(meta, "output")
                .or_else(|| str_field(state, "output"))
                .unwrap_or("");
            block(out, "", text);
            if let Some(code) = num_field(meta, "exit") {
                let _ = writeln!(out, "Exit code: {}\n", code as i64);
            }
        }
        "edit" => block(out, "diff", nonempty(meta, "diff").unwrap_or("")),
        "write" => {
            let path = str_field(input, "filePath").unwrap_or("");
            let lang = path.rsplit_once('.').map_or("", |(_, e)| e);
            let lang = if lang.chars().all(|c| c.is_ascii_alphanumeric()) {
                lang
            } else {
                ""
            };
            block(out, lang, str_field(input, "content").unwrap_or(""));
        }
        "todowrite" | "todoread" => {
            if let Some(todos) = input.get("todos").and_then(Value::as_array) {
                for t in todos {
                    let mark = match str_field(t, "status") {
                        Some("completed") => "[x]",
                        Some("in_progress") => "[-]",
                        Some("cancelled") => "[~]",
                        _ => "[ ]",
                    };
                    let _ = writeln!(
                        out,
                        "- {mark} {}",
                        one_line(str_field(t, "content").unwrap_or(""), 500)
                    );
                }
                out.push('\n');
            }
        }
        _ => {
            if input.as_object().is_some_and(|o| !o.is_empty()) {
                block(out, "json", &pretty_json(input));
            }
            block(out, "", str_field(state, "output").unwrap_or(""));
        }
    }
    if status == "error" {
        let err = state.get("error").unwrap_or(&null);
        let text = err
            .as_str()
            .map_or_else(|| pretty_json(err), str::to_string);
        out.push_str("Error:\n\n");
        block(out, "", &text);
    }
}
