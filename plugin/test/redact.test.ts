// The rule samples of src/lib/redact/rules.json against the plugin's implementation: the Rust
// side runs the same samples (`cargo test --lib redact`), so both find the same secrets.

import { expect, test } from "bun:test";
import { mask, RULES, Redactor, redactor, replaceHome } from "../src/redact.ts";

function redact(s: string): { out: string; ids: string[] } {
  const ids: string[] = [];
  const out = redactor().redactString(s, (id) => ids.push(id)) ?? s;
  return { out, ids };
}

test("every rule's samples: the must-match ones redact as written, the others find nothing", () => {
  const failures: string[] = [];
  for (const rule of RULES.rules) {
    expect(rule.mustMatch.length).toBeGreaterThan(0);
    for (const sample of rule.mustMatch) {
      const [text, want] = typeof sample === "string" ? [sample, `[REDACTED:${rule.id}]`] : [sample.text, sample.redacted];
      const { out } = redact(text);
      if (out !== want) failures.push(`${rule.id}: ${JSON.stringify(text)}\n  gave ${JSON.stringify(out)}\n  want ${JSON.stringify(want)}`);
    }
    for (const text of [...rule.mustNot, ...RULES.globalMustNot]) {
      const { out, ids } = redact(text);
      if (ids.length > 0) failures.push(`${rule.id}: ${JSON.stringify(text)} must not match, gave ${JSON.stringify(out)}`);
    }
  }
  expect(failures).toEqual([]);
});

test("a rule without its secret group is refused", () => {
  expect(() => new Redactor({ globalMustNot: [], rules: [{ id: "x", kind: "token", description: "", pattern: "abc", mustMatch: [], mustNot: [] }] })).toThrow();
});

test("escaped JSON is scanned as the string it encodes, and stays JSON", () => {
  const raw = '{"text":"key: \\u0073k-proj-CfrL1spNxnyVmihA\\u002d2O76UMFxFkM-R5Kjp1vRt_1fjORS end"}';
  const v = redactor().redactValue(JSON.parse(raw)) as { text: string };
  expect(v.text).toBe("key: [REDACTED:openai-key] end");

  const inner = JSON.stringify({
    token: "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er",
    config: { password: "hunter2hunter2", db: "postgres://app:pw-9f8e7d@db/app" },
  });
  const twice = JSON.stringify(inner);
  const found: string[] = [];
  const part = redactor().redactValue({ type: "tool", state: { output: inner, metadata: { raw: twice } } }, {}, (id) => found.push(id)) as {
    state: { output: string; metadata: { raw: string } };
  };
  const out = JSON.stringify(part);
  for (const secret of ["ghp_qrc5", "hunter2", "pw-9f8e7d"]) expect(out).not.toContain(secret);
  expect(found.filter((id) => id === "github-token").length).toBe(2);
  expect(found.filter((id) => id === "secret-assignment").length).toBe(2);
  expect(found.filter((id) => id === "url-credentials").length).toBe(2);
  expect(JSON.parse(part.state.output).token).toBe("[REDACTED:github-token]");
  expect(JSON.parse(JSON.parse(part.state.metadata.raw)).config.password).toBe("[REDACTED:secret-assignment]");
});

test("secrets at the edges of a string, next to each other, and far into a large one", () => {
  const gh = "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er";
  const aws = "AKIAMR46PQM4I2HZ4UEP";
  expect(redact(gh).out).toBe("[REDACTED:github-token]");
  expect(redact(`${gh} ${aws}`).out).toBe("[REDACTED:github-token] [REDACTED:aws-access-key-id]");
  expect(redact(`${gh},${gh}`).out).toBe("[REDACTED:github-token],[REDACTED:github-token]");
  const big = "lorem ipsum dolor ".repeat(60_000) + aws;
  const { out, ids } = redact(big);
  expect(ids).toEqual(["aws-access-key-id"]);
  expect(out.endsWith("dolor [REDACTED:aws-access-key-id]")).toBe(true);
  expect(redact(`x${aws}`).ids).toEqual([]);
});

test("object keys are scanned; a document gets counts and findings, never values", () => {
  const doc = {
    shareId: "abcd1234",
    sessionId: "ses_1",
    createdAt: 1,
    updatedAt: 1,
    session: { id: "ses_1", title: "deploy with AKIAMR46PQM4I2HZ4UEP", directory: "/home/ann/proj" },
    messages: [
      { info: { id: "m1" }, parts: [{ type: "text", text: "use ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er and 3b16494331a59c4ad1ebd086c40f36094fcc9a5c" }] },
      { info: { id: "m2" }, parts: [{ type: "text", text: "and ghp_8bOfZqfM2oeq3hDavJA76rNicHTp8hkqdlm7 in /home/ann/proj/x.rs" }] },
    ],
    extra: { "https://bot:ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er@github.com": "origin" },
  };
  const { doc: out, report } = redactor().redactDocument(doc, { home: "/home/ann" });
  const text = JSON.stringify(out);
  for (const gone of ["ghp_qrc5", "ghp_8bOf", "AKIAMR", "/home/ann"]) expect(text).not.toContain(gone);
  expect(text).toContain("3b16494331a59c4ad1ebd086c40f36094fcc9a5c");
  expect(text).toContain("~/proj/x.rs");
  expect((out as unknown as { redaction: unknown }).redaction).toEqual({ counts: { "aws-access-key-id": 1, "github-token": 3 } });
  expect(report.findings.map((f) => f.message).sort()).toEqual([1, 2, undefined, undefined]);
  expect(report.findings.find((f) => f.message === 1)?.excerpt).toBe("ghp_…[40 chars]");
  expect(doc.messages[0]!.parts[0]!.text).toContain("ghp_qrc5");
});

test("masks and home paths", () => {
  expect(mask("sk-proj-0123456789abcdefghij")).toBe("sk-p…[28 chars]");
  expect(mask("hunter22")).toBe("hu…[8 chars]");
  expect(mask("abc")).toBe("…[3 chars]");
  expect(replaceHome("/home/ann/x and /home/ann", "/home/ann")).toBe("~/x and ~");
  expect(replaceHome("/home/anna/x", "/home/ann")).toBeUndefined();
});
