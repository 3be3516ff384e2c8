// bshare-opencode-plugin 0.1.0 (server plugin); built from plugin/src/index.ts, do not edit

// src/api.ts
class ShareApiError extends Error {
  kind;
  status;
  code;
  retryAfter;
  constructor(message, kind, opts = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ShareApiError";
    this.kind = kind;
    this.status = opts.status;
    this.code = opts.code;
    this.retryAfter = opts.retryAfter;
  }
  get shareGone() {
    if (this.kind !== "http")
      return false;
    return this.status === 410 || this.status === 404 && (this.code === undefined || this.code === "SHARE_NOT_FOUND");
  }
}
function normalizeServer(base) {
  return base.trim().replace(/\/+$/, "");
}

class ShareApi {
  server;
  fetchImpl;
  constructor(server, fetchImpl = (input, init) => fetch(input, init)) {
    this.server = normalizeServer(server);
    this.fetchImpl = fetchImpl;
  }
  async create(input) {
    const body = { sessionId: input.sessionId, size: input.size };
    if (input.shareId !== undefined)
      body.shareId = input.shareId;
    const res = await this.call("POST", "/api/share/presign", { body });
    const json = await readJson(res, "creating the share");
    for (const key of ["shareId", "url", "presignedUrl", "secret"]) {
      if (typeof json[key] !== "string") {
        throw new ShareApiError(`The bshare server's answer to a new share has no ${key}.`, "protocol");
      }
    }
    return json;
  }
  async presign(shareId, secret, size) {
    const res = await this.call("POST", `/api/share/${encodeURIComponent(shareId)}/presign`, {
      body: { size },
      secret
    });
    const json = await readJson(res, "asking for an upload URL");
    if (typeof json.presignedUrl !== "string") {
      throw new ShareApiError("The bshare server's answer has no presignedUrl.", "protocol");
    }
    return json;
  }
  async remove(shareId, secret) {
    const res = await this.call("DELETE", `/api/share/${encodeURIComponent(shareId)}`, { secret });
    await res.body?.cancel();
  }
  async upload(presignedUrl, body) {
    let res;
    try {
      res = await this.fetchImpl(presignedUrl, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body
      });
    } catch (err) {
      throw new ShareApiError(`Could not upload the session: ${hostOf(presignedUrl)} is not reachable (${causeText(err)}).`, "unreachable", { cause: err });
    }
    if (res.ok) {
      await res.body?.cancel();
      return;
    }
    const detail = await errorDetail(res);
    throw new ShareApiError(`The upload was rejected (HTTP ${res.status})${detail.sentence ? `: ${detail.sentence}` : "."}`, "upload", { status: res.status, code: detail.code });
  }
  async call(method, path, opts) {
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined)
      headers["Content-Type"] = "application/json";
    if (opts.secret !== undefined)
      headers["X-Share-Secret"] = opts.secret;
    let res;
    try {
      res = await this.fetchImpl(this.server + path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
      });
    } catch (err) {
      throw new ShareApiError(`The bshare server at ${this.server} is not reachable (${causeText(err)}). Is \`bshare serve\` running, and is BETTER_SHARE_BASE_URL right?`, "unreachable", { cause: err });
    }
    if (res.ok)
      return res;
    const detail = await errorDetail(res);
    const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
    let sentence = detail.sentence ?? `The bshare server answered HTTP ${res.status}.`;
    if (res.status === 429 && retryAfter !== undefined && !/retry|again/i.test(sentence)) {
      sentence = `${withStop(sentence)} Try again in ${retryAfter} s.`;
    }
    throw new ShareApiError(sentence, "http", { status: res.status, code: detail.code, retryAfter });
  }
}
async function readJson(res, what) {
  try {
    const json = await res.json();
    if (json !== null && typeof json === "object")
      return json;
  } catch {}
  throw new ShareApiError(`The bshare server's answer to ${what} is not JSON.`, "protocol");
}
async function errorDetail(res) {
  let text = "";
  try {
    text = await res.text();
  } catch {
    return {};
  }
  try {
    const json = JSON.parse(text);
    if (json !== null && typeof json === "object") {
      const obj = json;
      const sentence = typeof obj.error === "string" ? obj.error : undefined;
      const code = typeof obj.code === "string" ? obj.code : undefined;
      return { sentence, code };
    }
  } catch {}
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  if (message !== undefined)
    return { sentence: message, code };
  const trimmed = text.trim();
  if (trimmed.length > 0 && trimmed.length <= 200 && !trimmed.startsWith("<"))
    return { sentence: trimmed };
  return {};
}
function parseRetryAfter(value) {
  if (value === null)
    return;
  const seconds = Number.parseInt(value, 10);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}
