//! Tool calls (bash, edit, write, read, grep, glob, list, webfetch, todowrite, task with the
//! subagent conversation it ran, and a generic view for the rest), subtasks and file attachments.

use std::fmt::Write as _;

use serde_json::Value;

use super::markdown;
use super::page::Page;
use super::util::{
    clip, count_field, duration, escape_into, nonempty, num_field, one_line, pretty_json, relative,
    str_field, syntax_token_for_path, thousands, time_field,
};

/// Most bytes of one tool output shown; the rest is counted, not rendered, so one runaway
/// command cannot make the page unusable.
pub const OUTPUT_LIMIT: usize = 96 * 1024;
/// Outputs longer than this many lines start collapsed.
const COLLAPSE_LINES: usize = 16;
/// Largest attached image shown inline (bytes of its data URL).
const IMAGE_LIMIT: usize = 256 * 1024;

const NULL: Value = Value::Null;

/// Appends a tool box's header line: name, title, extra badges and timing.
fn open_tool(
    page: &mut Page,
    class: &str,
    name: &str,
    title: Option<&str>,
    badges: &str,
    state: &Value,
) {
    let status = str_field(state, "status").unwrap_or("");
    let failed = status == "error";
    let out = &mut page.out;
    let _ = write!(
        out,
        "<div class=\"tool{}{}\">\n<div class=\"th\"><span class=\"tn\">",
        if failed { " failed" } else { "" },
        class
    );
    escape_into(out, clip(name, 80));
    out.push_str("</span>");
    if let Some(t) = title.filter(|t| !t.trim().is_empty()) {
        out.push_str("<span class=\"tt\">");
        escape_into(out, &one_line(t, 240));
        out.push_str("</span>");
    }
    out.push_str(badges);
    match status {
        "error" => out.push_str("<span class=\"badge bad\">error</span>"),
        "pending" | "running" => {
            out.push_str("<span class=\"badge\">");
            out.push_str(status);
            out.push_str("</span>");
        }
        _ => {}
    }
    if let (Some(a), Some(b)) = (time_field(state, "start"), time_field(state, "end"))
        && b >= a
    {
        let _ = write!(
            out,
            "<span class=\"dur\">{}</span>",
            duration(b.saturating_sub(a))
        );
    }
    out.push_str("</div>\n");
    if failed {
        out.push_str("<pre class=\"out err\">");
        let err = state.get("error").unwrap_or(&NULL);
        let text = err
            .as_str()
            .map_or_else(|| pretty_json(err), str::to_string);
        escape_into(out, clip(&text, OUTPUT_LIMIT));
        out.push_str("</pre>\n");
    }
}

fn close_tool(out: &mut String) {
    out.push_str("</div>\n");
}

/// Plain text output, collapsed behind a summary when long, cut at [`OUTPUT_LIMIT`].
fn output(out: &mut String, label: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    let lines = text.lines().count();
    let shown = clip(text, OUTPUT_LIMIT);
    let collapsed = lines > COLLAPSE_LINES || text.len() > 4096;
    if collapsed {
        let _ = write!(
            out,
            "<details><summary>{label} · {} lines</summary>",
            thousands(lines as u64)
        );
    }
    out.push_str("<pre class=\"out\">");
    escape_into(out, shown);
    if shown.len() < text.len() {
        let _ = write!(
            out,
            "\n… {} more bytes not shown",
            thousands((text.len() - shown.len()) as u64)
        );
    }
    out.push_str("</pre>");
    if collapsed {
        out.push_str("</details>");
    }
    out.push('\n');
}

/// Highlighted code, collapsed when long.
fn code(page: &mut Page, label: &str, text: &str, token: Option<&str>, open_lines: usize) {
    let lines = text.lines().count();
    let collapsed = lines > open_lines;
    if collapsed {
        let _ = write!(
            page.out,
            "<details><summary>{label} · {} lines</summary>",
            thousands(lines as u64)
        );
    }
    page.out.push_str("<pre class=\"code\"><code>");
    let shown = clip(text, OUTPUT_LIMIT);
    page.hl.code(&mut page.out, shown, token);
    if shown.len() < text.len() {
        let _ = write!(
            page.out,
            "\n… {} more bytes not shown",
            thousands((text.len() - shown.len()) as u64)
        );
    }
    page.out.push_str("</code></pre>");
    if collapsed {
        page.out.push_str("</details>");
    }
    page.out.push('\n');
}

fn text_of<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|k| str_field(v, k))
}

