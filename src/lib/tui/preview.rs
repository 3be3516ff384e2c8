//! The preview pane: a ShareData document as styled terminal lines (markdown, syntax-highlighted
//! code, tool calls), built lazily.
//!
//! A document is cut into blocks (a header, then one block per message, then one per subagent
//! session no call names, and a note when subagents were left out). A subagent's conversation is
//! part of the block of the message whose `task` call ran it, indented under a bar. A block is turned into
//! wrapped, highlighted lines the first time the visible window reaches it, and kept until the pane
//! changes width; drawing copies only the visible lines into the buffer. So a frame costs the
//! lines on screen, and highlighting a message happens once, not on every frame.

use std::cell::RefCell;
use std::sync::LazyLock;

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use serde_json::Value;
use syntect::easy::HighlightLines;
use syntect::highlighting::Theme;
use syntect::parsing::{SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::fmt::{clean, date_time};
use crate::model::{MessageWithParts, ShareData, SubagentPlan};

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(two_face::syntax::extra_newlines);
static THEME: LazyLock<Theme> = LazyLock::new(|| {
    two_face::theme::extra()
        .get(two_face::theme::EmbeddedThemeName::Base16OceanDark)
        .clone()
});

/// Loads the syntax set and the theme, which takes a noticeable moment; called on a background
/// thread at start so the first preview does not pay for it.
pub fn warm_up() {
    LazyLock::force(&SYNTAXES);
    LazyLock::force(&THEME);
}

/// Tool output longer than this is cut, with a note saying how much was left out.
const MAX_TOOL_LINES: usize = 40;

const DIM: Style = Style::new().fg(Color::DarkGray);
const CODE_INLINE: Style = Style::new().fg(Color::Yellow);

/// A document ready to be shown, with its lines built on demand.
pub struct Preview {
    doc: ShareData,
    /// Where each subagent session is shown (the same plan as the page's).
    plan: SubagentPlan,
    cache: RefCell<Cache>,
}

#[derive(Default)]
struct Cache {
    width: u16,
    /// Lines of blocks 0..blocks.len(); block 0 is the header, block i+1 is message i.
    blocks: Vec<Vec<Line<'static>>>,
    /// First line of each built block.
    starts: Vec<usize>,
    total: usize,
}

impl Preview {
    pub fn new(doc: ShareData) -> Self {
        Self {
            plan: SubagentPlan::of(&doc),
            doc,
            cache: RefCell::new(Cache::default()),
        }
    }

    pub fn document(&self) -> &ShareData {
        &self.doc
    }

    fn block_count(&self) -> usize {
        self.doc.messages.len()
            + 1
            + self.plan.loose.len()
            + usize::from(self.doc.children_omitted > 0)
    }

    /// Draws the lines from `scroll` on into `area`; answers the scroll position actually used
    /// (clamped once the end of the document is known) and whether the end is on screen.
    pub fn render(&self, area: Rect, buf: &mut Buffer, scroll: usize) -> (usize, bool) {
        let width = area.width;
        let height = area.height as usize;
        let mut cache = self.cache.borrow_mut();
        if cache.width != width {
            *cache = Cache {
                width,
                ..Cache::default()
            };
        }
        let wanted = scroll.saturating_add(height);
        while cache.total < wanted && cache.blocks.len() < self.block_count() {
            let lines = self.build_block(cache.blocks.len(), width as usize);
            let start = cache.total;
            cache.starts.push(start);
            cache.total += lines.len();
            cache.blocks.push(lines);
        }
        let complete = cache.blocks.len() == self.block_count();
        let scroll = if complete {
            scroll.min(cache.total.saturating_sub(height))
        } else {
            scroll
        };
        // The block holding the first visible line.
        let mut block = cache
            .starts
            .partition_point(|&s| s <= scroll)
            .saturating_sub(1);
        let mut line = scroll - cache.starts.get(block).copied().unwrap_or(0);
        for y in 0..area.height {
            let Some(lines) = cache.blocks.get(block) else {
                break;
            };
            if let Some(l) = lines.get(line) {
                buf.set_line(area.x, area.y + y, l, width);
                line += 1;
            }
            if line >= lines.len() {
                block += 1;
                line = 0;
            }
        }
        let at_end = complete && scroll + height >= cache.total;
        (scroll, at_end)
    }

    /// Lines built so far (for tests and the benchmark).
    pub fn built_blocks(&self) -> usize {
        self.cache.borrow().blocks.len()
    }

    fn build_block(&self, index: usize, width: usize) -> Vec<Line<'static>> {
        let mut out = Out::new(width.max(10));
        let n = self.doc.messages.len();
        if index == 0 {
            header(&self.doc, &mut out);
        } else if index <= n {
            message(
                self,
                (0, index - 1),
                &self.doc.messages[index - 1],
                &mut out,
            );
        } else if let Some(&k) = self.plan.loose.get(index - n - 1) {
            subagent(self, k, &mut out);
        } else {
            let left = self.doc.children_omitted;
            out.text(
                &format!(
                    "{left} subagent session{} left out of this share (over the document limit)",
                    if left == 1 { " was" } else { "s were" }
                ),
                DIM,
                &[],
                &[],
            );
        }
        out.lines
    }
}