function withStop(sentence) {
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}
function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return "the upload server";
  }
}
function causeText(err) {
  const seen = new Set;
  let cur = err;
  let best = "unknown error";
  while (cur !== null && cur !== undefined && !seen.has(cur)) {
    seen.add(cur);
    const obj = cur;
    if (obj.code === "ECONNREFUSED" || obj.code === "ConnectionRefused")
      return "connection refused";
    if (obj.code === "ENOTFOUND")
      return "host not found";
    if (obj.code === "ETIMEDOUT")
      return "timed out";
    if (typeof obj.message === "string" && obj.message.length > 0)
      best = obj.message;
    cur = obj.cause;
  }
  if (/refused/i.test(best))
    return "connection refused";
  return best;
}

// src/clipboard.ts
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
function pickClipboard({ platform, env, has }) {
  if (platform === "darwin" && has("pbcopy"))
    return { cmd: "pbcopy", args: [] };
  if (platform === "win32")
    return { cmd: "clip.exe", args: [] };
  const wayland = Boolean(env.WAYLAND_DISPLAY);
  const x11 = Boolean(env.DISPLAY);
  if (wayland && has("wl-copy"))
    return { cmd: "wl-copy", args: [] };
  if (x11 && has("xclip"))
    return { cmd: "xclip", args: ["-selection", "clipboard"] };
  if (x11 && has("xsel"))
    return { cmd: "xsel", args: ["--clipboard", "--input"] };
  if (has("clip.exe"))
    return { cmd: "clip.exe", args: [] };
  return;
}
function osc52(text, env) {
  const seq = `\x1B]52;c;${Buffer.from(text, "utf8").toString("base64")}\x07`;
  if (env.TMUX)
    return `\x1BPtmux;\x1B${seq}\x1B\\`;
  if (env.STY)
    return `\x1BP${seq}\x1B\\`;
  return seq;
}
function onPath(cmd, env = process.env) {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "")
      continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}
async function copyToClipboard(text) {
  const picked = pickClipboard({ platform: process.platform, env: process.env, has: (c) => onPath(c) });
  if (picked !== undefined) {
    const error = await runWithInput(picked, text);
    if (error === undefined)
      return { via: picked.cmd };
    if (!process.stdout.isTTY)
      return { via: undefined, reason: `${picked.cmd} failed: ${error}` };
  }
  if (process.stdout.isTTY) {
    process.stdout.write(osc52(text, process.env));
    return { via: "OSC 52" };
  }
  return { via: undefined, reason: "no clipboard program found and no terminal for OSC 52" };
}
function runWithInput(c, text) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (error) => {
      if (settled)
        return;
      settled = true;
      resolve(error);
    };
    try {
      const child = spawn(c.cmd, c.args, { stdio: ["pipe", "ignore", "ignore"] });
      child.on("error", (err) => done(err.message));
      child.on("close", (code) => done(code === 0 ? undefined : `exit status ${code}`));
      setTimeout(() => done(undefined), 2000).unref?.();
      child.stdin.on("error", (err) => done(err.message));
      child.stdin.end(text);
    } catch (err) {
      done(err instanceof Error ? err.message : String(err));
    }
  });
}

