// The plugin against a running share server, with a fixture-backed OpenCode client:
// the original `/share` flow, the commands, debounced re-sync, unshare, and every failure.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import type { Hooks, PluginInput, ToolContext } from "@opencode-ai/plugin";
import { ShareApi } from "../src/api.ts";
import { findBySession, readRegistry } from "../src/registry.ts";
import { createServerPlugin, type ServerPluginOverrides } from "../src/server.ts";
import type { Sharer } from "../src/sharer.ts";
import { registerCommands } from "../src/tui.ts";
import { type RunningServer, startServer } from "./server.ts";
import { deadServer, FakeOpencode, FakeTui, FixtureSession, loadFixture, RecordingFetch, tempDir } from "./support.ts";

const short = loadFixture("short");
const long = loadFixture("long");

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ createLimit: 1_000, requestLimit: 100_000 });
});
afterAll(async () => {
  await server.stop();
});

let counter = 0;
/** A fresh session id per test: share ids derived from it never collide across tests. */
function sessionId(): string {
  counter++;
  return `ses_${Date.now().toString(36)}${process.pid}t${counter}x${Math.random().toString(36).slice(2, 10)}`;
}

interface Harness {
  opencode: FakeOpencode;
  hooks: Hooks;
  sharer: Sharer;
  registry: string;
  copied: string[];
  http: RecordingFetch;
  event: (type: string, properties: unknown) => Promise<void>;
  tool: (name: "bshare_share" | "bshare_unshare", session: string) => Promise<string>;
}

let dirs: Array<() => void> = [];
beforeEach(() => {
  dirs = [];
});
afterEach(() => {
  for (const cleanup of dirs) cleanup();
});

async function harness(baseUrl: string, overrides: ServerPluginOverrides = {}, registry?: string): Promise<Harness> {
  const opencode = new FakeOpencode();
  const dir = tempDir("bshare-plugin-flow-");
  dirs.push(dir.cleanup);
  const registryPath = registry ?? `${dir.path}/bshare/shares.json`;
  const copied: string[] = [];
  const http = new RecordingFetch();
  let sharer: Sharer | undefined;
  const plugin = createServerPlugin({
    fetch: http.fetch,
    registryPath,
    copy: async (text) => {
      copied.push(text);
      return { via: "test" };
    },
    debounce: { waitMs: 100, maxWaitMs: 400 },
    recopyDelayMs: 0,
    onSharer: (s) => {
      sharer = s;
    },
    ...overrides,
  });
  const input = { client: opencode.client, directory: "/home/dev/calc", worktree: "/home/dev/calc" } as unknown as PluginInput;
  // The agent tools are off by default; these tests drive the plugin through them.
  const hooks = await plugin(input, { baseUrl, tools: true });
  if (sharer === undefined) throw new Error("plugin did not create its sharer");
  const s = sharer;
  return {
    opencode,
    hooks,
    sharer: s,
    registry: registryPath,
    copied,
    http,
    event: async (type, properties) => {
      await hooks.event?.({ event: { type, properties } as never });
    },
    tool: async (name, session) => {
      const tool = hooks.tool?.[name];
      if (tool === undefined) throw new Error(`no tool ${name}`);
      const context = { sessionID: session, messageID: "msg_x", agent: "build", directory: "/", worktree: "/", abort: new AbortController().signal } as unknown as ToolContext;
      const result = await tool.execute({}, context);
      return typeof result === "string" ? result : result.output;
    },
  };
}