/// A subagent's conversation, indented under a bar: its messages built like the main session's
/// into a narrower `Out`, then each line prefixed.
fn subagent(preview: &Preview, k: usize, out: &mut Out) {
    let Some(child) = preview.doc.children.get(k) else {
        return;
    };
    let bar = Style::new().fg(Color::Blue);
    let mut inner = Out::new(out.width.saturating_sub(2).max(10));
    let title = str_at(&child.session, &["title"]).unwrap_or("subagent");
    let n = child.messages.len();
    inner.wrap(
        vec![
            Span::styled("Subagent ".to_owned(), bar.add_modifier(Modifier::BOLD)),
            Span::styled(clean(title), Style::new().add_modifier(Modifier::BOLD)),
            Span::styled(
                format!(" · {n} message{}", if n == 1 { "" } else { "s" }),
                DIM,
            ),
        ],
        &[],
        &[],
    );
    for (i, m) in child.messages.iter().enumerate() {
        message(preview, (k + 1, i), m, &mut inner);
    }
    while inner.lines.last().is_some_and(|l| l.width() == 0) {
        inner.lines.pop();
    }
    for line in inner.lines {
        let mut spans = vec![Span::styled("┃ ", bar)];
        spans.extend(line.spans);
        out.lines.push(Line::from(spans));
    }
    out.blank();
}

/// Collects wrapped lines for one block.
struct Out {
    width: usize,
    lines: Vec<Line<'static>>,
}

impl Out {
    fn new(width: usize) -> Self {
        Self {
            width,
            lines: Vec::new(),
        }
    }

    fn blank(&mut self) {
        if self.lines.last().is_some_and(|l| l.width() > 0) {
            self.lines.push(Line::default());
        }
    }

    /// Word-wraps `spans` to the width; `first` starts the first line, `rest` the others.
    fn wrap(&mut self, spans: Vec<Span<'static>>, first: &[Span<'static>], rest: &[Span<'static>]) {
        let width = self.width;
        let mut line: Vec<Span<'static>> = first.to_vec();
        let mut used: usize = first.iter().map(Span::width).sum();
        let mut fresh = true; // nothing but the prefix on the line yet
        let rest_width: usize = rest.iter().map(Span::width).sum();
        for span in spans {
            let style = span.style;
            for token in split_words(&span.content) {
                let w = token.width();
                let is_space = token.chars().all(char::is_whitespace);
                if used + w > width && !fresh {
                    self.lines.push(Line::from(std::mem::take(&mut line)));
                    line = rest.to_vec();
                    used = rest_width;
                    fresh = true;
                    if is_space {
                        continue;
                    }
                }
                if used + w <= width {
                    push_span(&mut line, token, style);
                    used += w;
                    fresh = false;
                    continue;
                }
                // A word longer than a whole line: cut it by characters.
                let mut piece = String::new();
                for c in token.chars() {
                    let cw = c.width().unwrap_or(0);
                    if used + cw > width && (!piece.is_empty() || !fresh) {
                        push_span(&mut line, &piece, style);
                        piece.clear();
                        self.lines.push(Line::from(std::mem::take(&mut line)));
                        line = rest.to_vec();
                        used = rest_width;
                    }
                    piece.push(c);
                    used += cw;
                    fresh = false;
                }
                push_span(&mut line, &piece, style);
            }
        }
        self.lines.push(Line::from(line));
    }

