import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defaultRegistryPath,
  findBySession,
  readRegistry,
  RegistryError,
  type RegistryEntry,
  removeEntry,
  updateRegistry,
  upsertEntry,
} from "../src/registry.ts";

let dir: string;
let path: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bshare-registry-"));
  path = join(dir, "bshare", "shares.json");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function entry(shareId: string, extra: Partial<RegistryEntry> = {}): RegistryEntry {
  return {
    shareId,
    sessionId: `ses_${shareId}`,
    secret: "s3cret",
    url: `http://127.0.0.1:8080/share/${shareId}`,
    server: "http://127.0.0.1:8080",
    title: "t",
    createdAt: 1,
    updatedAt: 1,
    ...extra,
  };
}

describe("registry path", () => {
  test("XDG_DATA_HOME wins, ~/.local/share otherwise", () => {
    expect(defaultRegistryPath({ XDG_DATA_HOME: "/x", HOME: "/h" })).toBe("/x/bshare/shares.json");
    expect(defaultRegistryPath({ HOME: "/h" })).toBe("/h/.local/share/bshare/shares.json");
    expect(defaultRegistryPath({ XDG_DATA_HOME: "", HOME: "/h" })).toBe("/h/.local/share/bshare/shares.json");
  });
});

describe("registry file", () => {
  test("a missing file reads as an empty registry", () => {
    expect(readRegistry(path)).toEqual({ version: 1, shares: [] });
  });

  test("the first write creates the directory 0700 and the file 0600, and drops the lock", async () => {
    await updateRegistry(path, (f) => upsertEntry(f, entry("AAAAAAAA")));
    expect(statSync(join(dir, "bshare")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(existsSync(`${path}.lock`)).toBe(false);
    expect(readdirSync(join(dir, "bshare"))).toEqual(["shares.json"]);
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file.version).toBe(1);
    expect(file.shares).toHaveLength(1);
    expect(file.shares[0].shareId).toBe("AAAAAAAA");
  });

  test("unknown top-level and per-entry fields survive a rewrite", async () => {
    await updateRegistry(path, () => undefined);
    writeFileSync(
      path,
      JSON.stringify({
        version: 1,
        future: { keep: true },
        shares: [{ ...entry("KEEPKEEP"), pinned: true }],
      }),
    );
    await updateRegistry(path, (f) => upsertEntry(f, entry("NEWNEWNE")));
    await updateRegistry(path, (f) => upsertEntry(f, entry("KEEPKEEP", { title: "renamed" })));
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file.future).toEqual({ keep: true });
    const kept = file.shares.find((e: RegistryEntry) => e.shareId === "KEEPKEEP");
    expect(kept.pinned).toBe(true);
    expect(kept.title).toBe("renamed");
    expect(file.shares).toHaveLength(2);
  });

  test("entries are keyed by (server, shareId)", async () => {
    await updateRegistry(path, (f) => {
      upsertEntry(f, entry("SAMEIDID"));
      upsertEntry(f, entry("SAMEIDID", { server: "https://other.example" }));
      upsertEntry(f, entry("SAMEIDID", { server: "http://127.0.0.1:8080/", title: "again" }));
    });
    const file = readRegistry(path);
    expect(file.shares).toHaveLength(2);
    expect(findBySession(file, "http://127.0.0.1:8080", "ses_SAMEIDID")?.title).toBe("again");
    await updateRegistry(path, (f) => removeEntry(f, "https://other.example", "SAMEIDID"));
    expect(readRegistry(path).shares.map((e) => e.server.replace(/\/+$/, ""))).toEqual(["http://127.0.0.1:8080"]);
  });

  test("an unparsable file is an error and is never overwritten", async () => {
    await updateRegistry(path, () => undefined);
    writeFileSync(path, "{ not json");
    expect(() => readRegistry(path)).toThrow(RegistryError);
    await expect(updateRegistry(path, (f) => upsertEntry(f, entry("AAAAAAAA")))).rejects.toThrow(/not valid JSON/);
    expect(readFileSync(path, "utf8")).toBe("{ not json");
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("an error inside the change leaves the file alone and drops the lock", async () => {
    await updateRegistry(path, (f) => upsertEntry(f, entry("AAAAAAAA")));
    const before = readFileSync(path, "utf8");
    await expect(
      updateRegistry(path, () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(readFileSync(path, "utf8")).toBe(before);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });

  test("a held lock is waited for", async () => {
    await updateRegistry(path, () => undefined);
    writeFileSync(`${path}.lock`, "99999\n");
    setTimeout(() => rmSync(`${path}.lock`), 150);
    const started = Date.now();
    await updateRegistry(path, (f) => upsertEntry(f, entry("WAITWAIT")));
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(readRegistry(path).shares).toHaveLength(1);
  });

  test("a lock older than 30 s is stale and taken over, even by a writer that does not wait", async () => {
    await updateRegistry(path, () => undefined);
    writeFileSync(`${path}.lock`, "99999 deadwriter\n");
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${path}.lock`, old, old);
    await updateRegistry(path, (f) => upsertEntry(f, entry("STALESTA")), { lockWaitMs: 0 });
    expect(readRegistry(path).shares[0]?.shareId).toBe("STALESTA");
    expect(existsSync(`${path}.lock`)).toBe(false);
    // A fresh lock is not stale: without waiting, the write fails at once.
    writeFileSync(`${path}.lock`, "99999 livewriter\n");
    await expect(updateRegistry(path, () => undefined, { lockWaitMs: 0 })).rejects.toThrow("locked by another program");
    expect(readFileSync(`${path}.lock`, "utf8")).toBe("99999 livewriter\n");
  });

  test("release never removes another writer's lock", async () => {
    await updateRegistry(path, (f) => {
      upsertEntry(f, entry("MINEMINE"));
      // Our lock is replaced (as if we had stalled for over 30 s and been taken over).
      writeFileSync(`${path}.lock`, "4242 otherwriter\n");
    }).catch(() => undefined);
    expect(readFileSync(`${path}.lock`, "utf8")).toBe("4242 otherwriter\n");
    expect(readdirSync(join(dir, "bshare")).filter((n) => n.includes(".claim-"))).toEqual([]);
  });

  test("a writer whose lock was taken over writes nothing", async () => {
    const lock = `${path}.lock`;
    let inner: Promise<void> | undefined;
    const outer = updateRegistry(path, (f) => {
      upsertEntry(f, entry("SLOWSLOW"));
      // This writer stalls for over 30 s: its lock turns stale, and another writer takes over
      // and finishes (synchronously here, as it needs no waiting) before this one commits.
      const old = new Date(Date.now() - 60_000);
      utimesSync(lock, old, old);
      inner = updateRegistry(path, (g) => upsertEntry(g, entry("FASTFAST")), { lockWaitMs: 0 });
    });
    await expect(outer).rejects.toThrow("nothing was written");
    await inner;
    expect(readRegistry(path).shares.map((e) => e.shareId)).toEqual(["FASTFAST"]);
    expect(existsSync(lock)).toBe(false);
  });
});

describe("concurrent writers", () => {
  test("two processes adding 50 entries each at the same time keep all 100", async () => {
    const script = join(import.meta.dir, "registry-writer.ts");
    const spawnWriter = (prefix: string) =>
      Bun.spawn([process.execPath, script, path, "50", prefix], { stdout: "pipe", stderr: "pipe" });
    const a = spawnWriter("procA");
    const b = spawnWriter("procB");
    const [codeA, codeB] = await Promise.all([a.exited, b.exited]);
    const errA = await new Response(a.stderr).text();
    const errB = await new Response(b.stderr).text();
    expect({ codeA, errA, codeB, errB }).toEqual({ codeA: 0, errA: "", codeB: 0, errB: "" });
    const ids = readRegistry(path).shares.map((e) => e.shareId);
    expect(ids).toHaveLength(100);
    expect(new Set(ids).size).toBe(100);
    expect(ids.filter((id) => id.startsWith("procA-"))).toHaveLength(50);
    expect(ids.filter((id) => id.startsWith("procB-"))).toHaveLength(50);
    expect(existsSync(`${path}.lock`)).toBe(false);
  }, 60_000);
});