async function page(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

function lastToast(h: Harness) {
  return h.opencode.toasts.at(-1);
}

describe("OpenCode's own /share (versions that still have it)", () => {
  test("session.updated with a share URL shares on bshare, copies our link and records it", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    await h.event("session.updated", { info: { ...s.session, share: { url: `https://opncd.ai/share/${id.slice(-8)}` } } });
    await h.sharer.idle();

    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id);
    expect(entry?.shareId).toBe(id.slice(-8));
    expect(entry?.url).toStartWith(server.baseUrl);
    expect(entry?.title).toBe("List comprehension vs map");
    expect(h.copied).toEqual([entry!.url]);
    expect(lastToast(h)).toMatchObject({ variant: "success", message: `Link copied: ${entry!.url}` });

    const shown = await page(entry!.url);
    expect(shown.status).toBe(200);
    expect(shown.text).toContain("Quick question: when should I use a list comprehension");
  });

  test("repeated session.updated events share once and then only re-sync", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const info = { ...s.session, share: { url: `https://opncd.ai/share/${id.slice(-8)}` } };
    for (let i = 0; i < 5; i++) await h.event("session.updated", { info });
    await h.sharer.idle();
    expect(h.http.count("POST", /\/api\/share\/presign$/)).toBe(1);
    expect(h.copied).toHaveLength(1);
    expect(readRegistry(h.registry).shares).toHaveLength(1);
  });

  test("a share URL on the bshare server itself is OpenCode's enterprise share and is left alone", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    await h.event("session.updated", { info: { ...s.session, share: { url: `${server.baseUrl}/share/${id.slice(-8)}` } } });
    await h.sharer.idle();
    expect(h.http.requests).toEqual([]);
    expect(h.copied).toEqual([]);
    expect(readRegistry(h.registry).shares).toEqual([]);
  });

  test("409: the share id is taken (shared and deleted before); the toast says so", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const info = { ...s.session, share: { url: `https://opncd.ai/share/${id.slice(-8)}` } };
    await h.event("session.updated", { info });
    await h.sharer.idle();
    expect(await h.tool("bshare_unshare", id)).toStartWith("Unshared");

    // A new OpenCode process sees the session shared again: the same last-8 id is a tombstone.
    const again = await harness(server.baseUrl, {}, h.registry);
    again.opencode.add(new FixtureSession(short, id));
    await again.event("session.updated", { info });
    await again.sharer.idle();
    const toast = lastToast(again);
    expect(toast?.variant).toBe("error");
    expect(toast?.message).toStartWith("Could not share: ");
    expect(toast?.message).toMatch(/exist/);
    expect(toast?.message).toEndWith("Use /bshare-share to share it under a new link.");
    expect(readRegistry(again.registry).shares).toEqual([]);
  });
});

describe("share and unshare commands", () => {
  test("the bshare_share tool shares, answers and toasts with the link", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    h.opencode.add(new FixtureSession(long, id));
    const answer = await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id);
    expect(entry).toBeDefined();
    expect(answer).toBe(`Shared: ${entry!.url}`);
    expect(lastToast(h)).toMatchObject({ variant: "success", message: answer });
    expect(h.copied).toEqual([entry!.url]);
    const shown = await page(entry!.url);
    expect(shown.status).toBe(200);

    // Sharing again re-uploads and answers with the same link.
    expect(await h.tool("bshare_share", id)).toBe(`Already shared; updated ${entry!.url}`);
    expect(readRegistry(h.registry).shares).toHaveLength(1);
  });

  test("the bshare_unshare tool deletes the share: the page is gone (410) and the registry forgets it", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    h.opencode.add(new FixtureSession(short, id));
    await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    const answer = await h.tool("bshare_unshare", id);
    expect(answer).toBe(`Unshared ${entry.url}`);
    expect(lastToast(h)).toMatchObject({ variant: "success", message: answer });
    expect((await page(entry.url)).status).toBe(410);
    expect(readRegistry(h.registry).shares).toEqual([]);
    expect(await h.tool("bshare_unshare", id)).toBe(`This session is not shared on ${server.baseUrl}.`);
  });

  for (const kind of ["keymap", "command"] as const) {
    test(`TUI slash commands (${kind} API): /bshare-share and /bshare-unshare answer with toasts`, async () => {
      const opencode = new FakeOpencode();
      const dir = tempDir("bshare-plugin-tui-");
      dirs.push(dir.cleanup);
      const registryPath = `${dir.path}/shares.json`;
      const tui = new FakeTui(opencode);
      const registered = registerCommands(tui.api(kind), { baseUrl: server.baseUrl }, {
        registryPath,
        copy: async () => ({ via: "test" }),
      });
      expect(registered.via).toBe(kind);
      expect(tui.commands.map((c) => c.slashName)).toEqual(["bshare-share", "bshare-unshare"]);

      await tui.slash("bshare-share");
      expect(tui.toasts.at(-1)).toMatchObject({ variant: "warning", message: "Open a session first." });

      const id = sessionId();
      opencode.add(new FixtureSession(short, id));
      tui.route = { name: "session", params: { sessionID: id } };
      await tui.slash("bshare-share");
      const entry = findBySession(readRegistry(registryPath), server.baseUrl, id);
      expect(entry).toBeDefined();
      expect(tui.toasts.at(-1)).toMatchObject({ variant: "success", message: `Shared: ${entry!.url}` });
      expect((await page(entry!.url)).status).toBe(200);

      await tui.slash("bshare-unshare");
      expect(tui.toasts.at(-1)).toMatchObject({ variant: "success", message: `Unshared ${entry!.url}` });
      expect((await page(entry!.url)).status).toBe(410);
      registered.dispose();
      expect(tui.commands).toEqual([]);
    });
  }
});