    fn text(&mut self, text: &str, style: Style, first: &[Span<'static>], rest: &[Span<'static>]) {
        for l in text.lines() {
            self.wrap(vec![Span::styled(clean(l), style)], first, rest);
        }
    }

    /// Highlighted code (or tool output), cut after `max` lines, behind `prefix`.
    fn code(
        &mut self,
        code: &str,
        syntax: Option<&SyntaxReference>,
        prefix: &[Span<'static>],
        max: usize,
    ) {
        let total = code.lines().count();
        let shown: String = if total > max {
            code.lines().take(max).flat_map(|l| [l, "\n"]).collect()
        } else {
            code.to_owned()
        };
        for spans in highlight(&shown, syntax) {
            self.wrap(spans, prefix, prefix);
        }
        if total > max {
            let mut note = prefix.to_vec();
            note.push(Span::styled(format!("… {} more lines", total - max), DIM));
            self.lines.push(Line::from(note));
        }
    }
}

fn push_span(line: &mut Vec<Span<'static>>, text: &str, style: Style) {
    if text.is_empty() {
        return;
    }
    if let Some(last) = line.last_mut()
        && last.style == style
    {
        last.content.to_mut().push_str(text);
        return;
    }
    line.push(Span::styled(text.to_owned(), style));
}

/// Splits text into runs of whitespace and runs of anything else, keeping both.
fn split_words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let space = first.is_whitespace();
        let end = rest
            .char_indices()
            .find(|&(_, c)| c.is_whitespace() != space)
            .map_or(rest.len(), |(i, _)| i);
        let (token, tail) = rest.split_at(end);
        rest = tail;
        Some(token)
    })
}

/// The syntax for a fenced block's language or a file's name.
fn syntax_for(hint: &str) -> Option<&'static SyntaxReference> {
    let hint = hint.trim();
    if hint.is_empty() {
        return None;
    }
    let ext = hint.rsplit_once('.').map_or(hint, |(_, e)| e);
    SYNTAXES
        .find_syntax_by_token(hint)
        .or_else(|| SYNTAXES.find_syntax_by_extension(ext))
        .or_else(|| SYNTAXES.find_syntax_by_token(&hint.to_ascii_lowercase()))
}

/// Highlights `code` line by line; plain when no syntax is known.
fn highlight(code: &str, syntax: Option<&SyntaxReference>) -> Vec<Vec<Span<'static>>> {
    let Some(syntax) = syntax else {
        return code.lines().map(|l| vec![Span::raw(clean(l))]).collect();
    };
    let mut h = HighlightLines::new(syntax, &THEME);
    let mut out = Vec::new();
    for line in LinesWithEndings::from(code) {
        match h.highlight_line(line, &SYNTAXES) {
            Ok(ranges) => out.push(
                ranges
                    .into_iter()
                    .filter_map(|(style, text)| {
                        let text = clean(text.trim_end_matches(['\n', '\r']));
                        (!text.is_empty()).then(|| {
                            let c = style.foreground;
                            Span::styled(text, Style::new().fg(Color::Rgb(c.r, c.g, c.b)))
                        })
                    })
                    .collect(),
            ),
            // A grammar that fails on some input must not hide the text.
            Err(_) => out.push(vec![Span::raw(clean(line.trim_end()))]),
        }
    }
    out
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn header(doc: &ShareData, out: &mut Out) {
    let title = str_at(&doc.session, &["title"]).unwrap_or("(untitled session)");
    out.wrap(
        vec![Span::styled(
            clean(title),
            Style::new().add_modifier(Modifier::BOLD),
        )],
        &[],
        &[],
    );
    let mut facts = format!(
        "{} · {} messages · shared {}",
        doc.share_id,
        doc.messages.len(),
        date_time(doc.created_at)
    );
    if let Some(dir) = str_at(&doc.session, &["directory"]) {
        facts.push_str(" · ");
        facts.push_str(dir);
    }
    out.text(&facts, DIM, &[], &[]);
    out.lines.push(Line::default());
}