// src/config.ts
var DEFAULT_BASE_URL = "http://127.0.0.1:8080";
function serverBaseUrl(options, env = process.env) {
  const fromOptions = options?.baseUrl;
  if (typeof fromOptions === "string" && fromOptions.trim() !== "")
    return normalizeServer(fromOptions);
  const fromEnv = env.BETTER_SHARE_BASE_URL;
  if (fromEnv !== undefined && fromEnv.trim() !== "")
    return normalizeServer(fromEnv);
  return DEFAULT_BASE_URL;
}
function toolsEnabled(options, env = process.env) {
  if (options?.tools === false)
    return false;
  const fromEnv = env.BSHARE_PLUGIN_TOOLS;
  return !(fromEnv === "0" || fromEnv === "false" || fromEnv === "off");
}

// src/document.ts
var DOCUMENT_LIMIT = 50 * 1024 * 1024;
var encoder = new TextEncoder;
var byteSize = (value) => encoder.encode(JSON.stringify(value)).byteLength;
async function readSessionTree(source, sessionId, limit = DOCUMENT_LIMIT) {
  const [session, messages] = await Promise.all([source.session(sessionId), source.messages(sessionId)]);
  const order = [];
  const seen = new Set([sessionId]);
  const frontier = [sessionId];
  for (let next = 0;next < frontier.length; next++) {
    const listed = await source.children(frontier[next]).catch(() => []);
    const kids = [...Array.isArray(listed) ? listed : []].sort((a, b) => (a.time?.created ?? 0) - (b.time?.created ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const kid of kids) {
      if (typeof kid.id !== "string" || seen.has(kid.id))
        continue;
      seen.add(kid.id);
      order.push(kid);
      frontier.push(kid.id);
    }
  }
  const children = [];
  let childrenOmitted = 0;
  let used = byteSize(session) + byteSize(messages) + 1024;
  for (let i = 0;i < order.length; i++) {
    const kid = order[i];
    const messages = await source.messages(kid.id).catch(() => {
      return;
    });
    if (messages === undefined)
      continue;
    const child = { session: kid, messages };
    const size = byteSize(child) + 1;
    if (used + size > limit) {
      childrenOmitted = order.length - i;
      break;
    }
    used += size;
    children.push(child);
  }
  return { session, messages, children, childrenOmitted };
}
function treeFields(tree) {
  const fields = {
    session: tree.session,
    messages: tree.messages
  };
  if (tree.children.length > 0)
    fields.children = tree.children;
  if (tree.childrenOmitted > 0)
    fields.childrenOmitted = tree.childrenOmitted;
  return fields;
}
function refusedLimit(err, tried) {
  if (!(err instanceof Error) || err.status !== 413)
    return;
  const match = /limit of (\d+) bytes/.exec(err.message);
  const limit = match ? Number.parseInt(match[1], 10) : Number.NaN;
  return Number.isFinite(limit) && limit < tried ? limit : undefined;
}
function encodeDocument(doc) {
  const body = new TextEncoder().encode(JSON.stringify(doc));
  return { body, size: body.byteLength };
}
function v1Source(client) {
  return {
    async session(id) {
      return unwrap(await client.session.get({ path: { id } }), "the session", id);
    },
    async messages(id) {
      return unwrap(await client.session.messages({ path: { id } }), "the messages of session", id);
    },
    async children(id) {
      return unwrap(await client.session.children({ path: { id } }), "the subagent sessions of session", id);
    }
  };
}
function unwrap(result, what, id) {
  if (result.data !== undefined && result.error === undefined)
    return result.data;
  const status = result.response?.status;
  const detail = describeSdkError(result.error);
  throw new Error(`OpenCode could not give ${what} ${id}${status !== undefined ? ` (HTTP ${status})` : ""}${detail ? `: ${detail}` : "."}`);
}
function describeSdkError(error) {
  if (error === undefined || error === null)
    return "";
  if (typeof error === "string")
    return error;
  if (error instanceof Error)
    return error.message;
  const obj = error;
  if (typeof obj.data?.message === "string")
    return obj.data.message;
  if (typeof obj.message === "string")
    return obj.message;
  if (typeof obj.name === "string")
    return obj.name;
  return "";
}

// src/registry.ts
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
  writeSync
} from "node:fs";
import { homedir } from "node:os";
import { dirname, join as join2 } from "node:path";