/// One `tool` part.
pub fn tool(page: &mut Page, p: &Value) {
    let name = nonempty(p, "tool").unwrap_or("tool");
    let state = p.get("state").filter(|s| s.is_object()).unwrap_or(&NULL);
    let input = state
        .get("input")
        .filter(|s| s.is_object())
        .unwrap_or(&NULL);
    let meta = state
        .get("metadata")
        .filter(|s| s.is_object())
        .unwrap_or(&NULL);
    let out_text = str_field(state, "output").unwrap_or("");
    let title = nonempty(state, "title");
    let dir = page.dir;
    let path = || text_of(input, &["filePath", "path"]).map(|p| relative(p, dir));
    match name {
        "bash" => {
            let exit = num_field(meta, "exit");
            let badge = match exit {
                Some(code) if code != 0.0 => {
                    format!("<span class=\"badge bad\">exit {}</span>", code as i64)
                }
                Some(_) => "<span class=\"badge ok\">exit 0</span>".to_string(),
                None => String::new(),
            };
            let description = nonempty(input, "description").or(title);
            open_tool(page, " t-bash", name, description, &badge, state);
            if let Some(cmd) = nonempty(input, "command") {
                page.out.push_str("<pre class=\"code cmd\"><code>");
                page.hl
                    .code(&mut page.out, clip(cmd, OUTPUT_LIMIT), Some("bash"));
                page.out.push_str("</code></pre>\n");
            }
            let text = text_of(meta, &["output"])
                .filter(|t| !t.is_empty())
                .unwrap_or(out_text);
            output(&mut page.out, "Output", text.trim_end_matches('\n'));
        }
        "edit" | "multiedit" => {
            let fd = meta.get("filediff").unwrap_or(&NULL);
            let diff = nonempty(meta, "diff").or_else(|| nonempty(fd, "patch"));
            let (mut add, mut del) = (count_field(fd, "additions"), count_field(fd, "deletions"));
            if fd.is_null()
                && let Some(d) = diff
            {
                (add, del) = count_diff(d);
            }
            let badge = if diff.is_some() || !fd.is_null() {
                format!(
                    "<span class=\"add\">+{}</span><span class=\"del\">−{}</span>",
                    thousands(add),
                    thousands(del)
                )
            } else {
                String::new()
            };
            open_tool(page, " t-edit", name, path().or(title), &badge, state);
            if let Some(d) = diff {
                render_diff(&mut page.out, d);
            } else if let (Some(old), Some(new)) =
                (str_field(input, "oldString"), str_field(input, "newString"))
            {
                // No diff recorded (a failed edit, an older OpenCode): show what was asked.
                let mut d = String::with_capacity(old.len() + new.len() + 16);
                for l in old.lines() {
                    d.push('-');
                    d.push_str(l);
                    d.push('\n');
                }
                for l in new.lines() {
                    d.push('+');
                    d.push_str(l);
                    d.push('\n');
                }
                render_diff(&mut page.out, &d);
            }
        }
        "write" => {
            let content = str_field(input, "content").unwrap_or("");
            let lines = content.lines().count();
            let badge = match lines {
                0 => "<span class=\"badge\">empty</span>".to_string(),
                1 => "<span class=\"badge\">1 line</span>".to_string(),
                n => format!("<span class=\"badge\">{} lines</span>", thousands(n as u64)),
            };
            open_tool(page, " t-write", name, path().or(title), &badge, state);
            let token = path().map(syntax_token_for_path);
            if !content.is_empty() {
                code(page, "Content", content, token, 40);
            }
        }
        "read" => {
            let mut label = path().or(title).unwrap_or("").to_string();
            if let Some(o) = num_field(input, "offset") {
                let _ = write!(label, " from line {}", o as i64);
            }
            open_tool(page, " t-read", name, Some(&label), "", state);
            let display = meta.get("display").unwrap_or(&NULL);
            let text = nonempty(display, "text").or_else(|| nonempty(meta, "preview"));
            if let Some(text) = text {
                let token = path().map(syntax_token_for_path);
                code(page, "Contents", text, token, 0);
            } else {
                output(&mut page.out, "Contents", out_text);
            }
        }
        "grep" | "glob" | "list" | "ls" | "codesearch" => {
            let pattern = text_of(input, &["pattern", "query"]);
            let mut badges = String::new();
            for key in ["include", "path"] {
                if let Some(v) = nonempty(input, key) {
                    badges.push_str("<span class=\"badge\">");
                    escape_into(&mut badges, &one_line(relative(v, dir), 80));
                    badges.push_str("</span>");
                }
            }
            if let Some(n) = num_field(meta, "matches").or_else(|| num_field(meta, "count")) {
                let n = n as i64;
                let _ = write!(
                    badges,
                    "<span class=\"badge\">{n} result{}</span>",
                    if n == 1 { "" } else { "s" }
                );
            }
            open_tool(page, " t-search", name, pattern.or(title), &badges, state);
            output(&mut page.out, "Results", out_text.trim_end_matches('\n'));
        }
        "webfetch" | "websearch" => {
            let url = text_of(input, &["url", "query"]);
            let mut badges = String::new();
            if let Some(f) = nonempty(input, "format") {
                badges.push_str("<span class=\"badge\">");
                escape_into(&mut badges, clip(f, 40));
                badges.push_str("</span>");
            }
            open_tool(page, " t-web", name, None, &badges, state);
            if let Some(u) = url {
                page.out.push_str("<p class=\"url\">");
                if let Some(href) = markdown::safe_href(u) {
                    markdown::open_link(&mut page.out, href);
                    escape_into(&mut page.out, clip(u, 2048));
                    page.out.push_str("</a>");
                } else {
                    escape_into(&mut page.out, clip(u, 2048));
                }
                page.out.push_str("</p>\n");
            }
            // Fetched pages are long and rarely what the reader came for.
            if !out_text.is_empty() {
                let lines = out_text.lines().count();
                let _ = write!(
                    page.out,
                    "<details><summary>Fetched content · {} lines</summary><pre class=\"out prose\">",
                    thousands(lines as u64)
                );
                escape_into(&mut page.out, clip(out_text, OUTPUT_LIMIT));
                page.out.push_str("</pre></details>\n");
            }
        }
        "todowrite" | "todoread" => {
            let todos = input
                .get("todos")
                .filter(|t| t.is_array())
                .or_else(|| meta.get("todos"))
                .and_then(Value::as_array);
            let done = todos.map_or(0, |t| {
                t.iter()
                    .filter(|t| str_field(t, "status") == Some("completed"))
                    .count()
            });
            let badge = todos.map_or(String::new(), |t| {
                format!("<span class=\"badge\">{done}/{} done</span>", t.len())
            });
            open_tool(page, " t-todo", name, Some("Todo list"), &badge, state);
            if let Some(todos) = todos {
                todo_list(&mut page.out, todos);
            } else {
                output(&mut page.out, "Output", out_text);
            }
        }
        "task" => {
            let mut badges = String::new();
            if let Some(a) = nonempty(input, "subagent_type") {
                badges.push_str("<span class=\"badge agent\">");
                escape_into(&mut badges, clip(a, 60));
                badges.push_str("</span>");
            }
            let description = nonempty(input, "description").or(title);
            open_tool(page, " t-task", name, description, &badges, state);
            if let Some(prompt) = nonempty(input, "prompt") {
                page.out
                    .push_str("<details><summary>Prompt</summary><div class=\"md\">");
                page.markdown(clip(prompt, OUTPUT_LIMIT));
                page.out.push_str("</div></details>\n");
            }
            let result = task_result(out_text);
            if !result.trim().is_empty() {
                page.out.push_str("<div class=\"md result\">");
                page.markdown(clip(result, OUTPUT_LIMIT));
                page.out.push_str("</div>\n");
            }
            super::page::nested_subagent(page);
        }
        _ => {
            open_tool(page, "", name, title, "", state);
            if !input.is_null() && input.as_object().is_some_and(|o| !o.is_empty()) {
                let json = pretty_json(input);
                code(page, "Input", &json, Some("json"), COLLAPSE_LINES);
            }
            output(&mut page.out, "Output", out_text);
        }
    }
    close_tool(&mut page.out);
}