describe("re-sync", () => {
  test("a burst of 100 change events gives one upload, after the burst, with every change", async () => {
    // A wait far longer than the burst: no timer can fire while the events arrive, whatever the
    // machine's speed, so the count below does not depend on the event loop.
    const h = await harness(server.baseUrl, { debounce: { waitMs: 60_000, maxWaitMs: 60_000 } });
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    const before = h.http.count("POST", /\/presign$/);

    const burst = async (message: { info: unknown; parts: unknown[] }) => {
      for (let i = 0; i < 50; i++) {
        const type = i % 3 === 0 ? "message.updated" : "message.part.updated";
        const properties = type === "message.updated" ? { info: message.info } : { part: message.parts[0] };
        await h.event(type, properties);
      }
    };
    await burst(s.addUserMessage("[resync-1] And what about generator expressions?"));
    await burst(s.addUserMessage("[resync-2] And set comprehensions?"));
    expect(h.http.count("POST", /\/presign$/) - before).toBe(0); // all held back by the debouncer
    await h.event("session.idle", { sessionID: id });
    await h.sharer.idle();

    expect(h.http.count("POST", /\/presign$/) - before).toBe(1);
    expect(h.http.count("POST", /\/api\/share\/presign$/)).toBe(1); // no new share, only a fresh URL
    const shown = await page(entry.url);
    expect(shown.text).toContain("And what about generator expressions?");
    expect(shown.text).toContain("And set comprehensions?");
    expect(findBySession(readRegistry(h.registry), server.baseUrl, id)!.updatedAt).toBeGreaterThan(entry.updatedAt);
  });

  test("closing OpenCode uploads what is still pending", async () => {
    const h = await harness(server.baseUrl, { debounce: { waitMs: 60_000, maxWaitMs: 60_000 } });
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    const m = s.addUserMessage("[dispose-1] the last words before exit");
    await h.event("message.updated", { info: m.info });
    await h.hooks.dispose?.();
    expect((await page(entry.url)).text).toContain("the last words before exit");
  });

  test("events of sessions that are not shared cause no requests", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const m = s.addUserMessage("not shared");
    await h.event("message.updated", { info: m.info });
    await h.event("session.idle", { sessionID: id });
    await h.event("session.updated", { info: s.session });
    await h.sharer.idle();
    expect(h.http.requests).toEqual([]);
  });

  test("a share made by the TUI half (or the CLI) is re-synced by the server half through the registry", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const tui = new FakeTui(h.opencode);
    registerCommands(tui.api("keymap"), { baseUrl: server.baseUrl }, { registryPath: h.registry, copy: async () => ({ via: "test" }) });
    tui.route = { name: "session", params: { sessionID: id } };
    await tui.slash("bshare-share");
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;

    const m = s.addUserMessage("[resync-2] typed after /bshare-share");
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    expect((await page(entry.url)).text).toContain("typed after /bshare-share");
  });
});

