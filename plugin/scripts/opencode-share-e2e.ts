// The original `/share` flow inside a real OpenCode (a version that still has `/share`):
//
//   bun scripts/opencode-share-e2e.ts <opencode binary> <bshare binary>
//
// In a throwaway HOME: installs the plugin with `bshare plugin install`, starts `bshare serve`
// and a stand-in for OpenCode's share service (set as `enterprise.url`, so nothing leaves the
// machine), starts `opencode serve`, creates a session and shares it through OpenCode's own API.
// Passes when the plugin turned that into a bshare share: registry entry with the original
// plugin's share id, and a share page that answers 200. Needs no model.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBySession, readRegistry } from "../src/registry.ts";
import { startServer } from "../test/server.ts";

const [opencode, bshare] = process.argv.slice(2);
if (opencode === undefined || bshare === undefined) {
  console.error("usage: bun scripts/opencode-share-e2e.ts <opencode binary> <bshare binary>");
  process.exit(2);
}
process.env.BSHARE_BIN = bshare;

const home = mkdtempSync(join(tmpdir(), "bshare-e2e-"));
const project = join(home, "project");
mkdirSync(project);
Bun.spawnSync(["git", "init", "-q", project]);
const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith("XDG_")) env[k] = v;
env.HOME = home;

// OpenCode's share service, reduced to what OpenCode needs to hand out a share URL.
let servicePort = 0;
const service = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req: Request): Promise<Response> {
    const url = new URL(req.url);
    if (req.method === "POST" && url.pathname === "/api/share") {
      return Response.json({ id: "svc12345", url: `http://127.0.0.1:${servicePort}/s/svc12345`, secret: "svc-secret" });
    }
    return Response.json({});
  },
});

servicePort = service.port ?? 0;

const bshareServer = await startServer();
env.BETTER_SHARE_BASE_URL = bshareServer.baseUrl;
writeFileSync(
  join(project, "opencode.json"),
  JSON.stringify({ enterprise: { url: `http://127.0.0.1:${servicePort}` }, share: "manual" }),
);

const install = Bun.spawnSync([bshare, "plugin", "install"], { env });
process.stdout.write(install.stdout);
const port = 20_000 + Math.floor(Math.random() * 20_000);
const oc = Bun.spawn([opencode, "serve", "--port", String(port), "--hostname", "127.0.0.1"], {
  cwd: project,
  env,
  stdout: "ignore",
  stderr: "inherit",
});

let ok = false;
try {
  const api = `http://127.0.0.1:${port}`;
  const q = `?directory=${encodeURIComponent(project)}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${api}/session${q}`)).ok) break;
    } catch {
      // Not listening yet.
    }
    // The first start in a fresh HOME installs OpenCode's plugin dependencies, which takes a while.
    if (i > 1_500) throw new Error("opencode serve did not start");
    await Bun.sleep(200);
  }
  const session = (await (await fetch(`${api}/session${q}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).json()) as { id: string };
  const shared = await fetch(`${api}/session/${session.id}/share${q}`, { method: "POST" });
  const info = (await shared.json()) as { share?: { url?: string } };
  console.log(`OpenCode shared ${session.id} at ${info.share?.url ?? "(no url)"}`);

  const registry = join(home, ".local", "share", "bshare", "shares.json");
  let entry;
  for (let i = 0; i < 150 && entry === undefined; i++) {
    await Bun.sleep(200);
    try {
      entry = findBySession(readRegistry(registry), bshareServer.baseUrl, session.id);
    } catch {
      // Being written.
    }
  }
  if (entry === undefined) throw new Error("the plugin recorded no bshare share");
  const page = await fetch(entry.url);
  ok = entry.shareId === session.id.slice(-8) && page.status === 200;
  console.log(`${ok ? "PASS" : "FAIL"}: /share became ${entry.url} (share id ${entry.shareId}, page HTTP ${page.status})`);
} catch (err) {
  console.log(`FAIL: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  oc.kill();
  await oc.exited;
  service.stop(true);
  await bshareServer.stop();
}
process.exit(ok ? 0 : 1);
