//! Secret redaction (DESIGN.md §3a): the one rule set, `rules.json` beside this file, compiled
//! once, and the walk that applies it to every string of a document before it leaves.
//!
//! The plugin reads the same file (`plugin/src/redact.ts`), so both sides find the same secrets;
//! the samples in the file are tests on both sides. All rules are one alternation, so each string
//! is scanned once by one lazy DFA (with the `regex` crate's literal prefilters where the rules
//! allow). A `context` rule (a value found by its name: `password=…`, a URL's password) has its
//! secret searched again with the `token` rules alone, so a known key keeps its specific name
//! (`OPENAI_API_KEY=sk-…` becomes `OPENAI_API_KEY=[REDACTED:openai-key]`).
//!
//! What is scanned: every string of the document, object keys included. Keys are data too:
//! tool metadata and inputs hold maps keyed by what the session handled (paths, environment
//! variables, URLs), and a URL with a password or a token can be such a key. A redacted key that
//! collides with another key of its object keeps the later value; both were secrets' names.
//!
//! What is recorded: counts per rule (never the values) in the document's optional `redaction`
//! field; a caller that wants a review also gets each finding with a masked excerpt.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::model::{Redaction, ShareData};
use crate::protocol::SyncItem;

/// The rule file, shared with the plugin.
pub const RULES_JSON: &str = include_str!("rules.json");

/// What a placeholder starts with; the rule id and `]` follow.
pub const PLACEHOLDER_PREFIX: &str = "[REDACTED:";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFile {
    #[serde(default)]
    pub global_must_not: Vec<String>,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A secret recognised by its own shape (`ghp_…`, `AKIA…`).
    Token,
    /// A secret recognised by what surrounds it (`password=…`).
    Context,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleSpec {
    pub id: String,
    pub kind: Kind,
    pub description: String,
    pub pattern: String,
    #[serde(default)]
    pub must_match: Vec<Sample>,
    #[serde(default)]
    pub must_not: Vec<String>,
}

/// A text that must be redacted: the whole text is the secret, or the text redacts to `redacted`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Sample {
    Whole(String),
    Text { text: String, redacted: String },
}

/// The rule file as data (the tests read the samples from it).
pub fn rule_file() -> RuleFile {
    serde_json::from_str(RULES_JSON).expect("src/lib/redact/rules.json is valid JSON of its shape")
}

/// The compiled rule set.
pub struct Redactor {
    ids: Vec<&'static str>,
    kinds: Vec<Kind>,
    /// Every rule, in file order.
    all: Regex,
    /// (capture group of the secret in `all`, rule index)
    all_groups: Vec<(usize, usize)>,
    /// The `token` rules only, for the second look at a `context` rule's secret.
    tokens: Regex,
    token_groups: Vec<(usize, usize)>,
}

static RULES: LazyLock<Redactor> = LazyLock::new(|| {
    Redactor::compile(&rule_file()).expect("src/lib/redact/rules.json compiles with `regex`")
});

/// The rule set of `rules.json`, compiled on first use.
pub fn rules() -> &'static Redactor {
    &RULES
}

/// Options the user chooses.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The user's home directory: paths under it become `~/…`.
    pub home: Option<String>,
}

/// One secret found, for a review before upload. The value itself is never kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    /// 1-based number of the message it was in; `None` for the session and other fields.
    pub message: Option<usize>,
    /// The first few characters and the length, e.g. `sk-p…[164 chars]`.
    pub excerpt: String,
}

/// What a redaction found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub counts: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The document's `redaction` field: counts only.
    pub fn summary(&self) -> Option<Redaction> {
        (!self.counts.is_empty()).then(|| Redaction {
            counts: self.counts.clone(),
        })
    }
}

/// `secret` masked for display: a few leading characters (none for short ones) and the length.
pub fn mask(secret: &str) -> String {
    let len = secret.chars().count();
    let keep = match len {
        16.. => 4,
        8..16 => 2,
        _ => 0,
    };
    let head: String = secret.chars().take(keep).collect();
    format!("{head}…[{len} chars]")
}

/// Rust reads `\b` as a Unicode word boundary and JavaScript as an ASCII one; the rule file means
/// the ASCII one.
fn rust_pattern(pattern: &str, group: &str) -> String {
    pattern
        .replace("\\b", "(?-u:\\b)")
        .replace("(?<secret>", &format!("(?<{group}>"))
}

fn combined(rules: &[&RuleSpec], prefix: &str) -> Result<(Regex, Vec<String>), regex::Error> {
    let names: Vec<String> = (0..rules.len()).map(|i| format!("{prefix}{i}")).collect();
    let alternation = rules
        .iter()
        .zip(&names)
        .map(|(r, name)| format!("(?:{})", rust_pattern(&r.pattern, name)))
        .collect::<Vec<_>>()
        .join("|");
    let re = regex::RegexBuilder::new(&alternation)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()?;
    Ok((re, names))
}