describe("subagents", () => {
  /** The long session under a fresh id, and the explore subagent its task call ran. */
  function withSubagent(h: Harness): { parent: FixtureSession; child: FixtureSession } {
    const id = sessionId();
    const childId = `${id}sub`;
    const parent = h.opencode.add(new FixtureSession(long, id));
    for (const m of parent.messages) {
      for (const p of m.parts as Array<{ tool?: string; state?: { metadata?: Record<string, unknown>; output?: string } }>) {
        if (p.tool === "task" && p.state) {
          p.state.metadata = { ...p.state.metadata, sessionId: childId, parentSessionId: id };
          p.state.output = p.state.output?.replace("ses_df513f00effeN6zuJLa81BZRUQ", childId);
        }
      }
    }
    const child = new FixtureSession(
      {
        ...short,
        sessionId: childId,
        session: { ...short.session, id: childId, parentID: id, title: "Scan for TODO comments (@explore subagent)" },
        messages: [],
      },
      childId,
    );
    child.addUserMessage("[sub-1] Find every TODO comment in the repository and report file:line for each.");
    child.messages.push({
      info: { id: "msg_sub2", sessionID: childId, role: "assistant", modelID: "m1", providerID: "fake", agent: "explore", time: { created: Date.now() } },
      parts: [
        {
          id: "prt_sub2a", sessionID: childId, messageID: "msg_sub2", type: "tool", tool: "grep", callID: "call_sub1_0_0",
          state: { status: "completed", input: { pattern: "TODO" }, output: "Found 1 matches\n/home/dev/calc/src/cli.py:\n  Line 7: # TODO: support floats", metadata: { matches: 1 }, title: "TODO", time: { start: 1, end: 2 } },
        },
      ],
    } as unknown as (typeof child.messages)[number]);
    h.opencode.add(child);
    return { parent, child };
  }

  test("a share carries the session's subagents; the page nests each under its task call", async () => {
    const h = await harness(server.baseUrl);
    const { parent, child } = withSubagent(h);
    const answer = await h.tool("bshare_share", parent.id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, parent.id)!;
    expect(answer).toContain(entry.url);
    const doc = (await (await fetch(`${server.baseUrl}/api/share/${entry.shareId}`)).json()) as {
      children?: Array<{ session: { id: string; parentID?: string }; messages: unknown[] }>;
      childrenOmitted?: number;
    };
    expect(doc.children?.map((c) => c.session.id)).toEqual([child.id]);
    expect(doc.children?.[0]?.session.parentID).toBe(parent.id);
    expect(doc.children?.[0]?.messages.length).toBe(2);
    expect(doc.childrenOmitted).toBeUndefined();

    const html = (await page(entry.url)).text;
    const task = html.indexOf('<span class="tt">Scan for TODO comments</span>');
    const nested = html.indexOf('<details class="subagent"', task);
    const grep = html.indexOf("Line 7: # TODO: support floats", nested);
    const taskEnd = html.indexOf("</div></details>\n</div>", grep);
    expect(task).toBeGreaterThan(0);
    expect(nested).toBeGreaterThan(task);
    expect(grep).toBeGreaterThan(nested);
    expect(taskEnd).toBeGreaterThan(grep);

    // The subagent goes on: its events re-sync the shared session it belongs to.
    const m = child.addUserMessage("[sub-resync] and the FIXMEs?");
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    const again = (await page(entry.url)).text;
    expect(again.indexOf("and the FIXMEs?")).toBeGreaterThan(again.indexOf('<details class="subagent"'));
  });

  test("an OpenCode that cannot list a session's children still gets the session shared", async () => {
    const h = await harness(server.baseUrl);
    const { parent } = withSubagent(h);
    h.opencode.childrenOf = () => {
      throw new Error("404: no such route");
    };
    const answer = await h.tool("bshare_share", parent.id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, parent.id)!;
    expect(answer).toContain(entry.url);
    const doc = (await (await fetch(`${server.baseUrl}/api/share/${entry.shareId}`)).json()) as { children?: unknown[]; messages: unknown[] };
    expect(doc.children).toBeUndefined();
    expect(doc.messages.length).toBe(parent.messages.length);
  });

  test("a server whose limit leaves no room for the subagents gets the session without them, and says so", async () => {
    const small = await startServer({ createLimit: 100, requestLimit: 100_000, maxDocumentBytes: 100_000 });
    try {
      const h = await harness(small.baseUrl);
      const { parent, child } = withSubagent(h);
      // A subagent too large for that server (its document stays far below the default limit).
      child.addUserMessage("x".repeat(60_000));
      await h.tool("bshare_share", parent.id);
      const entry = findBySession(readRegistry(h.registry), small.baseUrl, parent.id)!;
      const doc = (await (await fetch(`${small.baseUrl}/api/share/${entry.shareId}`)).json()) as {
        children?: unknown[];
        childrenOmitted?: number;
        messages: unknown[];
      };
      expect(doc.children).toBeUndefined();
      expect(doc.childrenOmitted).toBe(1);
      expect(doc.messages.length).toBe(parent.messages.length);
      expect((await page(entry.url)).text).toContain("1 subagent session was left out of this share");
    } finally {
      await small.stop();
    }
  });
});

