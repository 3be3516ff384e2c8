// The plugin inside the real OpenCode program (BSHARE_TEST_OPENCODE, 1.18.33 in the test command),
// installed the way users install it: `bshare plugin install` into a throwaway HOME.
//   - the server plugin loads and registers its tools (`opencode debug agent build`);
//   - the TUI plugin's slash commands show in the prompt's autocomplete (the TUI in tmux), and
//     share and unshare an imported session with toasts;
//   - OpenCode's own `/share` becomes a bshare share (`opencode serve`, a session shared through
//     OpenCode's API with `enterprise.url` pointing at a local stand-in for OpenCode's service),
//     and a session whose task call ran a subagent is shared with the subagent's session, read
//     through OpenCode's own API.
// Needs no model and no network.

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findBySession, readRegistry } from "../src/registry.ts";
import { bshareBinary, type RunningServer, readAddress, startServer } from "./server.ts";
import { DATA_DIR, loadFixture, tempDir, until } from "./support.ts";

const opencode = process.env.BSHARE_TEST_OPENCODE;

function required(): { opencode: string; bshare: string } {
  const bshare = bshareBinary();
  if (!opencode) throw new Error("BSHARE_TEST_OPENCODE must name an OpenCode binary (scripts/test installs 1.18.33)");
  if (!bshare) throw new Error("no bshare binary: run `cargo build` or set BSHARE_BIN");
  return { opencode, bshare };
}

/** A HOME with the plugin installed by `bshare plugin install`, and a git project in it. */
function userHome(): { home: string; project: string; env: Record<string, string>; cleanup: () => void } {
  const { bshare } = required();
  const dir = tempDir("bshare-opencode-");
  const home = dir.path;
  const project = join(home, "project");
  mkdirSync(project);
  Bun.spawnSync(["git", "init", "-q", project]);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith("XDG_") && !k.startsWith("OPENCODE_")) env[k] = v;
  }
  env.HOME = home;
  env.TERM = "xterm-256color";
  const install = Bun.spawnSync([bshare, "plugin", "install"], { env });
  if (install.exitCode !== 0) throw new Error(`bshare plugin install failed: ${install.stderr.toString()}`);
  // OpenCode installs @opencode-ai/plugin into a config directory with plugins before it answers
  // (minutes on a slow registry, impossible offline). Our files import nothing from it; a
  // node_modules and a lock file naming it make OpenCode skip the install.
  const config = join(home, ".config", "opencode");
  mkdirSync(join(config, "node_modules"), { recursive: true });
  writeFileSync(
    join(config, "package-lock.json"),
    JSON.stringify({ packages: { "": { dependencies: { "@opencode-ai/plugin": "*" } } } }),
  );
  return { home, project, env, cleanup: dir.cleanup };
}

/**
 * Sessions of the test data's OpenCode database as `opencode import` files (`{info, messages}`),
 * moved to `directory`: what `opencode export` would have written.
 */
function exportsFromTestData(ids: string[], directory: string, into: string): string[] {
  const unpacked = tempDir("bshare-oc-data-");
  try {
    const tar = Bun.spawnSync(["tar", "-xzf", join(DATA_DIR, "opencode-1.18.33-datadir.tar.gz"), "-C", unpacked.path]);
    if (tar.exitCode !== 0) throw new Error(`could not unpack the test data: ${tar.stderr.toString()}`);
    const db = new Database(join(unpacked.path, "opencode", "opencode.db"), { readonly: true });
    try {
      return ids.map((id) => {
        const s = db
          .query("SELECT id, slug, project_id, parent_id, title, version, time_created, time_updated FROM session WHERE id = ?")
          .get(id) as Record<string, string | number | null>;
        const info: Record<string, unknown> = {
          id: s.id,
          slug: s.slug,
          projectID: s.project_id,
          directory,
          title: s.title,
          version: s.version,
          time: { created: s.time_created, updated: s.time_updated },
        };
        if (s.parent_id) info.parentID = s.parent_id;
        const messages = (
          db.query("SELECT id, data FROM message WHERE session_id = ? ORDER BY time_created, id").all(id) as Array<{ id: string; data: string }>
        ).map((m) => ({
          info: { ...JSON.parse(m.data), id: m.id, sessionID: id },
          parts: (db.query("SELECT id, data FROM part WHERE message_id = ? ORDER BY id").all(m.id) as Array<{ id: string; data: string }>).map(
            (p) => ({ ...JSON.parse(p.data), id: p.id, sessionID: id, messageID: m.id }),
          ),
        }));
        const file = join(into, `${id}.json`);
        writeFileSync(file, JSON.stringify({ info, messages }));
        return file;
      });
    } finally {
      db.close();
    }
  } finally {
    unpacked.cleanup();
  }
}

/**
 * OpenCode's share service, reduced to what OpenCode needs to hand out a share URL (share `id`),
 * named in the project's `opencode.json`; and `opencode serve` for `u`, its plugin sharing to
 * `bshareUrl`, on a port OpenCode binds itself and names (so no other process can take it between
 * a choice and the bind), once it answers.
 */
