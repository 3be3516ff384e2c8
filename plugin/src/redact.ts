// Secret redaction before upload (DESIGN.md §3a), from the same rule file the Rust side compiles
// (`src/lib/redact/rules.json`): the bundler inlines it, so both sides always ship the same rules.
//
// The same algorithm as `src/lib/redact/mod.rs`: all rules as one alternation in file order, a
// `context` rule's secret searched again with the `token` rules (so `OPENAI_API_KEY=sk-…` keeps the
// name `openai-key`), every string and object key of the document scanned, and only counts per
// rule recorded in the document, never the values.

import ruleFile from "../../src/lib/redact/rules.json" with { type: "json" };

export type Sample = string | { text: string; redacted: string };

export interface RuleSpec {
  id: string;
  kind: "token" | "context";
  description: string;
  pattern: string;
  mustMatch: Sample[];
  mustNot: string[];
}

export interface RuleFile {
  globalMustNot: string[];
  rules: RuleSpec[];
}

export const RULES: RuleFile = ruleFile as RuleFile;

export interface Finding {
  rule: string;
  /** 1-based message number; undefined for the session and other fields. */
  message?: number;
  /** A few leading characters and the length, never the secret. */
  excerpt: string;
}

export interface Report {
  counts: Record<string, number>;
  findings: Finding[];
}

export interface RedactOptions {
  /** The user's home directory: paths under it become `~/…`. */
  home?: string;
}

interface Compiled {
  re: RegExp;
  /** Group name of each rule's secret, and the rule's index. */
  groups: Array<{ name: string; rule: number }>;
}

function compile(rules: RuleSpec[], indices: number[], prefix: string): Compiled {
  const groups = indices.map((rule, i) => ({ name: `${prefix}${i}`, rule }));
  const source = groups
    .map(({ name, rule }) => `(?:${rules[rule]!.pattern.replace("(?<secret>", `(?<${name}>`)})`)
    .join("|");
  return { re: new RegExp(source, "gdu"), groups };
}

type Found = (rule: string, secret: string) => void;

export class Redactor {
  private readonly ids: string[];
  private readonly kinds: Array<RuleSpec["kind"]>;
  private readonly all: Compiled;
  private readonly tokens: Compiled;

  constructor(file: RuleFile = RULES) {
    for (const r of file.rules) {
      if (r.pattern.split("(?<secret>").length !== 2) throw new Error(`rule ${r.id} must have one (?<secret>…) group`);
    }
    this.ids = file.rules.map((r) => r.id);
    this.kinds = file.rules.map((r) => r.kind);
    const everyRule = file.rules.map((_, i) => i);
    this.all = compile(file.rules, everyRule, "s");
    this.tokens = compile(
      file.rules,
      everyRule.filter((i) => file.rules[i]!.kind === "token"),
      "t",
    );
  }

  /** `s` with every secret replaced by `[REDACTED:<rule>]`, or undefined when it has none. */
  redactString(s: string, found: Found = () => undefined): string | undefined {
    let out = "";
    let last = 0;
    let any = false;
    for (const hit of this.matches(this.all, s)) {
      if (this.kinds[hit.rule] === "context") {
        const span = s.slice(hit.start, hit.end);
        let inner = false;
        for (const t of this.matches(this.tokens, span)) {
          out += s.slice(last, hit.start + t.start) + `[REDACTED:${this.ids[t.rule]}]`;
          found(this.ids[t.rule]!, span.slice(t.start, t.end));
          last = hit.start + t.end;
          inner = true;
        }
        if (inner) {
          any = true;
          continue;
        }
      }
      out += s.slice(last, hit.start) + `[REDACTED:${this.ids[hit.rule]}]`;
      found(this.ids[hit.rule]!, s.slice(hit.start, hit.end));
      last = hit.end;
      any = true;
    }
    return any ? out + s.slice(last) : undefined;
  }

  private *matches(c: Compiled, s: string): Generator<{ rule: number; start: number; end: number }> {
    const re = c.re;
    re.lastIndex = 0;
    let m: RegExpExecArray | null;
    while ((m = re.exec(s)) !== null) {
      if (m[0] === "") re.lastIndex++;
      const indices = m.indices?.groups;
      if (indices === undefined) continue;
      for (const { name, rule } of c.groups) {
        const span = indices[name];
        if (span !== undefined) {
          yield { rule, start: span[0], end: span[1] };
          break;
        }
      }
    }
  }

  /** A copy of `value` with every string and object key redacted. */
  redactValue(value: unknown, options: RedactOptions = {}, found: Found = () => undefined): unknown {
    if (typeof value === "string") return this.redactText(value, options, found) ?? value;
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v, options, found));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        const key = this.redactText(k, options, found) ?? k;
        out[key] = this.redactValue(v, options, found);
      }
      return out;
    }
    return value;
  }

  private redactText(s: string, options: RedactOptions, found: Found): string | undefined {
    const redacted = this.redactString(s, found);
    if (options.home === undefined) return redacted;
    return replaceHome(redacted ?? s, options.home) ?? redacted;
  }

  /**
   * A redacted copy of a ShareData document with its `redaction` summary (counts only), and the
   * findings for a review. Fields this version does not know are covered too.
   */
  redactDocument<T extends object>(doc: T, options: RedactOptions = {}): { doc: T; report: Report } {
    const report: Report = { counts: {}, findings: [] };
    const add = (message: number | undefined) => (rule: string, secret: string) => {
      report.counts[rule] = (report.counts[rule] ?? 0) + 1;
      report.findings.push({ rule, message, excerpt: mask(secret) });
    };
    const out: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(doc)) {
      if (key === "redaction") continue;
      if (key === "messages" && Array.isArray(field)) {
        out[key] = field.map((m, i) => this.redactValue(m, options, add(i + 1)));
      } else {
        out[key] = this.redactValue(field, options, add(undefined));
      }
    }
    if (Object.keys(report.counts).length > 0) out.redaction = { counts: sortedCounts(report.counts) };
    return { doc: out as T, report };
  }
}

function sortedCounts(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `secret` masked for display: a few leading characters (none for short ones) and the length. */
export function mask(secret: string): string {
  const chars = Array.from(secret);
  const keep = chars.length >= 16 ? 4 : chars.length >= 8 ? 2 : 0;
  return `${chars.slice(0, keep).join("")}…[${chars.length} chars]`;
}

/** `s` with `home` at the start of a path replaced by `~`, or undefined when it has none. */
export function replaceHome(s: string, home: string): string | undefined {
  const h = home.replace(/\/+$/, "");
  if (h.length < 2 || !s.includes(h)) return undefined;
  let out = "";
  let rest = s;
  let any = false;
  for (let i = rest.indexOf(h); i !== -1; i = rest.indexOf(h)) {
    const after = rest.slice(i + h.length);
    const next = after[0];
    const ends = next === undefined || !/[\p{L}\p{N}_.-]/u.test(next);
    out += rest.slice(0, i) + (ends ? "~" : h);
    any ||= ends;
    rest = after;
  }
  return any ? out + rest : undefined;
}

let shared: Redactor | undefined;

/** The rule set, compiled on first use. */
export function redactor(): Redactor {
  shared ??= new Redactor();
  return shared;
}