class RegistryError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "RegistryError";
  }
}
var LOCK_TIMEOUT_MS = 1e4;
var LOCK_STALE_MS = 30000;
function defaultRegistryPath(env = process.env) {
  const xdg = env.XDG_DATA_HOME;
  const base = xdg !== undefined && xdg !== "" ? xdg : join2(env.HOME ?? homedir(), ".local", "share");
  return join2(base, "bshare", "shares.json");
}
function readRegistry(path) {
  let text;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (isCode(err, "ENOENT"))
      return { version: 1, shares: [] };
    throw new RegistryError(`Could not read the share registry ${path}: ${messageOf(err)}`, { cause: err });
  }
  return parseRegistry(text, path);
}
function parseRegistry(text, path) {
  let json;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new RegistryError(`The share registry ${path} is not valid JSON; fix or move it away (it is left as it is).`, { cause: err });
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new RegistryError(`The share registry ${path} is not a JSON object; it is left as it is.`);
  }
  const file = json;
  if (file.shares === undefined)
    file.shares = [];
  if (!Array.isArray(file.shares)) {
    throw new RegistryError(`The share registry ${path} has no "shares" list; it is left as it is.`);
  }
  if (file.version === undefined)
    file.version = 1;
  return file;
}
async function updateRegistry(path, change) {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 448 });
  } catch (err) {
    throw new RegistryError(`Could not create ${dir}: ${messageOf(err)}`, { cause: err });
  }
  const lockPath = `${path}.lock`;
  await acquireLock(lockPath);
  try {
    const file = readRegistry(path);
    const result = change(file);
    writeAtomically(path, `${JSON.stringify(file, null, 2)}
`);
    return result;
  } finally {
    try {
      unlinkSync(lockPath);
    } catch {}
  }
}
async function acquireLock(lockPath) {
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;; ) {
    try {
      const fd = openSync(lockPath, "wx", 384);
      try {
        writeSync(fd, `${process.pid}
`);
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
      } catch {}
      continue;
    }
    if (Date.now() >= deadline) {
      throw new RegistryError(`The share registry is locked by another program (${lockPath} exists for more than ${LOCK_TIMEOUT_MS / 1000} s).`);
    }
    await sleep(10 + Math.floor(Math.random() * 21));
  }
}
function lockIsStale(lockPath) {
  try {
    return Date.now() - statSync(lockPath).mtimeMs > LOCK_STALE_MS;
  } catch {
    return false;
  }
}
function writeAtomically(path, text) {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const fd = openSync(tmp, "wx", 384);
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
    } catch {}
    throw new RegistryError(`Could not write the share registry ${path}: ${messageOf(err)}`, { cause: err });
  }
  syncDir(dirname(path));
}
function syncDir(dir) {
  let fd;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {} finally {
    if (fd !== undefined)
      closeSync(fd);
  }
}
function upsertEntry(file, entry) {
  const i = file.shares.findIndex((e) => sameServer(e.server, entry.server) && e.shareId === entry.shareId);
  if (i === -1) {
    file.shares.push(entry);
  } else {
    file.shares[i] = { ...file.shares[i], ...entry };
  }
}
function removeEntry(file, server, shareId) {
  const before = file.shares.length;
  file.shares = file.shares.filter((e) => !(sameServer(e.server, server) && e.shareId === shareId));
  return file.shares.length !== before;
}
function findBySession(file, server, sessionId) {
  let found;
  for (const e of file.shares) {
    if (e.sessionId !== sessionId || !sameServer(e.server, server))
      continue;
    if (found === undefined || (e.createdAt ?? 0) > (found.createdAt ?? 0))
      found = e;
  }
  return found;
}
function sameServer(a, b) {
  return typeof a === "string" && a.replace(/\/+$/, "") === b.replace(/\/+$/, "");
}
function isCode(err, code) {
  return typeof err === "object" && err !== null && err.code === code;
}
function messageOf(err) {
  return err instanceof Error ? err.message : String(err);
}
function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// src/sharer.ts
import { randomInt } from "node:crypto";

