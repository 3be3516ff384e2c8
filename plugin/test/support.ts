// Test support: an OpenCode client that serves the fixture sessions from tests/data (no real
// OpenCode), a fake TUI API, and a fetch that counts and can tamper with requests.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PluginInput } from "@opencode-ai/plugin";
import type { SessionMessage, ShareData } from "../src/document.ts";
import type { KeymapCommand, TuiApiSubset } from "../src/tui.ts";

export const DATA_DIR = join(import.meta.dir, "..", "..", "tests", "data");

export function loadFixture(name: "short" | "long"): ShareData {
  return JSON.parse(readFileSync(join(DATA_DIR, `opencode-1.18.33-${name}.sharedata.json`), "utf8")) as ShareData;
}

export interface Toast {
  title?: string;
  message: string;
  variant?: string;
}

/** A session OpenCode would hold: the fixture's session and messages, changeable by the test. */
export class FixtureSession {
  readonly id: string;
  session: ShareData["session"];
  messages: SessionMessage[];

  constructor(doc: ShareData, id?: string) {
    this.id = id ?? doc.sessionId;
    this.session = { ...doc.session, id: this.id };
    this.messages = structuredClone(doc.messages);
  }

  /** Appends a user message with one text part, as OpenCode would when the user types. */
  addUserMessage(text: string): SessionMessage {
    const n = this.messages.length + 1;
    const messageID = `msg_test${String(n).padStart(4, "0")}`;
    const message = {
      info: {
        id: messageID,
        sessionID: this.id,
        role: "user",
        time: { created: Date.now() },
        agent: "build",
        model: { providerID: "fake", modelID: "m1" },
      },
      parts: [{ id: `prt_test${n}`, sessionID: this.id, messageID, type: "text", text }],
    } as unknown as SessionMessage;
    this.messages.push(message);
    return message;
  }
}

/** The v1 SDK client surface the server plugin uses, backed by fixture sessions. */
export class FakeOpencode {
  readonly sessions = new Map<string, FixtureSession>();
  readonly toasts: Toast[] = [];
  readonly logs: Array<{ level: string; message: string }> = [];

  add(session: FixtureSession): FixtureSession {
    this.sessions.set(session.id, session);
    return session;
  }

  /** What OpenCode's `session.children` answers: the sessions whose `parentID` is `id`. */
  childrenOf(id: string): ShareData["session"][] {
    return [...this.sessions.values()]
      .filter((s) => (s.session as { parentID?: string }).parentID === id)
      .map((s) => structuredClone(s.session));
  }

  get client(): PluginInput["client"] {
    const find = (id: string) => this.sessions.get(id);
    const notFound = { data: undefined, error: { name: "NotFoundError", data: { message: "Session not found" } }, response: { status: 404 } };
    const fake = {
      session: {
        get: async ({ path }: { path: { id: string } }) => {
          const s = find(path.id);
          return s ? { data: structuredClone(s.session) } : notFound;
        },
        messages: async ({ path }: { path: { id: string } }) => {
          const s = find(path.id);
          return s ? { data: structuredClone(s.messages) } : notFound;
        },
        children: async ({ path }: { path: { id: string } }) => {
          return find(path.id) ? { data: this.childrenOf(path.id) } : notFound;
        },
      },
      tui: {
        showToast: async ({ body }: { body: Toast }) => {
          this.toasts.push(body);
          return { data: true };
        },
      },
      app: {
        log: async ({ body }: { body: { level: string; message: string } }) => {
          this.logs.push({ level: body.level, message: body.message });
          return { data: true };
        },
      },
    };
    return fake as unknown as PluginInput["client"];
  }

  /** The same sessions through the v2 client shape the TUI plugin gets. */
  get v2client(): unknown {
    const find = (id: string) => this.sessions.get(id);
    return {
      session: {
        get: async ({ sessionID }: { sessionID: string }) => {
          const s = find(sessionID);
          return s ? { data: structuredClone(s.session) } : { error: { name: "NotFoundError" }, response: { status: 404 } };
        },
        messages: async ({ sessionID }: { sessionID: string }) => {
          const s = find(sessionID);
          return s ? { data: structuredClone(s.messages) } : { error: { name: "NotFoundError" }, response: { status: 404 } };
        },
        children: async ({ sessionID }: { sessionID: string }) => {
          return find(sessionID)
            ? { data: this.childrenOf(sessionID) }
            : { error: { name: "NotFoundError" }, response: { status: 404 } };
        },
      },
    };
  }
}

/** A TUI plugin API with just what the plugin touches; records toasts and registered commands. */
export class FakeTui {
  readonly toasts: Toast[] = [];
  commands: KeymapCommand[] = [];
  route: { name: string; params?: Record<string, unknown> } = { name: "home" };

  constructor(private readonly opencode: FakeOpencode) {}

  api(kind: "keymap" | "command"): TuiApiSubset {
    const self = this;
    const base: TuiApiSubset = {
      client: this.opencode.v2client,
      route: {
        get current() {
          return self.route;
        },
      },
      ui: { toast: (t) => void this.toasts.push(t) },
    };
    if (kind === "keymap") {
      base.keymap = {
        registerLayer: (layer) => {
          this.commands = layer.commands;
          return () => {
            this.commands = [];
          };
        },
      };
    } else {
      base.command = {
        register: (cb) => {
          this.commands = cb().map((c) => ({
            namespace: "palette",
            name: c.value,
            title: c.title,
            desc: c.description ?? "",
            category: c.category ?? "",
            slashName: c.slash?.name ?? "",
            run: c.onSelect ?? (() => undefined),
          }));
          return () => {
            this.commands = [];
          };
        },
      };
    }
    return base;
  }

  /** Runs a slash command the way the prompt's autocomplete does. */
  async slash(name: string): Promise<void> {
    const command = this.commands.find((c) => c.slashName === name);
    if (command === undefined) throw new Error(`no /${name} registered`);
    await command.run();
  }
}

/** A fetch that records every request and lets a test rewrite or fail one. */
export class RecordingFetch {
  readonly requests: Array<{ method: string; url: string }> = [];
  tamper: ((url: string, init: RequestInit | undefined) => { url: string; init?: RequestInit } | undefined) | undefined;

  readonly fetch = async (url: string, init?: RequestInit): Promise<Response> => {
    this.requests.push({ method: init?.method ?? "GET", url });
    const changed = this.tamper?.(url, init);
    return fetch(changed?.url ?? url, changed?.init ?? init);
  };

  count(method: string, pattern: RegExp): number {
    return this.requests.filter((r) => r.method === method && pattern.test(r.url)).length;
  }
}

export function tempDir(prefix: string): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The address of a port nothing listens on: a server that is down. */
export async function deadServer(): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const p = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(p));
    });
  });
  return `http://127.0.0.1:${port}`;
}