impl Redactor {
    pub fn compile(file: &RuleFile) -> Result<Self, String> {
        let mut ids = Vec::new();
        for r in &file.rules {
            if r.pattern.matches("(?<secret>").count() != 1 {
                return Err(format!(
                    "rule {} must have exactly one (?<secret>…) group",
                    r.id
                ));
            }
            if !r
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(format!(
                    "rule id {} must be lower-case letters, digits and -",
                    r.id
                ));
            }
            ids.push(&*String::leak(r.id.clone()));
        }
        let all_rules: Vec<&RuleSpec> = file.rules.iter().collect();
        let (all, names) = combined(&all_rules, "s").map_err(|e| e.to_string())?;
        let all_groups = group_indices(&all, &names, 0..file.rules.len());
        let token_idx: Vec<usize> = (0..file.rules.len())
            .filter(|&i| file.rules[i].kind == Kind::Token)
            .collect();
        let token_rules: Vec<&RuleSpec> = token_idx.iter().map(|&i| &file.rules[i]).collect();
        let (tokens, tnames) = combined(&token_rules, "t").map_err(|e| e.to_string())?;
        let token_groups = group_indices(&tokens, &tnames, token_idx.into_iter());
        Ok(Self {
            ids,
            kinds: file.rules.iter().map(|r| r.kind).collect(),
            all,
            all_groups,
            tokens,
            token_groups,
        })
    }

    /// The rule ids, in file order.
    pub fn ids(&self) -> &[&'static str] {
        &self.ids
    }

    /// Whether `id` names a rule (placeholders are only counted for real rules).
    pub fn is_rule(&self, id: &str) -> bool {
        self.ids.contains(&id)
    }

    /// `s` with every secret replaced by `[REDACTED:<rule>]`, or `None` when it has none.
    /// `found` sees each rule id and secret (to count or mask it; never to keep it).
    pub fn redact_str(&self, s: &str, found: &mut dyn FnMut(&'static str, &str)) -> Option<String> {
        // Almost every string has no secret: one DFA pass that allocates nothing decides that,
        // and only the rare string with a match pays for capture groups.
        if !self.all.is_match(s) {
            return None;
        }
        let mut out = String::new();
        let mut last = 0;
        let mut any = false;
        for caps in self.all.captures_iter(s) {
            let Some((rule, m)) = which(&caps, &self.all_groups) else {
                continue;
            };
            if self.kinds[rule] == Kind::Context {
                let base = m.start();
                let mut inner = false;
                for tc in self.tokens.captures_iter(m.as_str()) {
                    let Some((trule, tm)) = which(&tc, &self.token_groups) else {
                        continue;
                    };
                    out.push_str(&s[last..base + tm.start()]);
                    self.placeholder(&mut out, trule);
                    found(self.ids[trule], tm.as_str());
                    last = base + tm.end();
                    inner = true;
                }
                if inner {
                    any = true;
                    continue;
                }
            }
            out.push_str(&s[last..m.start()]);
            self.placeholder(&mut out, rule);
            found(self.ids[rule], m.as_str());
            last = m.end();
            any = true;
        }
        if !any {
            return None;
        }
        out.push_str(&s[last..]);
        Some(out)
    }

    fn placeholder(&self, out: &mut String, rule: usize) {
        out.push_str(PLACEHOLDER_PREFIX);
        out.push_str(self.ids[rule]);
        out.push(']');
    }

    /// Redacts every string and object key in `v`.
    pub fn redact_value(
        &self,
        v: &mut Value,
        opts: &Options,
        found: &mut dyn FnMut(&'static str, &str),
    ) {
        match v {
            Value::String(s) => {
                if let Some(r) = self.redact_string(s, opts, found) {
                    *s = r;
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.redact_value(item, opts, found);
                }
            }
            Value::Object(map) => self.redact_object(map, opts, found),
            _ => {}
        }
    }

    fn redact_object(
        &self,
        map: &mut Map<String, Value>,
        opts: &Options,
        found: &mut dyn FnMut(&'static str, &str),
    ) {
        let mut renamed: Vec<(String, String)> = Vec::new();
        for (k, item) in map.iter_mut() {
            if let Some(r) = self.redact_string(k, opts, found) {
                renamed.push((k.clone(), r));
            }
            self.redact_value(item, opts, found);
        }
        for (old, new) in renamed {
            if let Some(item) = map.remove(&old) {
                map.insert(new, item);
            }
        }
    }

    fn redact_string(
        &self,
        s: &str,
        opts: &Options,
        found: &mut dyn FnMut(&'static str, &str),
    ) -> Option<String> {
        let redacted = self.redact_str(s, found);
        match &opts.home {
            Some(home) => {
                let current = redacted.as_deref().unwrap_or(s);
                match replace_home(current, home) {
                    Some(r) => Some(r),
                    None => redacted,
                }
            }
            None => redacted,
        }
    }

    /// Redacts a whole document given as JSON (so fields this version does not know, such as
    /// child sessions, are covered too) and records the counts in its `redaction` field.
    pub fn redact_document(&self, doc: &mut Value, opts: &Options) -> Report {
        let mut report = Report::default();
        if let Value::Object(map) = doc {
            map.remove("redaction");
            for (key, field) in map.iter_mut() {
                if key == "messages"
                    && let Value::Array(messages) = field
                {
                    for (i, m) in messages.iter_mut().enumerate() {
                        self.redact_value(m, opts, &mut |rule, secret| {
                            report.add(rule, Some(i + 1), secret);
                        });
                    }
                    continue;
                }
                self.redact_value(field, opts, &mut |rule, secret| {
                    report.add(rule, None, secret);
                });
            }
            if let Some(summary) = report.summary() {
                map.insert(
                    "redaction".into(),
                    serde_json::to_value(summary).unwrap_or_default(),
                );
            }
        }
        report
    }

    /// Redacts an OpenCode sync batch in place (the server's path, DESIGN.md §3a); returns how many
    /// secrets it removed.
    pub fn redact_items(&self, items: &mut [SyncItem]) -> u64 {
        let mut n = 0;
        for item in items {
            self.redact_value(&mut item.data, &Options::default(), &mut |_, _| n += 1);
        }
        n
    }
}

impl Report {
    fn add(&mut self, rule: &'static str, message: Option<usize>, secret: &str) {
        *self.counts.entry(rule.to_owned()).or_default() += 1;
        self.findings.push(Finding {
            rule,
            message,
            excerpt: mask(secret),
        });
    }
}

fn group_indices(
    re: &Regex,
    names: &[String],
    rules: impl Iterator<Item = usize>,
) -> Vec<(usize, usize)> {
    let by_name: BTreeMap<&str, usize> = re
        .capture_names()
        .enumerate()
        .filter_map(|(i, n)| n.map(|n| (n, i)))
        .collect();
    names
        .iter()
        .zip(rules)
        .map(|(name, rule)| (by_name[name.as_str()], rule))
        .collect()
}

fn which<'h>(caps: &Captures<'h>, groups: &[(usize, usize)]) -> Option<(usize, regex::Match<'h>)> {
    groups
        .iter()
        .find_map(|&(g, rule)| caps.get(g).map(|m| (rule, m)))
}

/// `s` with `home` at the start of a path replaced by `~`, or `None` when it has none.
pub fn replace_home(s: &str, home: &str) -> Option<String> {
    let home = home.trim_end_matches('/');
    if home.len() < 2 || !s.contains(home) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut any = false;
    while let Some(i) = rest.find(home) {
        let after = &rest[i + home.len()..];
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'));
        out.push_str(&rest[..i]);
        if ends {
            out.push('~');
            any = true;
        } else {
            out.push_str(home);
        }
        rest = after;
    }
    out.push_str(rest);
    any.then_some(out)
}

/// Sets `doc.redaction` from the placeholders the document holds: what the server does after
/// merging a redacted sync batch, since OpenCode sends a part again each time it grows and
/// adding per batch would count one secret many times.
pub fn recount(doc: &mut ShareData) {
    let rules = rules();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut visit = |v: &Value| count_in(v, rules, &mut counts);
    visit(&doc.session);
    for m in &doc.messages {
        visit(&m.info);
        for p in &m.parts {
            visit(p);
        }
    }
    if let Some(v) = &doc.session_diff {
        visit(v);
    }
    if let Some(v) = &doc.models {
        visit(v);
    }
    for p in &doc.pending_parts {
        visit(p);
    }
    doc.redaction = (!counts.is_empty()).then_some(Redaction { counts });
}

fn count_in(v: &Value, rules: &Redactor, counts: &mut BTreeMap<String, u64>) {
    match v {
        Value::String(s) => count_str(s, rules, counts),
        Value::Array(items) => items.iter().for_each(|i| count_in(i, rules, counts)),
        Value::Object(map) => {
            for (k, item) in map {
                count_str(k, rules, counts);
                count_in(item, rules, counts);
            }
        }
        _ => {}
    }
}

fn count_str(s: &str, rules: &Redactor, counts: &mut BTreeMap<String, u64>) {
    let finder = memchr::memmem::Finder::new(PLACEHOLDER_PREFIX);
    for at in finder.find_iter(s.as_bytes()) {
        let rest = &s[at + PLACEHOLDER_PREFIX.len()..];
        if let Some(end) = rest.find(']') {
            let id = &rest[..end];
            if rules.is_rule(id) {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
    }
}

/// Redacts a ShareData document as it is about to be uploaded: returns the bytes to send and
/// what was found. With `enabled` false (the user's explicit opt-out) the document goes as it is.
pub fn prepare_upload(
    doc: &ShareData,
    enabled: bool,
    opts: &Options,
) -> Result<(Vec<u8>, Report), serde_json::Error> {
    if !enabled {
        return Ok((serde_json::to_vec(doc)?, Report::default()));
    }
    let mut value = serde_json::to_value(doc)?;
    let report = rules().redact_document(&mut value, opts);
    Ok((serde_json::to_vec(&value)?, report))
}

#[cfg(test)]
mod tests;