// src/debounce.ts
class Debouncer {
  run;
  options;
  states = new Map;
  disposed = false;
  constructor(run, options) {
    this.run = run;
    this.options = options;
  }
  trigger(key) {
    if (this.disposed)
      return;
    let state = this.states.get(key);
    if (state === undefined) {
      state = { timer: undefined, firstTrigger: Date.now(), running: undefined, dirty: false };
      this.states.set(key, state);
    }
    if (state.running !== undefined) {
      state.dirty = true;
      return;
    }
    if (state.timer === undefined)
      state.firstTrigger = Date.now();
    else
      clearTimeout(state.timer);
    const due = Math.min(Date.now() + this.options.waitMs, state.firstTrigger + this.options.maxWaitMs);
    state.timer = setTimeout(() => this.fire(key), Math.max(0, due - Date.now()));
  }
  async flush(key) {
    const state = this.states.get(key);
    if (state === undefined)
      return;
    if (state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
      this.fire(key);
    }
    while (state.running !== undefined)
      await state.running;
  }
  pending(key) {
    const state = this.states.get(key);
    return state !== undefined && (state.timer !== undefined || state.running !== undefined);
  }
  async idle() {
    for (;; ) {
      const busy = [...this.states.keys()].filter((k) => this.pending(k));
      if (busy.length === 0)
        return;
      await Promise.all(busy.map((k) => this.flush(k)));
    }
  }
  dispose() {
    this.disposed = true;
    for (const state of this.states.values()) {
      if (state.timer !== undefined)
        clearTimeout(state.timer);
      state.timer = undefined;
    }
  }
  fire(key) {
    const state = this.states.get(key);
    if (state === undefined)
      return;
    state.timer = undefined;
    state.dirty = false;
    state.running = this.run(key).catch(() => {}).finally(() => {
      state.running = undefined;
      if (state.dirty && !this.disposed) {
        state.dirty = false;
        this.trigger(key);
      } else if (state.timer === undefined) {
        this.states.delete(key);
      }
    });
  }
}

// src/sharer.ts
var DEFAULT_DEBOUNCE = { waitMs: 2000, maxWaitMs: 1e4 };
var TITLE = "bshare";
var BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
function randomShareId() {
  let id = "";
  for (let i = 0;i < 12; i++)
    id += BASE62[randomInt(BASE62.length)];
  return id;
}
function originalShareId(sessionId) {
  return sessionId.slice(-8);
}