/// One message; `at` is its session (0: the main one, `k + 1`: `children[k]`) and its index
/// there, where the plan finds the subagent conversations of its `task` calls.
fn message(preview: &Preview, at: (usize, usize), m: &MessageWithParts, out: &mut Out) {
    let role = str_at(&m.info, &["role"]).unwrap_or("message");
    let (label, color) = match role {
        "user" => ("You".to_owned(), Color::Cyan),
        "assistant" => {
            let model = str_at(&m.info, &["modelID"]).unwrap_or("assistant");
            (format!("Assistant · {model}"), Color::Magenta)
        }
        other => (other.to_owned(), Color::Gray),
    };
    let mut head = vec![Span::styled(
        format!("▍{label}"),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    )];
    if let Some(t) = m
        .info
        .get("time")
        .and_then(|t| t.get("created"))
        .and_then(Value::as_i64)
    {
        head.push(Span::styled(format!("  {}", date_time(t)), DIM));
    }
    out.lines.push(Line::from(head));
    if let Some(err) = m.info.get("error") {
        let text = str_at(err, &["data", "message"])
            .or_else(|| str_at(err, &["name"]))
            .unwrap_or("error");
        out.text(
            text,
            Style::new().fg(Color::Red),
            &[Span::raw("✗ ")],
            &[Span::raw("  ")],
        );
    }
    for (pi, part) in m.parts.iter().enumerate() {
        let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
        // OpenCode adds the contents of attached files as synthetic text; the page shows them
        // as attachments, and so does the preview.
        if part.get("synthetic").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        match kind {
            "text" => {
                if let Some(text) = part.get("text").and_then(Value::as_str) {
                    markdown(text, Style::new(), out);
                }
            }
            "reasoning" => {
                if let Some(text) = part.get("text").and_then(Value::as_str)
                    && !text.trim().is_empty()
                {
                    let style = DIM.add_modifier(Modifier::ITALIC);
                    out.text(text, style, &[Span::styled("Thinking: ", style)], &[]);
                    out.blank();
                }
            }
            "tool" => {
                tool(part, out);
                out.blank();
                if let Some(k) = preview.plan.under(at.0, at.1, pi) {
                    subagent(preview, k, out);
                }
            }
            "file" => {
                let name = str_at(part, &["filename"])
                    .or_else(|| str_at(part, &["url"]))
                    .unwrap_or("file");
                let mime = str_at(part, &["mime"]).unwrap_or("");
                out.text(&format!("📎 {name} {mime}"), DIM, &[], &[]);
                out.blank();
            }
            "patch" => {
                let files: Vec<&str> = part
                    .get("files")
                    .and_then(Value::as_array)
                    .map(|f| f.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                if !files.is_empty() {
                    out.text(&format!("changed {}", files.join(", ")), DIM, &[], &[]);
                    out.blank();
                }
            }
            // step-start, step-finish, snapshot, agent, retry, compaction and part types newer
            // than this reader carry nothing a reader of the conversation needs.
            _ => {}
        }
    }
    out.blank();
}

fn tool(part: &Value, out: &mut Out) {
    let name = str_at(part, &["tool"]).unwrap_or("tool");
    let state = part.get("state").unwrap_or(&Value::Null);
    let status = str_at(state, &["status"]).unwrap_or("");
    let input = state.get("input").unwrap_or(&Value::Null);
    let summary = match name {
        "bash" => str_at(input, &["description"]).or_else(|| str_at(input, &["command"])),
        "task" => str_at(input, &["description"]),
        "webfetch" => str_at(input, &["url"]),
        "glob" | "grep" => str_at(input, &["pattern"]),
        "read" | "edit" | "write" => str_at(input, &["filePath"]),
        _ => None,
    }
    .or_else(|| str_at(state, &["title"]))
    .unwrap_or("");
    let marker = match status {
        "error" => Span::styled("✗ ", Style::new().fg(Color::Red)),
        "pending" | "running" => Span::styled("… ", DIM),
        _ => Span::styled("⚙ ", Style::new().fg(Color::Blue)),
    };
    out.wrap(
        vec![
            Span::styled(name.to_owned(), Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(" "),
            Span::styled(clean(summary), DIM),
        ],
        &[marker],
        &[Span::raw("  ")],
    );
    let bar = [Span::styled("  │ ", DIM)];
    if status == "error" {
        let err = str_at(state, &["error"]).unwrap_or("failed");
        out.text(err, Style::new().fg(Color::Red), &bar, &bar);
        return;
    }
    let output = str_at(state, &["output"]).unwrap_or("");
    let metadata = state.get("metadata").unwrap_or(&Value::Null);
    let file_syntax = str_at(input, &["filePath"]).and_then(syntax_for);
    match name {
        "bash" => {
            if let Some(cmd) = str_at(input, &["command"]) {
                out.text(
                    cmd,
                    Style::new().fg(Color::Green),
                    &[Span::styled("  $ ", DIM)],
                    &bar,
                );
            }
            let text = str_at(metadata, &["output"]).unwrap_or(output);
            out.code(text, None, &bar, MAX_TOOL_LINES);
            if let Some(code) = metadata.get("exit").and_then(Value::as_i64)
                && code != 0
            {
                out.text(
                    &format!("exit {code}"),
                    Style::new().fg(Color::Red),
                    &bar,
                    &bar,
                );
            }
        }
        "edit" => {
            if let Some(diff) = str_at(metadata, &["diff"]) {
                out.code(diff, syntax_for("diff"), &bar, MAX_TOOL_LINES);
            }
        }
        "write" => {
            if let Some(content) = str_at(input, &["content"]) {
                out.code(content, file_syntax, &bar, MAX_TOOL_LINES);
            }
        }
        "read" => {
            if let Some(preview) = str_at(metadata, &["preview"]) {
                out.code(preview, file_syntax, &bar, MAX_TOOL_LINES / 2);
            }
        }
        "todowrite" | "todoread" => {
            let todos = input
                .get("todos")
                .or_else(|| metadata.get("todos"))
                .and_then(Value::as_array);
            for todo in todos.into_iter().flatten() {
                let mark = match str_at(todo, &["status"]) {
                    Some("completed") => "[x] ",
                    Some("in_progress") => "[~] ",
                    Some("cancelled") => "[-] ",
                    _ => "[ ] ",
                };
                let content = str_at(todo, &["content"]).unwrap_or("");
                let mut first = bar.to_vec();
                first.push(Span::raw(mark));
                out.text(content, Style::new(), &first, &bar);
            }
        }
        "task" => {
            if let Some(prompt) = str_at(input, &["prompt"]) {
                out.text(prompt, DIM, &bar, &bar);
            }
            out.code(task_result(output), None, &bar, MAX_TOOL_LINES / 2);
        }
        _ => out.code(output, None, &bar, MAX_TOOL_LINES / 2),
    }
}

/// The subagent's answer inside a task call's `<task ...><task_result>...</task_result></task>`.
fn task_result(output: &str) -> &str {
    let Some(start) = output.find("<task_result>") else {
        return output;
    };
    let rest = &output[start + "<task_result>".len()..];
    rest.find("</task_result>")
        .map_or(rest, |end| &rest[..end])
        .trim()
}

/// Markdown as terminal lines: headings, emphasis, inline code, fenced code highlighted by its
/// language, lists, quotes, tables and rules.
fn markdown(text: &str, base: Style, out: &mut Out) {
    let mut md = Markdown {
        out,
        styles: vec![base],
        spans: Vec::new(),
        prefix: Vec::new(),
        marker: None,
        lists: Vec::new(),
        code: None,
        table: None,
        link: None,
    };
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    for event in Parser::new_ext(text, options) {
        md.event(event);
    }
    md.flush();
    md.out.blank();
}

struct Markdown<'o> {
    out: &'o mut Out,
    styles: Vec<Style>,
    /// The paragraph being collected.
    spans: Vec<Span<'static>>,
    /// Quote bars and list indentation in force.
    prefix: Vec<Span<'static>>,
    /// A list item's bullet, used by the item's first line only.
    marker: Option<Span<'static>>,
    lists: Vec<Option<u64>>,
    code: Option<(String, String)>,
    table: Option<Table>,
    link: Option<String>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    head_rows: usize,
    in_head: bool,
}

impl Markdown<'_> {
    fn style(&self) -> Style {
        self.styles.last().copied().unwrap_or_default()
    }

    fn push_style(&mut self, f: impl FnOnce(Style) -> Style) {
        let s = f(self.style());
        self.styles.push(s);
    }

    fn flush(&mut self) {
        if self.spans.is_empty() && self.marker.is_none() {
            return;
        }
        let spans = std::mem::take(&mut self.spans);
        let rest = self.prefix.clone();
        let mut first = self.prefix.clone();
        if let Some(m) = self.marker.take() {
            // The marker replaces the indentation its item added to the prefix.
            let w = m.width();
            let trimmed = first.len().saturating_sub(usize::from(w > 0));
            first.truncate(trimmed);
            first.push(m);
        }
        self.out.wrap(spans, &first, &rest);
    }

    fn add_text(&mut self, text: &str, style: Style) {
        if let Some(table) = &mut self.table {
            if let Some(cell) = table.rows.last_mut().and_then(|r| r.last_mut()) {
                cell.push_str(text);
            }
            return;
        }
        self.spans.push(Span::styled(clean(text), style));
    }

    fn event(&mut self, event: Event<'_>) {
        if let Some((_, code)) = &mut self.code {
            match event {
                Event::Text(t) => code.push_str(&t),
                Event::End(TagEnd::CodeBlock) => {
                    let (lang, code) = self.code.take().unwrap_or_default();
                    let mut prefix = self.prefix.clone();
                    prefix.push(Span::raw("  "));
                    self.out.code(&code, syntax_for(&lang), &prefix, usize::MAX);
                    self.out.blank();
                }
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                let s = self.style();
                self.add_text(&t, s);
            }
            Event::Code(t) => {
                let s = self.style().patch(CODE_INLINE);
                self.add_text(&t, s);
            }
            Event::Html(t) | Event::InlineHtml(t) => self.add_text(&t, DIM),
            Event::SoftBreak => self.add_text(" ", Style::new()),
            Event::HardBreak => self.flush(),
            Event::Rule => {
                self.flush();
                let w = self.out.width;
                self.out.lines.push(Line::styled("─".repeat(w), DIM));
                self.out.blank();
            }
            Event::TaskListMarker(done) => {
                let s = self.style();
                self.add_text(if done { "[x] " } else { "[ ] " }, s);
            }
            _ => {}
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Heading { level, .. } => {
                self.flush();
                let color = if level == HeadingLevel::H1 {
                    Color::Cyan
                } else {
                    Color::Blue
                };
                self.push_style(|s| s.fg(color).add_modifier(Modifier::BOLD));
                let hashes = "#".repeat(level as usize);
                let s = self.style();
                self.add_text(&format!("{hashes} "), s);
            }
            Tag::BlockQuote(_) => {
                self.flush();
                self.prefix.push(Span::styled("│ ", DIM));
            }
            Tag::CodeBlock(kind) => {
                self.flush();
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => {
                        info.split([' ', ',', '{']).next().unwrap_or("").to_owned()
                    }
                    CodeBlockKind::Indented => String::new(),
                };
                self.code = Some((lang, String::new()));
            }
            Tag::List(start) => {
                self.flush();
                self.lists.push(start);
            }
            Tag::Item => {
                self.flush();
                let depth = self.lists.len().saturating_sub(1);
                let bullet = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let b = format!("{n}. ");
                        *n += 1;
                        b
                    }
                    _ => ["• ", "◦ ", "▪ "][depth % 3].to_owned(),
                };
                let w = bullet.width();
                self.prefix.push(Span::raw(" ".repeat(w)));
                self.marker = Some(Span::styled(bullet, Style::new().fg(Color::Blue)));
            }
            Tag::Emphasis => self.push_style(|s| s.add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.push_style(|s| s.add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self.push_style(|s| s.add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.link = Some(dest_url.into_string());
                self.push_style(|s| s.fg(Color::Blue).add_modifier(Modifier::UNDERLINED));
            }
            Tag::Table(_) => {
                self.flush();
                self.table = Some(Table::default());
            }
            Tag::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_head = true;
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => {
                if let Some(row) = self.table.as_mut().and_then(|t| t.rows.last_mut()) {
                    row.push(String::new());
                }
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush();
                if self.lists.is_empty() {
                    self.out.blank();
                }
            }
            TagEnd::Heading(_) => {
                self.flush();
                self.styles.pop();
                self.out.blank();
            }
            TagEnd::BlockQuote(_) => {
                self.flush();
                self.prefix.pop();
                self.out.blank();
            }
            TagEnd::Item => {
                self.flush();
                self.prefix.pop();
            }
            TagEnd::List(_) => {
                self.flush();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.out.blank();
                }
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.styles.pop();
            }
            TagEnd::Link => {
                self.styles.pop();
                if let Some(url) = self.link.take() {
                    let shown: String = self.spans.iter().map(|s| s.content.as_ref()).collect();
                    if !shown.ends_with(url.as_str()) {
                        self.add_text(&format!(" ({url})"), DIM);
                    }
                }
            }
            TagEnd::TableHead => {
                if let Some(t) = &mut self.table {
                    t.in_head = false;
                    t.head_rows = t.rows.len();
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    self.table(&t);
                }
            }
            _ => {}
        }
    }

    fn table(&mut self, t: &Table) {
        let cols = t.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for row in &t.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.width());
            }
        }
        for (r, row) in t.rows.iter().enumerate() {
            let style = if r < t.head_rows {
                Style::new().add_modifier(Modifier::BOLD)
            } else {
                Style::new()
            };
            let mut spans = Vec::new();
            for (i, w) in widths.iter().enumerate() {
                if i > 0 {
                    spans.push(Span::styled(" │ ", DIM));
                }
                let cell = row.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(cell.width());
                spans.push(Span::styled(
                    format!("{}{}", clean(cell), " ".repeat(pad)),
                    style,
                ));
            }
            let prefix = self.prefix.clone();
            self.out.wrap(spans, &prefix, &prefix);
            if r + 1 == t.head_rows {
                let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
                self.out
                    .lines
                    .push(Line::from(vec![Span::styled(rule.join("─┼─"), DIM)]));
            }
        }
        self.out.blank();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_text(lines: &[Line<'_>]) -> Vec<String> {
        lines
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect()
    }

    fn md(text: &str, width: usize) -> Vec<String> {
        let mut out = Out::new(width);
        markdown(text, Style::new(), &mut out);
        lines_text(&out.lines)
    }

    #[test]
    fn wraps_words_and_cuts_long_ones() {
        let text = md("one two three four five six seven", 12);
        assert_eq!(text, ["one two ", "three four ", "five six ", "seven", ""]);
        let text = md("abcdefghijklmnopqrstuvwxyz", 10);
        assert_eq!(text[..3], ["abcdefghij", "klmnopqrst", "uvwxyz"]);
    }

    #[test]
    fn markdown_structure() {
        let text = md(
            "# Title\n\nSome *text* and `code`.\n\n- one\n- two\n  1. inner\n\n> quoted\n\n| a | bb |\n|---|----|\n| 1 | 2 |\n",
            40,
        );
        assert_eq!(
            text,
            [
                "# Title",
                "",
                "Some text and code.",
                "",
                "• one",
                "• two",
                "  1. inner",
                "",
                "│ quoted",
                "",
                "a │ bb",
                "──┼───",
                "1 │ 2 ",
                "",
            ]
        );
    }

    #[test]
    fn code_blocks_are_highlighted_by_language() {
        let mut out = Out::new(60);
        markdown(
            "```python\ndef f(x):\n    return x\n```\n",
            Style::new(),
            &mut out,
        );
        assert_eq!(
            lines_text(&out.lines)[..2],
            ["  def f(x):", "      return x"]
        );
        let colours: std::collections::HashSet<_> =
            out.lines[0].spans.iter().map(|s| s.style.fg).collect();
        assert!(
            colours.len() > 1,
            "keyword and name coloured differently: {colours:?}"
        );
    }

    #[test]
    fn control_characters_never_reach_the_screen() {
        let text = md("red \x1b[31mtext\x07", 40);
        assert_eq!(text[0], "red [31mtext");
    }

    #[test]
    fn builds_only_what_is_on_screen() {
        let path = format!(
            "{}/tests/data/opencode-1.18.33-long.sharedata.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: ShareData = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let n = doc.messages.len();
        let preview = Preview::new(doc);
        let area = Rect::new(0, 0, 80, 20);
        let mut buf = Buffer::empty(area);
        preview.render(area, &mut buf, 0);
        assert!(
            preview.built_blocks() < n / 2,
            "built {} of {n}",
            preview.built_blocks()
        );
        let (scroll, at_end) = preview.render(area, &mut buf, usize::MAX);
        assert_eq!(preview.built_blocks(), n + 1);
        assert!(at_end && scroll > 0 && scroll < usize::MAX);
    }
}