/// The inside of a task tool's `<task ...><task_result>...</task_result></task>` output.
fn task_result(output: &str) -> &str {
    let Some(start) = output.find("<task_result>") else {
        return output;
    };
    let rest = &output[start + "<task_result>".len()..];
    rest.find("</task_result>")
        .map_or(rest, |end| &rest[..end])
        .trim()
}

fn todo_list(out: &mut String, todos: &[Value]) {
    out.push_str("<ul class=\"todos\">\n");
    for t in todos {
        let status = str_field(t, "status").unwrap_or("pending");
        let (class, mark) = match status {
            "completed" => ("done", "✓"),
            "in_progress" => ("doing", "▸"),
            "cancelled" => ("cancelled", "✕"),
            _ => ("pending", "○"),
        };
        let _ = write!(
            out,
            "<li class=\"{class}\"><span class=\"mark\">{mark}</span> "
        );
        escape_into(out, clip(str_field(t, "content").unwrap_or(""), 2000));
        if let Some(pr) = nonempty(t, "priority") {
            out.push_str(" <span class=\"prio\">");
            escape_into(out, clip(pr, 20));
            out.push_str("</span>");
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}

fn count_diff(diff: &str) -> (u64, u64) {
    let (mut a, mut d) = (0, 0);
    for l in diff.lines() {
        if l.starts_with('+') && !l.starts_with("+++") {
            a += 1;
        } else if l.starts_with('-') && !l.starts_with("---") {
            d += 1;
        }
    }
    (a, d)
}

/// A unified diff with added, removed and hunk lines coloured; file headers dropped (the tool
/// header names the file).
fn render_diff(out: &mut String, diff: &str) {
    let diff = clip(diff, OUTPUT_LIMIT);
    let lines = diff.lines().count();
    let collapsed = lines > 80;
    if collapsed {
        let _ = write!(
            out,
            "<details><summary>Diff · {} lines</summary>",
            thousands(lines as u64)
        );
    }
    out.push_str("<pre class=\"diff\">");
    for l in diff.lines() {
        if l.starts_with("Index: ")
            || l.starts_with("====")
            || l.starts_with("--- ")
            || l.starts_with("+++ ")
        {
            continue;
        }
        let class = match l.as_bytes().first() {
            Some(b'+') => Some("a"),
            Some(b'-') => Some("d"),
            Some(b'@') => Some("h"),
            _ => None,
        };
        if let Some(c) = class {
            let _ = write!(out, "<span class=\"{c}\">");
            escape_into(out, l);
            out.push_str("\n</span>");
        } else {
            escape_into(out, l);
            out.push('\n');
        }
    }
    out.push_str("</pre>");
    if collapsed {
        out.push_str("</details>");
    }
    out.push('\n');
}

/// A `subtask` part: work handed to another agent.
pub fn subtask(page: &mut Page, p: &Value) {
    let mut badges = String::new();
    if let Some(a) = nonempty(p, "agent") {
        badges.push_str("<span class=\"badge agent\">");
        escape_into(&mut badges, clip(a, 60));
        badges.push_str("</span>");
    }
    open_tool(
        page,
        " t-task",
        "subtask",
        nonempty(p, "description"),
        &badges,
        &NULL,
    );
    if let Some(prompt) = nonempty(p, "prompt") {
        page.out.push_str("<div class=\"md\">");
        page.markdown(clip(prompt, OUTPUT_LIMIT));
        page.out.push_str("</div>\n");
    }
    close_tool(&mut page.out);
}

/// Whether `url` is a raster image small enough to inline as it is.
fn inline_image(url: &str, mime: &str) -> bool {
    const KINDS: [&str; 5] = [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/avif",
    ];
    let Some(rest) = url.strip_prefix("data:") else {
        return false;
    };
    let Some((kind, data)) = rest.split_once(";base64,") else {
        return false;
    };
    url.len() <= IMAGE_LIMIT
        && KINDS.contains(&kind)
        && (mime.is_empty() || mime == kind)
        && data
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

/// A `file` part: an attachment. Small images are shown; everything else by name and type.
pub fn file_part(page: &mut Page, p: &Value) {
    let mime = str_field(p, "mime").unwrap_or("");
    let url = str_field(p, "url").unwrap_or("");
    let source_path = p.get("source").and_then(|s| nonempty(s, "path"));
    let name = nonempty(p, "filename")
        .or(source_path)
        .or_else(|| url.strip_prefix("file://"))
        .unwrap_or("attachment");
    let out = &mut page.out;
    out.push_str("<div class=\"file\"><span class=\"tn\">file</span> <b>");
    escape_into(out, clip(name, 300));
    out.push_str("</b>");
    if !mime.is_empty() {
        out.push_str(" <span class=\"badge\">");
        escape_into(out, clip(mime, 100));
        out.push_str("</span>");
    }
    let local = url
        .strip_prefix("file://")
        .or(source_path)
        .map(|p| relative(p, page.dir));
    if let Some(path) = local.filter(|l| *l != name) {
        out.push_str(" <code>");
        escape_into(out, clip(path, 300));
        out.push_str("</code>");
    }
    if inline_image(url, mime) {
        out.push_str("<img src=\"");
        out.push_str(url);
        out.push_str("\" alt=\"");
        escape_into(out, clip(name, 300));
        out.push_str("\" loading=\"lazy\">");
    } else if mime.starts_with("image/") && url.starts_with("data:") {
        let _ = write!(
            out,
            " <span class=\"muted\">image not shown ({} KB)</span>",
            url.len() / 1024
        );
    }
    out.push_str("</div>\n");
}