class Sharer {
  deps;
  debouncer;
  seenOpenCodeShare = new Map;
  creating = new Set;
  lastSyncFailure = new Map;
  unrecorded = new Map;
  parents = new Map;
  constructor(deps) {
    this.deps = deps;
    this.debouncer = new Debouncer((sessionId) => this.resyncQuietly(sessionId), deps.debounce ?? DEFAULT_DEBOUNCE);
  }
  get server() {
    return this.deps.api.server;
  }
  async share(sessionId) {
    try {
      const existing = this.lookup(sessionId);
      if (existing !== undefined) {
        try {
          await this.upload(existing);
          this.lastSyncFailure.delete(sessionId);
          await this.copyLink(existing.url, false);
          return { ok: true, url: existing.url, message: `Already shared; updated ${existing.url}` };
        } catch (err) {
          if (!(err instanceof ShareApiError && err.shareGone))
            throw err;
          await this.forget(existing);
        }
      }
      const entry = await this.create(sessionId, randomShareId());
      await this.copyLink(entry.url, false);
      return { ok: true, url: entry.url, message: `Shared: ${entry.url}` };
    } catch (err) {
      return { ok: false, message: `Could not share: ${describe(err)}` };
    }
  }
  async unshare(sessionId) {
    let entry;
    try {
      entry = this.lookup(sessionId);
    } catch (err) {
      return { ok: false, message: `Could not unshare: ${describe(err)}` };
    }
    if (entry === undefined) {
      return { ok: false, message: `This session is not shared on ${this.server}.` };
    }
    let alreadyGone = false;
    try {
      await this.deps.api.remove(entry.shareId, entry.secret);
    } catch (err) {
      if (err instanceof ShareApiError && err.shareGone) {
        alreadyGone = true;
      } else {
        return { ok: false, message: `Could not unshare: ${describe(err)}` };
      }
    }
    try {
      await this.forget(entry);
    } catch (err) {
      return { ok: false, message: `Unshared ${entry.url}, but ${describe(err)}` };
    }
    this.lastSyncFailure.delete(sessionId);
    return {
      ok: true,
      url: entry.url,
      message: alreadyGone ? `${entry.url} was already gone from the server; forgotten.` : `Unshared ${entry.url}`
    };
  }
  async resync(sessionId) {
    let entry;
    try {
      entry = this.lookup(sessionId) ?? await this.sharedAncestor(sessionId);
      if (entry === undefined)
        return;
      await this.upload(entry);
      return { ok: true, url: entry.url, message: `Updated ${entry.url}` };
    } catch (err) {
      if (entry !== undefined && err instanceof ShareApiError && err.shareGone) {
        const shared = entry;
        const current = (() => {
          try {
            return this.lookup(shared.sessionId);
          } catch {
            return shared;
          }
        })();
        if (current?.shareId !== entry.shareId)
          return;
        await this.forget(entry).catch(() => {
          return;
        });
        return { ok: false, message: `${entry.url} no longer exists on the server (${err.message}); stopped syncing it.` };
      }
      return { ok: false, message: `Could not update the shared session: ${describe(err)}` };
    }
  }
  handleEvent(event) {
    try {
      const props = event.properties ?? {};
      switch (event.type) {
        case "session.created":
        case "session.updated": {
          const info = props.info;
          if (typeof info?.id !== "string")
            return;
          this.rememberParent(info.id, info.parentID);
          const shareUrl = info.share?.url;
          if (typeof shareUrl === "string" && shareUrl !== "") {
            this.onOpenCodeShare(info.id, shareUrl);
          } else {
            this.debouncer.trigger(info.id);
          }
          return;
        }
        case "message.updated": {
          const id = props.info?.sessionID;
          if (typeof id === "string")
            this.debouncer.trigger(id);
          return;
        }
        case "message.part.updated": {
          const id = props.part?.sessionID;
          if (typeof id === "string")
            this.debouncer.trigger(id);
          return;
        }
        case "session.idle": {
          const id = props.sessionID;
          if (typeof id === "string")
            this.debouncer.trigger(id);
          return;
        }
        default:
          return;
      }
    } catch (err) {
      this.deps.log("error", `bshare: ignoring ${event.type}: ${describe(err)}`);
    }
  }
  async idle() {
    await this.debouncer.idle();
    while (this.creating.size > 0)
      await new Promise((r) => setTimeout(r, 10));
    await this.debouncer.idle();
  }
  dispose() {
    this.debouncer.dispose();
  }
  onOpenCodeShare(sessionId, shareUrl) {
    if (isOnServer(shareUrl, this.server))
      return;
    if (this.seenOpenCodeShare.get(sessionId) === shareUrl || this.creating.has(sessionId)) {
      this.debouncer.trigger(sessionId);
      return;
    }
    this.seenOpenCodeShare.set(sessionId, shareUrl);
    let existing;
    try {
      existing = this.lookup(sessionId);
    } catch (err) {
      this.tell({ variant: "error", title: TITLE, message: `Could not share: ${describe(err)}` });
      return;
    }
    if (existing !== undefined) {
      this.debouncer.trigger(sessionId);
      return;
    }
    this.creating.add(sessionId);
    (async () => {
      try {
        const entry = await this.create(sessionId, originalShareId(sessionId));
        await this.copyLink(entry.url, true);
        await this.tell({ variant: "success", title: TITLE, message: `Link copied: ${entry.url}` });
      } catch (err) {
        let message = `Could not share: ${describe(err)}`;
        if (err instanceof ShareApiError && err.code === "SHARE_EXISTS") {
          message += `. Use /bshare-share to share it under a new link.`;
        }
        await this.tell({ variant: "error", title: TITLE, message });
      } finally {
        this.creating.delete(sessionId);
      }
    })();
  }
  async create(sessionId, shareId) {
    const now = Date.now();
    let limit = DOCUMENT_LIMIT;
    let doc;
    let body;
    let created;
    for (;; ) {
      const tree = await readSessionTree(this.deps.source, sessionId, limit);
      doc = { shareId, sessionId, createdAt: now, updatedAt: now, ...treeFields(tree) };
      const encoded = encodeDocument(doc);
      body = encoded.body;
      try {
        created = await this.deps.api.create({ sessionId, shareId, size: encoded.size });
        break;
      } catch (err) {
        const lower = tree.children.length > 0 ? refusedLimit(err, limit) : undefined;
        if (lower === undefined)
          throw err;
        limit = lower;
      }
    }
    const session = doc.session;
    const entry = {
      shareId: created.shareId,
      sessionId,
      secret: created.secret,
      url: created.url,
      server: this.server,
      title: typeof session.title === "string" ? session.title : "",
      createdAt: now,
      updatedAt: now
    };
    try {
      await updateRegistry(this.deps.registryPath, (file) => upsertEntry(file, entry));
    } catch (err) {
      this.unrecorded.set(sessionId, entry);
      this.deps.log("error", `bshare: ${describe(err)}; ${entry.url} is known to this OpenCode process only`);
    }
    if (created.shareId !== shareId) {
      const again = encodeDocument({ ...doc, shareId: created.shareId });
      await this.deps.api.upload(created.presignedUrl, again.body);
    } else {
      await this.deps.api.upload(created.presignedUrl, body);
    }
    return entry;
  }
  async upload(entry) {
    const now = Date.now();
    let limit = DOCUMENT_LIMIT;
    for (;; ) {
      const tree = await readSessionTree(this.deps.source, entry.sessionId, limit);
      const doc = {
        shareId: entry.shareId,
        sessionId: entry.sessionId,
        createdAt: entry.createdAt,
        updatedAt: now,
        ...treeFields(tree)
      };
      const { body, size } = encodeDocument(doc);
      let fresh;
      try {
        fresh = await this.deps.api.presign(entry.shareId, entry.secret, size);
      } catch (err) {
        const lower = tree.children.length > 0 ? refusedLimit(err, limit) : undefined;
        if (lower === undefined)
          throw err;
        limit = lower;
        continue;
      }
      await this.deps.api.upload(fresh.presignedUrl, body);
      await this.recordUpload(entry, tree.session, now);
      return;
    }
  }
  async recordUpload(entry, session, now) {
    const title = typeof session.title === "string" ? session.title : entry.title;
    if (this.unrecorded.has(entry.sessionId)) {
      this.unrecorded.set(entry.sessionId, { ...entry, title, updatedAt: now });
      return;
    }
    await updateRegistry(this.deps.registryPath, (file) => {
      const current = file.shares.find((e) => e.shareId === entry.shareId && isOnServer(e.server, this.server));
      if (current !== undefined)
        upsertEntry(file, { ...current, title, updatedAt: now });
    });
  }
  async resyncQuietly(sessionId) {
    if (this.creating.has(sessionId))
      return;
    const outcome = await this.resync(sessionId);
    if (outcome === undefined)
      return;
    if (outcome.ok) {
      this.deps.log("info", `bshare: ${outcome.message}`);
      if (this.lastSyncFailure.delete(sessionId)) {
        await this.tell({ variant: "success", title: TITLE, message: outcome.message });
      }
      return;
    }
    this.deps.log("warn", `bshare: ${outcome.message}`);
    if (this.lastSyncFailure.get(sessionId) !== outcome.message) {
      this.lastSyncFailure.set(sessionId, outcome.message);
      await this.tell({ variant: "error", title: TITLE, message: outcome.message });
    }
  }
  rememberParent(sessionId, parentID) {
    if (this.parents.size >= 1e4)
      this.parents.clear();
    this.parents.set(sessionId, typeof parentID === "string" && parentID !== "" ? parentID : null);
  }
  async sharedAncestor(sessionId) {
    let id = sessionId;
    for (let depth = 0;depth < 8; depth++) {
      if (!this.parents.has(id)) {
        const session = await this.deps.source.session(id).catch(() => {
          return;
        });
        this.rememberParent(id, session?.parentID);
      }
      const parent = this.parents.get(id);
      if (parent === null || parent === undefined)
        return;
      const entry = this.lookup(parent);
      if (entry !== undefined)
        return entry;
      id = parent;
    }
    return;
  }
  lookup(sessionId) {
    const fromFile = findBySession(readRegistry(this.deps.registryPath), this.server, sessionId);
    return fromFile ?? this.unrecorded.get(sessionId);
  }
  async forget(entry) {
    this.unrecorded.delete(entry.sessionId);
    await updateRegistry(this.deps.registryPath, (file) => removeEntry(file, this.server, entry.shareId));
  }
  async copyLink(url, overrideOpenCode) {
    const copy = this.deps.copy;
    if (copy === undefined)
      return;
    const once = async () => {
      const result = await copy(url).catch((err) => ({ via: undefined, reason: describe(err) }));
      if (result.via === undefined)
        this.deps.log("warn", `bshare: could not copy ${url}: ${result.reason}`);
    };
    await once();
    const delay = this.deps.recopyDelayMs ?? 1500;
    if (overrideOpenCode && delay > 0)
      setTimeout(() => void once(), delay);
  }
  async tell(notice) {
    try {
      await this.deps.notify(notice);
    } catch (err) {
      this.deps.log("warn", `bshare: could not show "${notice.message}": ${describe(err)}`);
    }
  }
}
function isOnServer(url, server) {
  if (typeof url !== "string")
    return false;
  try {
    const a = new URL(url);
    const b = new URL(server);
    const prefix = b.pathname.replace(/\/+$/, "");
    return a.origin === b.origin && (prefix === "" || a.pathname === prefix || a.pathname.startsWith(`${prefix}/`));
  } catch {
    return false;
  }
}
function describe(err) {
  if (err instanceof Error)
    return err.message;
  return String(err);
}

