// The local share registry `$XDG_DATA_HOME/bshare/shares.json` (DESIGN.md §4).
//
// Written by this plugin and by the `bshare` CLI, possibly at the same moment, so every write
// follows the same protocol as the Rust side (`src/lib/registry.rs`; ARCHITECTURE.md, "The
// registry lock"). Bun has no flock, so the lock is a file holding its owner's token:
//   1. take `shares.json.lock` with O_CREAT|O_EXCL, holding "<pid> <random token>\n"; if it
//      exists, retry every 10–30 ms for up to 10 s;
//   2. a lock older than 30 s belongs to a writer that died: take it over only by *claiming* it
//      (rename it to `shares.json.lock.claim-<token>`, read what was moved, remove it only if it
//      is the content judged stale, else rename it back), then go to 1;
//   3. read shares.json (missing = empty; unparsable = error, the file is never overwritten);
//   4. modify, write `shares.json.tmp-<pid>-<hex>` (mode 0600), fsync; check that the lock still
//      holds our token (else write nothing and fail), rename over shares.json;
//   5. release by claiming the lock with our own content, also on error: a lock that is not ours
//      (any more) is put back, never removed.
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
 * Returns what `change` returned. `lockWaitMs` is how long a held lock is waited for.
 */
export async function updateRegistry<T>(
  path: string,
  change: (file: RegistryFile) => T,
  options: { lockWaitMs?: number } = {},
): Promise<T> {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new RegistryError(`Could not create ${dir}: ${messageOf(err)}`, { cause: err });
  }
  const lockPath = `${path}.lock`;
  const token = randomBytes(16).toString("hex");
  const content = `${process.pid} ${token}\n`;
  await acquireLock(lockPath, content, token, options.lockWaitMs ?? LOCK_TIMEOUT_MS);
  try {
    const file = readRegistry(path);
    const result = change(file);
    writeAtomically(path, `${JSON.stringify(file, null, 2)}\n`, () => readLock(lockPath) === content);
    return result;
  } finally {
    claim(lockPath, content, token);
  }
}

async function acquireLock(lockPath: string, content: string, token: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let fd: number | undefined;
    try {
      fd = openSync(lockPath, "wx", 0o600);
    } catch (err) {
      if (!isCode(err, "EEXIST")) {
        throw new RegistryError(`Could not create the lock ${lockPath}: ${messageOf(err)}`, { cause: err });
      }
    }
    if (fd !== undefined) {
      try {
        writeSync(fd, content);
      } catch (err) {
        closeSync(fd);
        claim(lockPath, content, token);
        throw new RegistryError(`Could not write the lock ${lockPath}: ${messageOf(err)}`, { cause: err });
      }
      closeSync(fd);
      return;
    }
    const stale = staleContent(lockPath);
    if (stale !== undefined) {
      claim(lockPath, stale, token);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new RegistryError(
        `The share registry is locked by another program (${lockPath} exists for more than ${Math.round(waitMs / 1000)} s).`,
      );
    }
    await sleep(10 + Math.floor(Math.random() * 21));
  }
}

/** The lock file's content, or undefined when it cannot be read (gone). */
function readLock(lockPath: string): string | undefined {
  try {
    return readFileSync(lockPath, "utf8");
  } catch {
    return undefined;
  }
}

/** The lock file's content when it is older than 30 s: its writer died. */
function staleContent(lockPath: string): string | undefined {
  try {
    if (Date.now() - statSync(lockPath).mtimeMs <= LOCK_STALE_MS) return undefined;
  } catch {
    // Gone already: not stale, the next open will tell.
    return undefined;
  }
  return readLock(lockPath);
}

/**
 * Removes the lock file if, and only if, it holds `expected`: moves it aside under a name of our
 * own (atomic, so no one else gets the same file), looks at what was moved, and puts it back
 * when it is someone else's. Should a third writer have created a lock in the moment between,
 * that one is replaced, and its own check before renaming the registry stops it from writing.
 */
function claim(lockPath: string, expected: string, token: string): boolean {
  const aside = `${lockPath}.claim-${token}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    // Gone already: its writer released it, or another claimed it.
    return false;
  }
  if (readLock(aside) === expected) {
    try {
      unlinkSync(aside);
    } catch {
      // Nothing else can have this name; a failure leaves only a stray file.
    }
    return true;
  }
  try {
    renameSync(aside, lockPath);
  } catch {
    try {
      unlinkSync(aside);
    } catch {
      // As above.
    }
  }
  return false;
}

/** Writes through a temp file; `stillHeld` is asked right before the rename. */
function writeAtomically(path: string, text: string, stillHeld: () => boolean): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const fd = openSync(tmp, "wx", 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (!stillHeld()) {
      unlinkSync(tmp);
      throw new RegistryError(
        `This writer held the registry lock ${path}.lock for over ${LOCK_STALE_MS / 1000} s, so another one took it over; nothing was written, try again.`,
      );
    }
    renameSync(tmp, path);
  } catch (err) {
    if (err instanceof RegistryError) throw err;
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