describe("shares deleted behind the plugin's back", () => {
  async function shareThenDeleteOnServer(h: Harness, id: string) {
    await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    // Another machine (or an admin) deletes it; this registry still has it.
    await new ShareApi(server.baseUrl).remove(entry.shareId, entry.secret);
    return entry;
  }

  test("re-sync notices, says so once and stops syncing it", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const entry = await shareThenDeleteOnServer(h, id);
    const m = s.addUserMessage("[gone-1] after the share was deleted");
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    expect(lastToast(h)?.variant).toBe("error");
    expect(lastToast(h)?.message).toStartWith(`${entry.url} no longer exists on the server`);
    expect(readRegistry(h.registry).shares).toEqual([]);
    const requests = h.http.requests.length;
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    expect(h.http.requests.length).toBe(requests);
  });

  test("the share command then shares anew under a new link", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    h.opencode.add(new FixtureSession(short, id));
    const old = await shareThenDeleteOnServer(h, id);
    const answer = await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    expect(entry.shareId).not.toBe(old.shareId);
    expect(answer).toBe(`Shared: ${entry.url}`);
    expect((await page(entry.url)).status).toBe(200);
    expect(readRegistry(h.registry).shares).toHaveLength(1);
  });
});

describe("failures never throw into OpenCode", () => {
  test("server down: the command answers with a sentence, events only log and toast", async () => {
    const down = await deadServer();
    const h = await harness(down);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    const answer = await h.tool("bshare_share", id);
    expect(answer).toBe(
      `Could not share: The bshare server at ${down} is not reachable (connection refused). Is \`bshare serve\` running, and is BETTER_SHARE_BASE_URL right?`,
    );
    expect(lastToast(h)).toMatchObject({ variant: "error", message: answer });

    await h.event("session.updated", { info: { ...s.session, share: { url: "https://opncd.ai/share/x" } } });
    await h.sharer.idle();
    expect(lastToast(h)?.message).toContain("is not reachable (connection refused)");
    expect(readRegistry(h.registry).shares).toEqual([]);
  });

  test("server down during re-sync: one toast for a run of failures, the next change after it is back succeeds", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    await h.tool("bshare_share", id);
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    const toastsBefore = h.opencode.toasts.length;

    const down = await deadServer();
    h.http.tamper = (url, init) => ({ url: url.replace(/^http:\/\/127\.0\.0\.1:\d+/, down), init });
    for (let i = 0; i < 3; i++) {
      const m = s.addUserMessage(`[down-${i}] lost while the server is down?`);
      await h.event("message.updated", { info: m.info });
      await h.sharer.idle();
    }
    const failures = h.opencode.toasts.slice(toastsBefore);
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ variant: "error" });
    expect(failures[0]?.message).toContain("is not reachable");
    expect(h.opencode.logs.filter((l) => l.level === "warn").length).toBeGreaterThanOrEqual(3);

    h.http.tamper = undefined;
    const m = s.addUserMessage("[down-3] server is back");
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    expect(lastToast(h)).toMatchObject({ variant: "success", message: `Updated ${entry.url}` });
    const shown = (await page(entry.url)).text;
    expect(shown).toContain("lost while the server is down?");
    expect(shown).toContain("server is back");
  });

  test("413: a session larger than the server takes", async () => {
    const small = await startServer({ maxDocumentBytes: 2_000, requestLimit: 100_000 });
    try {
      const h = await harness(small.baseUrl);
      const id = sessionId();
      h.opencode.add(new FixtureSession(long, id));
      const answer = await h.tool("bshare_share", id);
      expect(answer).toStartWith("Could not share: ");
      expect(lastToast(h)).toMatchObject({ variant: "error", message: answer });
      expect(h.http.requests.filter((r) => r.method === "PUT")).toEqual([]);
      expect(readRegistry(h.registry).shares).toEqual([]);
    } finally {
      await small.stop();
    }
  });

  test("429: past the create limit the toast says to wait", async () => {
    const limited = await startServer({ createLimit: 1, requestLimit: 100_000 });
    try {
      const h = await harness(limited.baseUrl);
      const first = sessionId();
      const second = sessionId();
      h.opencode.add(new FixtureSession(short, first));
      h.opencode.add(new FixtureSession(short, second));
      expect(await h.tool("bshare_share", first)).toStartWith("Shared: ");
      const answer = await h.tool("bshare_share", second);
      expect(answer).toStartWith("Could not share: ");
      expect(answer).toMatch(/again/i);
      expect(lastToast(h)).toMatchObject({ variant: "error", message: answer });
      expect(readRegistry(h.registry).shares).toHaveLength(1);
    } finally {
      await limited.stop();
    }
  });

  test("a rejected upload is reported, and the next change uploads through a fresh URL", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    const s = h.opencode.add(new FixtureSession(short, id));
    // Spoil the signature of every upload URL.
    h.http.tamper = (url, init) => (init?.method === "PUT" ? { url: url.replace(/sig=[^&]+/, "sig=0000"), init } : undefined);
    const answer = await h.tool("bshare_share", id);
    expect(answer).toStartWith("Could not share: The upload was rejected (HTTP 403)");
    expect(lastToast(h)).toMatchObject({ variant: "error", message: answer });
    // The share exists (its secret is recorded), so the next change can still fill it.
    const entry = findBySession(readRegistry(h.registry), server.baseUrl, id)!;
    expect(entry).toBeDefined();

    h.http.tamper = undefined;
    const m = s.addUserMessage("[rejected-1] after the rejected upload");
    await h.event("message.updated", { info: m.info });
    await h.sharer.idle();
    const shown = await page(entry.url);
    expect(shown.status).toBe(200);
    expect(shown.text).toContain("after the rejected upload");
  });

  test("an unreadable registry is reported and left as it is", async () => {
    const h = await harness(server.baseUrl);
    const id = sessionId();
    h.opencode.add(new FixtureSession(short, id));
    await Bun.write(h.registry, "{ broken");
    const answer = await h.tool("bshare_share", id);
    expect(answer).toStartWith(`Could not share: The share registry ${h.registry} is not valid JSON`);
    expect(await Bun.file(h.registry).text()).toBe("{ broken");
    expect(h.http.requests).toEqual([]);
  });
});
