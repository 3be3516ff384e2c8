// End to end through the plugin: a session holding one secret of each family
// (tests/data/redaction-secrets.json) is shared on the real `bshare serve`; the stored document
// and every page variant hold none of them, show the placeholders and the count, and keep the
// look-alikes. With the opt-out, the session goes as it is and the user is told.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ShareApi } from "../src/api.ts";
import { v1Source, type V1SessionClient } from "../src/document.ts";
import { Sharer } from "../src/sharer.ts";
import { type RunningServer, startServer } from "./server.ts";
import { DATA_DIR, FakeOpencode, FixtureSession, loadFixture, tempDir } from "./support.ts";

interface Secrets {
  secrets: Array<{ rule: string; secret: string; line: string }>;
  lookalikes: string[];
}
const data = JSON.parse(readFileSync(join(DATA_DIR, "redaction-secrets.json"), "utf8")) as Secrets;

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ createLimit: 1_000, requestLimit: 100_000 });
});
afterAll(async () => {
  await server.stop();
});

function sharer(redact: boolean): { sharer: Sharer; opencode: FakeOpencode; logs: string[]; cleanup: () => void } {
  const dir = tempDir("bshare-plugin-redact-");
  const opencode = new FakeOpencode();
  const logs: string[] = [];
  const s = new Sharer({
    api: new ShareApi(server.baseUrl),
    source: v1Source(opencode.client as unknown as V1SessionClient),
    registryPath: join(dir.path, "shares.json"),
    notify: () => undefined,
    log: (_level, message) => logs.push(message),
    privacy: { redact },
  });
  return { sharer: s, opencode, logs, cleanup: dir.cleanup };
}

function sessionWithSecrets(opencode: FakeOpencode, id: string): void {
  const session = opencode.add(new FixtureSession(loadFixture("short"), id));
  const text = ["Here is everything I have:", ...data.secrets.map((s) => s.line), `Not secrets: ${data.lookalikes.join(", ")}`].join("\n\n");
  session.addUserMessage(text);
}

test("a session with one secret of each family leaves none of them anywhere", async () => {
  const h = sharer(true);
  try {
    const id = `ses_redact${Date.now().toString(36)}`;
    sessionWithSecrets(h.opencode, id);
    const outcome = await h.sharer.share(id);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    const shareId = outcome.url.split("/").pop()!;
    const variants: Array<[string, string]> = [];
    for (const path of [`/share/${shareId}`, `/share/${shareId}.md`, `/share/${shareId}.json`, `/api/share/${shareId}`, `/api/share/${shareId}/data`]) {
      const res = await fetch(`${server.baseUrl}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      variants.push([path, await res.text()]);
    }
    for (const [path, text] of variants) {
      for (const { rule, secret } of data.secrets) {
        expect({ path, rule, leaked: text.includes(secret) }).toEqual({ path, rule, leaked: false });
        expect({ path, rule, placeholder: text.includes(`[REDACTED:${rule}]`) }).toEqual({ path, rule, placeholder: true });
      }
      for (const look of data.lookalikes) expect({ path, look, kept: text.includes(look) }).toEqual({ path, look, kept: true });
    }
    const doc = JSON.parse(variants[3]![1]) as { redaction?: { counts: Record<string, number> } };
    const total = Object.values(doc.redaction?.counts ?? {}).reduce((a, b) => a + b, 0);
    expect(total).toBe(data.secrets.length);
    expect(variants[0]![1]).toContain(`${total} secrets were removed before this was shared`);
  } finally {
    h.cleanup();
  }
});

test("with redaction off the session goes as it is, and the user is told", async () => {
  const h = sharer(false);
  try {
    const id = `ses_noredact${Date.now().toString(36)}`;
    sessionWithSecrets(h.opencode, id);
    expect(h.logs.some((l) => l.includes("redaction is off"))).toBe(true);
    const outcome = await h.sharer.share(id);
    expect(outcome.ok && outcome.message).toContain("Redaction is off");
    if (!outcome.ok) return;
    const doc = await (await fetch(`${server.baseUrl}/api/share/${outcome.url.split("/").pop()}`)).text();
    expect(doc).toContain(data.secrets[0]!.secret);
  } finally {
    h.cleanup();
  }
});
