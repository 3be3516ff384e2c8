// The local share registry `$XDG_DATA_HOME/bshare/shares.json` (DESIGN.md §4).
//
// Written by this plugin and by the `bshare` CLI, possibly at the same moment, so every write
// follows the same protocol as the Rust side (`src/lib/registry.rs`):
//   1. take `shares.json.lock` with O_CREAT|O_EXCL, write "<pid>\n"; if it exists, retry every
//      10–30 ms for up to 10 s, and remove a lock older than 30 s (its writer died);
//   2. read shares.json (missing = empty; unparsable = error, the file is never overwritten);
//   3. modify, write `shares.json.tmp-<pid>-<hex>` (mode 0600), fsync, rename over shares.json;
//   4. remove the lock, also on error.
// Readers take no lock: the rename makes every version of the file whole.

import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

/** One share. Fields the plugin does not know are kept as they are. */
export interface RegistryEntry {
  shareId: string;
  sessionId: string;
  secret: string;
  url: string;
  server: string;
  title: string;
  createdAt: number;
  updatedAt: number;
  /** When the share expires (epoch ms); absent: never. */
  expiresAt?: number;
  [extra: string]: unknown;
}

export interface RegistryFile {
  version: number;
  shares: RegistryEntry[];
  [extra: string]: unknown;
}

export class RegistryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "RegistryError";
  }
}

const LOCK_TIMEOUT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

/** `$XDG_DATA_HOME/bshare/shares.json`, XDG_DATA_HOME defaulting to `~/.local/share`. */
export function defaultRegistryPath(env: Record<string, string | undefined> = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && xdg !== "" ? xdg : join(env.HOME ?? homedir(), ".local", "share");
  return join(base, "bshare", "shares.json");
}

/** Reads the registry without the lock. A missing file is an empty registry. */
export function readRegistry(path: string): RegistryFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (isCode(err, "ENOENT")) return { version: 1, shares: [] };
    throw new RegistryError(`Could not read the share registry ${path}: ${messageOf(err)}`, { cause: err });
  }
  return parseRegistry(text, path);
}

function parseRegistry(text: string, path: string): RegistryFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RegistryError(
      `The share registry ${path} is not valid JSON; fix or move it away (it is left as it is).`,
      { cause: err },
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new RegistryError(`The share registry ${path} is not a JSON object; it is left as it is.`);
  }
  const file = json as Record<string, unknown>;
  if (file.shares === undefined) file.shares = [];
  if (!Array.isArray(file.shares)) {
    throw new RegistryError(`The share registry ${path} has no "shares" list; it is left as it is.`);
  }
  if (file.version === undefined) file.version = 1;
  return file as RegistryFile;
}

/**
 * Runs `change` on the registry under the lock and writes the result atomically.
 * Returns what `change` returned.
 */
export async function updateRegistry<T>(path: string, change: (file: RegistryFile) => T): Promise<T> {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RegistryError(`Could not create ${dir}: ${messageOf(err)}`, { cause: err });
  }
  const lockPath = `${path}.lock`;
  await acquireLock(lockPath);
  try {
    const file = readRegistry(path);
    const result = change(file);
    writeAtomically(path, `${JSON.stringify(file, null, 2)}\n`);
    return result;
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {
      // Someone judged our lock stale and removed it; nothing left to clean up.
    }
  }
}

async function acquireLock(lockPath: string): Promise<void> {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const fd = openSync(lockPath, "wx", 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return;
    } catch (err) {
      if (!isCode(err, "EEXIST")) {
        throw new RegistryError(`Could not create the lock ${lockPath}: ${messageOf(err)}`, { cause: err });
      }
    }
    if (lockIsStale(lockPath)) {
      try {
        unlinkSync(lockPath);
      } catch {
        // Another writer removed it first; just retry.
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new RegistryError(
        `The share registry is locked by another program (${lockPath} exists for more than ${LOCK_TIMEOUT_MS / 1000} s).`,
      );
    }
    await sleep(10 + Math.floor(Math.random() * 21));
  }
}

function lockIsStale(lockPath: string): boolean {
  try {
    return Date.now() - statSync(lockPath).mtimeMs > LOCK_STALE_MS;
  } catch {
    // Gone already: not stale, the next open will tell.
    return false;
  }
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // The temp file was never created or is already renamed.
    }
    throw new RegistryError(`Could not write the share registry ${path}: ${messageOf(err)}`, { cause: err });
  }
  syncDir(dirname(path));
}

/** Makes the rename durable; not every platform can open a directory, hence best effort. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Windows and some file systems refuse; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Adds the entry, or replaces the one with the same (server, shareId). */
export function upsertEntry(file: RegistryFile, entry: RegistryEntry): void {
  const i = file.shares.findIndex((e) => sameServer(e.server, entry.server) && e.shareId === entry.shareId);
  if (i === -1) {
    file.shares.push(entry);
  } else {
    // Keeps fields another program added to the entry.
    file.shares[i] = { ...file.shares[i], ...entry };
  }
}

/** Removes the entry with this (server, shareId); says whether there was one. */
export function removeEntry(file: RegistryFile, server: string, shareId: string): boolean {
  const before = file.shares.length;
  file.shares = file.shares.filter((e) => !(sameServer(e.server, server) && e.shareId === shareId));
  return file.shares.length !== before;
}

/** The newest share of a session on a server. */
export function findBySession(file: RegistryFile, server: string, sessionId: string): RegistryEntry | undefined {
  let found: RegistryEntry | undefined;
  for (const e of file.shares) {
    if (e.sessionId !== sessionId || !sameServer(e.server, server)) continue;
    if (found === undefined || (e.createdAt ?? 0) > (found.createdAt ?? 0)) found = e;
  }
  return found;
}

function sameServer(a: unknown, b: string): boolean {
  return typeof a === "string" && a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}

function isCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