async function serveOpencode(
  bin: string,
  u: ReturnType<typeof userHome>,
  bshareUrl: string,
  id: string,
): Promise<{ api: string; q: string; serviceUrl: string; stop: () => Promise<void> }> {
  let serviceUrl = "";
  const service = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req: Request): Promise<Response> {
      const url = new URL(req.url);
      if (req.method === "POST" && url.pathname === "/api/share") {
        return Response.json({ id, url: `${serviceUrl}/s/${id}`, secret: "svc" });
      }
      return Response.json({});
    },
  });
  serviceUrl = `http://127.0.0.1:${service.port}`;
  writeFileSync(join(u.project, "opencode.json"), JSON.stringify({ enterprise: { url: serviceUrl }, share: "manual" }));
  const oc = Bun.spawn([bin, "serve", "--port", "0", "--hostname", "127.0.0.1"], {
    cwd: u.project,
    env: { ...u.env, BETTER_SHARE_BASE_URL: bshareUrl },
    stdout: "pipe",
    stderr: "pipe",
  });
  const stop = async () => {
    oc.kill();
    await oc.exited;
    service.stop(true);
  };
  try {
    const api = await readAddress(oc.stdout, oc.stderr, 60_000);
    const q = `?directory=${encodeURIComponent(u.project)}`;
    await until(async () => {
      try {
        // A request that reaches OpenCode while it starts can stall: each try has its own deadline.
        return (await fetch(`${api}/session${q}`, { signal: AbortSignal.timeout(3_000) })).ok;
      } catch {
        return false;
      }
    }, "opencode serve", 60_000);
    return { api, q, serviceUrl, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

describe("inside OpenCode", () => {
  test("the server plugin loads, with bshare_share and bshare_unshare only when turned on", () => {
    const { opencode: bin } = required();
    const u = userHome();
    try {
      const agent = (env: Record<string, string>) =>
        Bun.spawnSync([bin, "debug", "agent", "build"], { cwd: u.project, env, timeout: 120_000 }).stdout.toString();
      const off = agent(u.env);
      expect(off).toContain('"bash"');
      expect(off).not.toContain('"bshare_share"');
      const on = agent({ ...u.env, BSHARE_PLUGIN_TOOLS: "1" });
      expect(on).toContain('"bshare_share"');
      expect(on).toContain('"bshare_unshare"');
    } finally {
      u.cleanup();
    }
  }, 150_000);

  test("the TUI offers /bshare-share and /bshare-unshare", async () => {
    const { opencode: bin } = required();
    const u = userHome();
    const session = `bshare-oc-${process.pid}-${Date.now()}`;
    // A tmux server of its own: a running one would start OpenCode with its own environment.
    const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", session, ...args], { env: u.env });
    try {
      const started = tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", "-c", u.project, bin);
      expect(started.exitCode).toBe(0);
      const screen = () => tmux("capture-pane", "-p", "-t", session).stdout.toString();
      await until(() => screen().includes("commands"), "the OpenCode prompt", 60_000);
      tmux("send-keys", "-t", session, "-l", "/bshare");
      await until(() => screen().includes("/bshare-unshare"), "the slash command list", 15_000);
      const text = screen();
      expect(text).toContain("/bshare-share");
      expect(text).toContain("Publish this session on your bshare server");
      expect(text).toContain("/bshare-unshare");
    } finally {
      tmux("kill-server");
      u.cleanup();
    }
  }, 120_000);

  describe("with a bshare server", () => {
    let bshareServer: RunningServer;
    beforeAll(async () => {
      bshareServer = await startServer({ createLimit: 100, requestLimit: 100_000 });
    });
    afterAll(async () => {
      await bshareServer.stop();
    });

    test("/bshare-share and /bshare-unshare act on the open session and answer with toasts", async () => {
      const { opencode: bin } = required();
      const u = userHome();
      // A real session with the short fixture's messages, imported the way OpenCode imports exports.
      const fixture = loadFixture("short");
      const exported = join(u.home, "export.json");
      writeFileSync(exported, JSON.stringify({ info: fixture.session, messages: fixture.messages }));
      const imported = Bun.spawnSync([bin, "import", exported], { cwd: u.project, env: u.env, timeout: 60_000 });
      expect(imported.stdout.toString()).toContain(fixture.sessionId);

      const name = `bshare-oc-${process.pid}-${Date.now()}`;
      const env = { ...u.env, BETTER_SHARE_BASE_URL: bshareServer.baseUrl };
      const tmux = (...args: string[]) => Bun.spawnSync(["tmux", "-L", name, ...args], { env });
      const screen = () => tmux("capture-pane", "-p", "-t", name).stdout.toString();
      const registry = join(u.home, ".local", "share", "bshare", "shares.json");
      const entry = () => {
        try {
          return findBySession(readRegistry(registry), bshareServer.baseUrl, fixture.sessionId);
        } catch {
          return undefined;
        }
      };
      try {
        tmux("new-session", "-d", "-s", name, "-x", "160", "-y", "50", "-c", u.project, bin, "-s", fixture.sessionId);
        await until(() => screen().includes("Both build a new sequence"), "the session on screen", 60_000);

        tmux("send-keys", "-t", name, "-l", "/bshare-share");
        await until(() => screen().includes("Publish this session"), "the autocomplete", 15_000);
        tmux("send-keys", "-t", name, "Enter");
        await until(() => entry() !== undefined, "the share in the registry", 30_000);
        const share = entry()!;
        await until(() => screen().includes(`Shared: ${share.url}`), "the toast with the link", 15_000);
        const page = await fetch(share.url);
        expect(page.status).toBe(200);
        expect(await page.text()).toContain("Quick question: when should I use a list comprehension");

        tmux("send-keys", "-t", name, "-l", "/bshare-unshare");
        await until(() => screen().includes("Take this session"), "the autocomplete", 15_000);
        tmux("send-keys", "-t", name, "Enter");
        await until(() => screen().includes(`Unshared ${share.url}`), "the unshare toast", 30_000);
        expect(entry()).toBeUndefined();
        expect((await fetch(share.url)).status).toBe(410);
      } finally {
        tmux("kill-server");
        u.cleanup();
      }
    }, 180_000);

    test("OpenCode's own /share becomes a bshare share with the original plugin's share id", async () => {
      const { opencode: bin } = required();
      const u = userHome();
      const { api, q, serviceUrl, stop } = await serveOpencode(bin, u, bshareServer.baseUrl, "svc12345");
      try {
        const created = await fetch(`${api}/session${q}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: "{}",
        });
        const session = (await created.json()) as { id: string };
        const shared = (await (await fetch(`${api}/session/${session.id}/share${q}`, { method: "POST" })).json()) as {
          share?: { url?: string };
        };
        expect(shared.share?.url).toBe(`${serviceUrl}/s/svc12345`);

        const registry = join(u.home, ".local", "share", "bshare", "shares.json");
        const entry = () => {
          try {
            return findBySession(readRegistry(registry), bshareServer.baseUrl, session.id);
          } catch {
            return undefined;
          }
        };
        await until(() => entry() !== undefined, "the plugin's registry entry", 30_000);
        const share = entry()!;
        expect(share.shareId).toBe(session.id.slice(-8));
        await until(async () => (await fetch(share.url)).status === 200, "the share page", 30_000);
      } finally {
        await stop();
        u.cleanup();
      }
    }, 150_000);

    test("a session whose task call ran a subagent is shared with the subagent's session", async () => {
      const { opencode: bin } = required();
      const u = userHome();
      const parentId = "ses_df514140fffe4u9ZGLczLpllLo";
      const childId = "ses_df513f00effeN6zuJLa81BZRUQ";
      for (const file of exportsFromTestData([parentId, childId], u.project, u.home)) {
        const imported = Bun.spawnSync([bin, "import", file], { cwd: u.project, env: u.env, timeout: 60_000 });
        expect(imported.stdout.toString()).toContain("Imported session");
      }
      const { api, q, stop } = await serveOpencode(bin, u, bshareServer.baseUrl, "svc23456");
      try {
        const shared = await fetch(`${api}/session/${parentId}/share${q}`, { method: "POST" });
        expect(shared.ok).toBe(true);

        const registry = join(u.home, ".local", "share", "bshare", "shares.json");
        const entry = () => {
          try {
            return findBySession(readRegistry(registry), bshareServer.baseUrl, parentId);
          } catch {
            return undefined;
          }
        };
        await until(() => entry() !== undefined, "the plugin's registry entry", 30_000);
        const share = entry()!;
        type Doc = { children?: Array<{ session: { id: string; parentID?: string }; messages: Array<{ parts: Array<{ tool?: string }> }> }> };
        let doc: Doc = {};
        await until(async () => {
          const res = await fetch(`${bshareServer.baseUrl}/api/share/${share.shareId}`);
          if (!res.ok) return false;
          doc = (await res.json()) as Doc;
          return (doc.children?.length ?? 0) > 0;
        }, "the document with its subagent", 30_000);
        expect(doc.children?.map((c) => c.session.id)).toEqual([childId]);
        expect(doc.children?.[0]?.session.parentID).toBe(parentId);
        expect(doc.children?.[0]?.messages.flatMap((m) => m.parts).some((p) => p.tool === "grep")).toBe(true);
        const html = await (await fetch(share.url)).text();
        const nested = html.indexOf('<details class="subagent"');
        expect(nested).toBeGreaterThan(html.indexOf('<span class="tt">Scan for TODO comments</span>'));
        expect(html.indexOf("Line 7: # TODO: support floats", nested)).toBeGreaterThan(nested);
      } finally {
        await stop();
        u.cleanup();
      }
    }, 150_000);
  });
});