// src/server.ts
var DISPOSE_WAIT_MS = 5000;
function createServerPlugin(overrides = {}) {
  return async (input, options) => {
    const client = input.client;
    const log = (level, message) => {
      Promise.resolve().then(() => client.app.log({ body: { service: "bshare", level, message } })).catch(() => {
        return;
      });
    };
    const sharer = new Sharer({
      api: new ShareApi(serverBaseUrl(options), overrides.fetch),
      source: v1Source(client),
      registryPath: overrides.registryPath ?? defaultRegistryPath(),
      notify: (notice) => showToast(client, notice),
      log,
      copy: overrides.copy ?? copyToClipboard,
      debounce: overrides.debounce,
      recopyDelayMs: overrides.recopyDelayMs
    });
    overrides.onSharer?.(sharer);
    const hooks = {
      event: async ({ event }) => {
        sharer.handleEvent(event);
      },
      dispose: async () => {
        await Promise.race([sharer.idle(), new Promise((resolve) => setTimeout(resolve, DISPOSE_WAIT_MS).unref?.())]);
        sharer.dispose();
      }
    };
    if (toolsEnabled(options))
      hooks.tool = tools(sharer, client);
    return hooks;
  };
}
function tools(sharer, client) {
  const run = async (what) => {
    const outcome = await what;
    await showToast(client, {
      variant: outcome.ok ? "success" : "error",
      title: "bshare",
      message: outcome.message
    });
    return outcome.message;
  };
  return {
    bshare_share: {
      description: "Publish the current session on the user's bshare server and return its link. Only call this when the user explicitly asks to share the session.",
      args: {},
      execute: (_args, context) => run(sharer.share(context.sessionID))
    },
    bshare_unshare: {
      description: "Take the current session's bshare link down (delete it from the bshare server). Only call this when the user asks to unshare.",
      args: {},
      execute: (_args, context) => run(sharer.unshare(context.sessionID))
    }
  };
}
async function showToast(client, notice) {
  try {
    await client.tui.showToast({
      body: { title: notice.title, message: notice.message, variant: notice.variant }
    });
  } catch {}
}
var BsharePlugin = createServerPlugin();
export {
  BsharePlugin
};
