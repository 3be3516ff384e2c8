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
  createOptions;
  constructor(server, fetchImpl = (input, init) => fetch(input, init), createOptions = {}) {
    this.server = normalizeServer(server);
    this.fetchImpl = fetchImpl;
    this.createOptions = createOptions;
  }
  async create(input) {
    const body = { sessionId: input.sessionId, size: input.size };
    if (input.shareId !== undefined)
      body.shareId = input.shareId;
    if (this.createOptions.expiresIn !== undefined)
      body.expiresIn = this.createOptions.expiresIn;
    const res = await this.call("POST", "/api/share/presign", { body, token: this.createOptions.token });
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
    if (opts.token !== undefined && opts.token !== "")
      headers.Authorization = `Bearer ${opts.token}`;
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
  if (typeof options?.tools === "boolean")
    return options.tools;
  const fromEnv = env.BSHARE_PLUGIN_TOOLS?.trim().toLowerCase();
  return fromEnv === "1" || fromEnv === "true" || fromEnv === "on";
}
function createOptions(options, env = process.env, warn = () => {}) {
  const out = {};
  const token = typeof options?.token === "string" ? options.token : env.BSHARE_TOKEN;
  if (token !== undefined && token.trim() !== "")
    out.token = token.trim();
  const expires = options?.expires ?? env.BSHARE_EXPIRES;
  if (expires !== undefined && expires !== "") {
    const seconds = parseDuration(expires);
    if (seconds === undefined) {
      warn(`bshare: the expiry ${JSON.stringify(expires)} is not a duration (like 7d, 12h or 3600); shares are made without one`);
    } else {
      out.expiresIn = seconds;
    }
  }
  return out;
}
var UNITS = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
function parseDuration(value) {
  if (typeof value === "number")
    return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== "string")
    return;
  const m = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(value);
  if (m === null)
    return;
  const seconds = Number(m[1]) * (UNITS[m[2] ?? ""] ?? 1);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}
var falsey = (v) => v === "0" || v === "false" || v === "off" || v === "no";
var truthy = (v) => v !== undefined && v !== "" && !falsey(v);
function privacy(options, env = process.env) {
  const redact = !(options?.redact === false || truthy(env.BSHARE_NO_REDACT));
  const wantHome = options?.redactHome === true || truthy(env.BSHARE_REDACT_HOME);
  const home = wantHome ? env.HOME : undefined;
  return home !== undefined && home !== "" ? { redact, home } : { redact };
}
var NO_REDACT_WARNING = "bshare: redaction is off (option redact: false or BSHARE_NO_REDACT): sessions are uploaded with any API keys, tokens and passwords they hold";

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
async function updateRegistry(path, change, options = {}) {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true, mode: 448 });
  } catch (err) {
    throw new RegistryError(`Could not create ${dir}: ${messageOf(err)}`, { cause: err });
  }
  const lockPath = `${path}.lock`;
  const token = randomBytes(16).toString("hex");
  const content = `${process.pid} ${token}
`;
  await acquireLock(lockPath, content, token, options.lockWaitMs ?? LOCK_TIMEOUT_MS);
  try {
    const file = readRegistry(path);
    const result = change(file);
    writeAtomically(path, `${JSON.stringify(file, null, 2)}
`, () => readLock(lockPath) === content);
    return result;
  } finally {
    claim(lockPath, content, token);
  }
}
async function acquireLock(lockPath, content, token, waitMs) {
  const deadline = Date.now() + waitMs;
  for (;; ) {
    let fd;
    try {
      fd = openSync(lockPath, "wx", 384);
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
      throw new RegistryError(`The share registry is locked by another program (${lockPath} exists for more than ${Math.round(waitMs / 1000)} s).`);
    }
    await sleep(10 + Math.floor(Math.random() * 21));
  }
}
function readLock(lockPath) {
  try {
    return readFileSync(lockPath, "utf8");
  } catch {
    return;
  }
}
function staleContent(lockPath) {
  try {
    if (Date.now() - statSync(lockPath).mtimeMs <= LOCK_STALE_MS)
      return;
  } catch {
    return;
  }
  return readLock(lockPath);
}
function claim(lockPath, expected, token) {
  const aside = `${lockPath}.claim-${token}`;
  try {
    renameSync(lockPath, aside);
  } catch {
    return false;
  }
  if (readLock(aside) === expected) {
    try {
      unlinkSync(aside);
    } catch {}
    return true;
  }
  try {
    renameSync(aside, lockPath);
  } catch {
    try {
      unlinkSync(aside);
    } catch {}
  }
  return false;
}
function writeAtomically(path, text, stillHeld) {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`;
  try {
    const fd = openSync(tmp, "wx", 384);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    if (!stillHeld()) {
      unlinkSync(tmp);
      throw new RegistryError(`This writer held the registry lock ${path}.lock for over ${LOCK_STALE_MS / 1000} s, so another one took it over; nothing was written, try again.`);
    }
    renameSync(tmp, path);
  } catch (err) {
    if (err instanceof RegistryError)
      throw err;
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
// ../src/lib/redact/rules.json
var rules_default = {
  about: "The secret patterns bshare removes before a session leaves the machine (DESIGN.md §3a). One file for both implementations: src/lib/redact/mod.rs (Rust `regex`) and plugin/src/redact.ts (JavaScript RegExp, flags `gdu`). Patterns use only what both engines read the same way: no lookaround, no backreferences, no inline flags, ASCII classes; `\\b` is an ASCII word boundary on both sides. Each pattern has exactly one named group `secret`, the part replaced by [REDACTED:<id>]. At one position the first rule in this list wins; a `context` rule's secret is searched again with the `token` rules, so the specific name is kept. `mustMatch` samples are a text (its secret is the whole text) or {text, redacted}; `mustNot` samples, and `globalMustNot`, must give no finding from any rule.",
  globalMustNot: [
    "3b16494331a59c4ad1ebd086c40f36094fcc9a5c",
    "commit 3b16494331a59c4ad1ebd086c40f36094fcc9a5c (HEAD -> main)",
    "2ff3c23c-9c2f-6723-7eea-6fe19fa40dd6",
    "ses_df514140fffe4u9ZGLczLpllLo",
    "msg_df5141a0b001NmTqgfQB2ZmcQn",
    "sha256:f3b17af01be7f3cf4b80b828e3ab6283c2ae35d243d87a9738b079e17711b757",
    "f3b17af01be7f3cf4b80b828e3ab6283c2ae35d243d87a9738b079e17711b757  bshare-linux-x86_64.tar.gz",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "C+1hsYgBds1ghxY5OokvQyx7eNWVQ4vnakJkS1pAWTN3lg8zV5yPU8d0FZfW",
    "The password is stored as a hash; the token expires after an hour and the secret is rotated.",
    "Set the secret, the token and the API key in the environment, never in the code.",
    "interface Login { password: string; token?: string; apiKey: string }",
    'const password = await prompt("Password: ");',
    "password=getpass.getpass()",
    "token=args.token,",
    'SECRET_KEY=os.environ["SECRET_KEY"]',
    "export GITHUB_TOKEN=$(gh auth token)",
    "max_tokens=4096 MAX_TOKENS=100000 tokens: 1234567",
    "http://localhost:8080/api/share/abcd1234",
    "ssh git@github.com:org/repo.git && mailto:someone@example.com",
    "scikit-learn sk-learn task-0123456789abcdef0123456789abcdef disk-cleanup-utility-for-servers",
    '[REDACTED:github-token] password: "[REDACTED:secret-assignment]"',
    `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
-----END PUBLIC KEY-----`,
    `-----BEGIN CERTIFICATE-----
MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa
-----END CERTIFICATE-----`
  ],
  rules: [
    {
      id: "anthropic-key",
      kind: "token",
      description: "Anthropic API key",
      pattern: "\\b(?<secret>sk-ant-[A-Za-z0-9_-]{32,})",
      mustMatch: [
        "sk-ant-api03-kwtDDb_xHKas1VOqg6YYZYn9ZhyiA4uoRgnatmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-TddJ8HyS5SUAA",
        { text: 'export ANTHROPIC_KEY="sk-ant-admin01-Xy7tQ2mZp4Lk9sR3vB8nW1cF6hJ0dG5a"', redacted: 'export ANTHROPIC_KEY="[REDACTED:anthropic-key]"' }
      ],
      mustNot: ["sk-ant-short", "desk-ant-api03-kwtDDb_xHKas1VOqg6YYZYn9ZhyiA4uoRgnatmU"]
    },
    {
      id: "openrouter-key",
      kind: "token",
      description: "OpenRouter API key",
      pattern: "\\b(?<secret>sk-or-v1-[0-9a-f]{64})",
      mustMatch: [
        "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"
      ],
      mustNot: ["sk-or-v1-2737f6a6f0fb23c6"]
    },
    {
      id: "openai-key",
      kind: "token",
      description: "OpenAI API key (legacy, project, service account, admin)",
      pattern: "\\b(?<secret>sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{20,})",
      mustMatch: [
        "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",
        "sk-proj-CfrL1spNxnyVmihA-2O76UMFxFkM-R5Kjp1vRt_1fjORS-6ilI8ihN5KXSc7Tvo-hBKqFYY-kvT3BlbkFJCzJr4i0B3JrTAwR4y9oj",
        { text: 'client = OpenAI(api_key="sk-svcacct-Qw3rTy7uIo9pAs2dFg4hJk6lZx")', redacted: 'client = OpenAI(api_key="[REDACTED:openai-key]")' }
      ],
      mustNot: ["sk-this-is-not-a-key-at-all", "sk-proj-short", "whisk-u8jzPde0IgxLd6GncfBAT3BlbkFJ"]
    },
    {
      id: "huggingface-token",
      kind: "token",
      description: "Hugging Face access token",
      pattern: "\\b(?<secret>hf_[A-Za-z]{34})\\b",
      mustMatch: ["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"],
      mustNot: ["hf_hub_download(repo_id)", "hf_jENUhJduRHHJEYXgJdpmrcXgGCJbWeCuNGextra"]
    },
    {
      id: "aws-access-key-id",
      kind: "token",
      description: "AWS access key id",
      pattern: "\\b(?<secret>(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\\b",
      mustMatch: ["AKIAMR46PQM4I2HZ4UEP", { text: "aws_access_key_id = ASIAMR46PQM4I2HZ4UEP", redacted: "aws_access_key_id = [REDACTED:aws-access-key-id]" }],
      mustNot: ["AKIAMR46PQM4I2HZ4UEPXYZ", "AKIA1234"]
    },
    {
      id: "github-token",
      kind: "token",
      description: "GitHub token (classic personal, OAuth, user-to-server, server-to-server, refresh)",
      pattern: "\\b(?<secret>gh[pousr]_[A-Za-z0-9]{36,})",
      mustMatch: [
        "ghp_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er",
        { text: "git clone https://x-access-token:ghs_8bOfZqfM2oeq3hDavJA76rNicHTp8hkqdlm7@github.com/o/r", redacted: "git clone https://x-access-token:[REDACTED:github-token]@github.com/o/r" }
      ],
      mustNot: ["ghp_short", "ghx_qrc5XlrWi0B26R08qzjI6GKFSufrdZSlB5er"]
    },
    {
      id: "github-fine-grained-pat",
      kind: "token",
      description: "GitHub fine-grained personal access token",
      pattern: "\\b(?<secret>github_pat_[A-Za-z0-9_]{82,})",
      mustMatch: ["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"],
      mustNot: ["github_pat_tOtHWnsCGRlrwZbqcabUGJ"]
    },
    {
      id: "gitlab-token",
      kind: "token",
      description: "GitLab token (personal, deploy, runner, pipeline trigger, feed, CI build)",
      pattern: "\\b(?<secret>(?:glpat|gldt|glrt|glptt|glft|glsoat|glcbt|glimt)-[A-Za-z0-9_-]{20,})",
      mustMatch: ["glpat-uI5aHUQPFeNBTxaQWk8J"],
      mustNot: ["glpat-short", "glpatx-uI5aHUQPFeNBTxaQWk8J"]
    },
    {
      id: "slack-token",
      kind: "token",
      description: "Slack bot, user, app or configuration token",
      pattern: "\\b(?<secret>xox[abeprs]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})",
      mustMatch: ["xoxb-833801412690-6044319829657-jsUNPjc01T5GOBUSZGi6HWGK", "xapp-1-A0123456789-1234567890123-abcdef0123456789"],
      mustNot: ["xoxb-", "xoxo-833801412690"]
    },
    {
      id: "slack-webhook",
      kind: "token",
      description: "Slack incoming webhook or workflow URL",
      pattern: "(?<secret>https://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,})",
      mustMatch: ["https://hooks.slack.com/services/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"],
      mustNot: ["https://hooks.slack.com/services/", "https://api.slack.com/messaging/webhooks"]
    },
    {
      id: "stripe-key",
      kind: "token",
      description: "Stripe secret or restricted key, webhook signing secret",
      pattern: "\\b(?<secret>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}|whsec_[A-Za-z0-9]{32,})",
      mustMatch: ["sk_live_WnoVPDF2yeE6RsXcNOPmeMjv", "rk_test_qPVStNKiaEdFrRgSnRFsTHsD", "whsec_qPVStNKiaEdFrRgSnRFsTHsDWnoVPDF2yeE6"],
      mustNot: ["sk_live_short", "pk_live_WnoVPDF2yeE6RsXcNOPmeMjv", "risk_live_WnoVPDF2yeE6RsXcNOPmeMjv"]
    },
    {
      id: "google-api-key",
      kind: "token",
      description: "Google API key",
      pattern: "\\b(?<secret>AIza[0-9A-Za-z_-]{35})",
      mustMatch: ["AIza77pzNk8cL6j5IXAAjlsHUqJoUD-_Ydua_5Z"],
      mustNot: ["AIzaShort", "AIza77pzNk8cL6j5IXAAjlsH"]
    },
    {
      id: "npm-token",
      kind: "token",
      description: "npm access token",
      pattern: "\\b(?<secret>npm_[A-Za-z0-9]{36})\\b",
      mustMatch: ["npm_tUjAwyuh1vauWv1zh87mTa5Vsqxezy3Lex7B", { text: "//registry.npmjs.org/:_authToken=npm_tUjAwyuh1vauWv1zh87mTa5Vsqxezy3Lex7B", redacted: "//registry.npmjs.org/:_authToken=[REDACTED:npm-token]" }],
      mustNot: ["npm_config_registry npm_package_version npm_lifecycle_event"]
    },
    {
      id: "pypi-token",
      kind: "token",
      description: "PyPI (or TestPyPI) API token",
      pattern: "\\b(?<secret>pypi-(?:AgEIcHlwaS5vcmc|AgENdGVzdC5weXBpLm9yZw)[A-Za-z0-9_-]{50,})",
      mustMatch: ["pypi-AgEIcHlwaS5vcmcJgJngKtFI3OyV2dZAkg05rK_gqv81RKMGHZEM9YpvujA-C5Q52ryFlwRlOEV"],
      mustNot: ["pypi-AgEIcHlwaS5vcmc", "pip install pypi-simple-client"]
    },
    {
      id: "sendgrid-key",
      kind: "token",
      description: "SendGrid API key",
      pattern: "\\b(?<secret>SG\\.[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{43})",
      mustMatch: ["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"],
      mustNot: ["SG.Hzc0X0AWIRh-JUqBlIFXZ5", "org.sg.Hzc0X0AWIRh"]
    },
    {
      id: "twilio-key",
      kind: "token",
      description: "Twilio API key SID",
      pattern: "\\b(?<secret>SK[0-9a-fA-F]{32})\\b",
      mustMatch: ["SKa7f770d9106fd287db7f1adbc60926f6"],
      mustNot: ["SKU-12345", "SKa7f770d9106fd287db7f1adbc60926f6ff"]
    },
    {
      id: "jwt",
      kind: "token",
      description: "JSON Web Token",
      pattern: "\\b(?<secret>eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]*)",
      mustMatch: [
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        { text: "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl", redacted: "Authorization: Bearer [REDACTED:jwt]" }
      ],
      mustNot: ["eyJhbGciOiJIUzI1NiJ9", "eyJ.eyJ.x"]
    },
    {
      id: "private-key",
      kind: "token",
      description: "Private key block (PEM: RSA, EC, DSA, PKCS#8, encrypted; OpenSSH; PGP), with or without its END line",
      pattern: "(?<secret>-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:(?:Proc-Type|DEK-Info|Comment|Version|Hash):[^\\n\\\\]*|[A-Za-z0-9+/=\\s]|\\\\[nrt])*(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)?)",
      mustMatch: [
        `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDdZ2u2m2l0k6fXc7VbW9h1yQe3pQ2s0a8nLxYbC4rF9wAAAJgAAAAAAAAA
-----END OPENSSH PRIVATE KEY-----`,
        { text: `key:
-----BEGIN RSA PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,5A1F0B0C9D8E7F6A

MIIEpAIBAAKCAQEA7b4xZ3q9Lk2mPw==
-----END RSA PRIVATE KEY-----
that was it.`, redacted: `key:
[REDACTED:private-key]
that was it.` },
        { text: '{"content":"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n"}', redacted: '{"content":"[REDACTED:private-key]\\n"}' },
        { text: `$ head -2 id_ed25519
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ
(output truncated)`, redacted: `$ head -2 id_ed25519
[REDACTED:private-key](output truncated)` }
      ],
      mustNot: ["-----BEGIN PRIVATE KEY", "ssh-keygen -t ed25519 -f ~/.ssh/id_ed25519"]
    },
    {
      id: "aws-secret-access-key",
      kind: "context",
      description: "AWS secret access key, after its name",
      pattern: `(?:AWS|aws|Aws)_?(?:SECRET|secret|Secret)_?(?:ACCESS|access|Access)?_?(?:KEY|key|Key)(?:\\\\?["'])?[ \\t]*[:=][ \\t]*(?:\\\\?["'])?(?<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)`,
      mustMatch: [
        { text: `aws_secret_access_key = 2jBMptUsGr7CmY/uCu3ZR1zTOlUcR64cXQLioDnk
`, redacted: `aws_secret_access_key = [REDACTED:aws-secret-access-key]
` },
        { text: '{"AwsSecretKey": "2jBMptUsGr7CmY/uCu3ZR1zTOlUcR64cXQLioDnk"}', redacted: '{"AwsSecretKey": "[REDACTED:aws-secret-access-key]"}' }
      ],
      mustNot: ["aws_secret_access_key = 2jBMptUsGr7CmY", "AWS_SECRET_ACCESS_KEY is read from the environment"]
    },
    {
      id: "url-credentials",
      kind: "context",
      description: "Password in a URL (scheme://user:password@host)",
      pattern: `\\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\\s:@/"'<>\\\\\\[\\]]+:(?<secret>[^\\s@/"'<>\\\\\\[\\]]+)@`,
      mustMatch: [
        { text: "DATABASE_URL=postgres://app:hunter2-prod@db.internal:5432/app", redacted: "DATABASE_URL=postgres://app:[REDACTED:url-credentials]@db.internal:5432/app" },
        { text: "redis://default:s3cr3tPa55@cache:6379/0", redacted: "redis://default:[REDACTED:url-credentials]@cache:6379/0" }
      ],
      mustNot: ["https://user@example.com/path", "https://example.com/a:b@c", "postgres://localhost:5432/app"]
    },
    {
      id: "bearer-token",
      kind: "context",
      description: "Bearer token in an Authorization header",
      pattern: "\\b(?:Bearer|bearer|BEARER)[ \\t]+(?<secret>[A-Za-z0-9._~+/-]{20,}=*)",
      mustMatch: [{ text: "curl -H 'Authorization: Bearer 8f2a1c0e9b7d4f3a6e5c2b1a0f9e8d7c' https://api", redacted: "curl -H 'Authorization: Bearer [REDACTED:bearer-token]' https://api" }],
      mustNot: ["the bearer of bad news", "Authorization: Bearer $TOKEN"]
    },
    {
      id: "env-secret",
      kind: "context",
      description: "Environment or .env assignment of a password, secret, token or key",
      pattern: `\\b[A-Z0-9_]{0,40}(?:PASSWORD|PASSWD|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY|AUTH_KEY|CREDENTIALS)(?:_[A-Z0-9]{1,20}){0,4}[ \\t]*=[ \\t]*["']?(?<secret>[^\\s"'\`$;&|<>(){}\\[\\]\\\\]{4,})(?:["'\\s;&|]|$)`,
      mustMatch: [
        { text: `DB_PASSWORD=correct-horse-battery
DB_HOST=localhost
`, redacted: `DB_PASSWORD=[REDACTED:env-secret]
DB_HOST=localhost
` },
        { text: "export STRIPE_WEBHOOK_SECRET='abc123def456'", redacted: "export STRIPE_WEBHOOK_SECRET='[REDACTED:env-secret]'" },
        { text: "OPENAI_API_KEY=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", redacted: "OPENAI_API_KEY=[REDACTED:openai-key]" }
      ],
      mustNot: ["PASSWORD_MIN_LENGTH=8", "SECRET_KEY=$SECRET_KEY", "TOKEN=${TOKEN}"]
    },
    {
      id: "secret-assignment",
      kind: "context",
      description: "Quoted value given to a password, secret, token or API key (code, JSON, YAML, TOML)",
      pattern: `\\b[A-Za-z0-9_-]{0,40}(?:[Pp]assword|PASSWORD|[Pp]asswd|[Pp]assphrase|[Ss]ecret|SECRET|[Tt]oken|TOKEN|[Aa]pi_?[Kk]ey|API_?KEY|[Aa]pi-[Kk]ey|[Aa]ccess_?[Kk]ey|[Pp]rivate_?[Kk]ey|[Cc]redentials?)(?:\\\\?["'])?[ \\t]*[:=][ \\t]*\\\\?["'](?<secret>[^\\s"'\`\\\\$<>{}\\[\\]]{6,})\\\\?["']`,
      mustMatch: [
        { text: '{"password": "hunter2hunter2"}', redacted: '{"password": "[REDACTED:secret-assignment]"}' },
        { text: "client_secret: 'Zm9vYmFyYmF6cXV4'", redacted: "client_secret: '[REDACTED:secret-assignment]'" },
        { text: 'const apiKey = "0123456789abcdef0123";', redacted: 'const apiKey = "[REDACTED:secret-assignment]";' },
        { text: "{\\\"token\\\": \\\"tok_4f9a8b7c6d5e\\\"}", redacted: "{\\\"token\\\": \\\"[REDACTED:secret-assignment]\\\"}" }
      ],
      mustNot: ['password: ""', 'tokenizer: "bert-base-uncased"', 'secretary = "Jane Doe"', 'password: "${DB_PASSWORD}"']
    },
    {
      id: "secret-param",
      kind: "context",
      description: "Unquoted password=, secret=, token=, api_key= (query strings, ini files, command lines) and --password/--token flags",
      pattern: `(?:\\b[A-Za-z0-9_-]{0,40}(?:password|passwd|passphrase|secret|token|api_key|apikey|api-key|access_key|private_key|sig|signature|X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token)=|--(?:password|passwd|token|api-key|api_key|secret|auth-token)[ =])(?<secret>[^\\s"'\`.,;&|<>(){}\\[\\]$\\\\#]{6,})(?:[\\s&;,"'#]|$)`,
      mustMatch: [
        { text: "mysql -h db password=hunter22 -e 'select 1'", redacted: "mysql -h db password=[REDACTED:secret-param] -e 'select 1'" },
        { text: "GET /v1/items?api_key=9f8e7d6c5b4a3f2e&page=2", redacted: "GET /v1/items?api_key=[REDACTED:secret-param]&page=2" },
        { text: "vault login --token s-8f7e6d5c4b3a", redacted: "vault login --token [REDACTED:secret-param]" },
        { text: "PUT /blob/sessions/abcd1234.json?exp=1900000000&len=512&sig=Qk3xY9LmP0aZ", redacted: "PUT /blob/sessions/abcd1234.json?exp=1900000000&len=512&sig=[REDACTED:secret-param]" }
      ],
      mustNot: ["design=minimal", "password=${PASSWORD}", "token=short"]
    }
  ]
};

// src/redact.ts
var RULES = rules_default;
function compile(rules, indices, prefix) {
  const groups = indices.map((rule, i) => ({ name: `${prefix}${i}`, rule }));
  const source = groups.map(({ name, rule }) => `(?:${rules[rule].pattern.replace("(?<secret>", `(?<${name}>`)})`).join("|");
  return { re: new RegExp(source, "gdu"), groups };
}

class Redactor {
  ids;
  kinds;
  all;
  tokens;
  constructor(file = RULES) {
    for (const r of file.rules) {
      if (r.pattern.split("(?<secret>").length !== 2)
        throw new Error(`rule ${r.id} must have one (?<secret>…) group`);
    }
    this.ids = file.rules.map((r) => r.id);
    this.kinds = file.rules.map((r) => r.kind);
    const everyRule = file.rules.map((_, i) => i);
    this.all = compile(file.rules, everyRule, "s");
    this.tokens = compile(file.rules, everyRule.filter((i) => file.rules[i].kind === "token"), "t");
  }
  redactString(s, found = () => {
    return;
  }) {
    let out = "";
    let last = 0;
    let any = false;
    for (const hit of this.matches(this.all, s)) {
      if (this.kinds[hit.rule] === "context") {
        const span = s.slice(hit.start, hit.end);
        let inner = false;
        for (const t of this.matches(this.tokens, span)) {
          out += s.slice(last, hit.start + t.start) + `[REDACTED:${this.ids[t.rule]}]`;
          found(this.ids[t.rule], span.slice(t.start, t.end));
          last = hit.start + t.end;
          inner = true;
        }
        if (inner) {
          any = true;
          continue;
        }
      }
      out += s.slice(last, hit.start) + `[REDACTED:${this.ids[hit.rule]}]`;
      found(this.ids[hit.rule], s.slice(hit.start, hit.end));
      last = hit.end;
      any = true;
    }
    return any ? out + s.slice(last) : undefined;
  }
  *matches(c, s) {
    const re = c.re;
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(s)) !== null) {
      if (m[0] === "")
        re.lastIndex++;
      const indices = m.indices?.groups;
      if (indices === undefined)
        continue;
      for (const { name, rule } of c.groups) {
        const span = indices[name];
        if (span !== undefined) {
          yield { rule, start: span[0], end: span[1] };
          break;
        }
      }
    }
  }
  redactValue(value, options = {}, found = () => {
    return;
  }) {
    if (typeof value === "string")
      return this.redactText(value, options, found) ?? value;
    if (Array.isArray(value))
      return value.map((v) => this.redactValue(v, options, found));
    if (value !== null && typeof value === "object") {
      const out = {};
      for (const [k, v] of Object.entries(value)) {
        const key = this.redactText(k, options, found) ?? k;
        out[key] = this.redactValue(v, options, found);
      }
      return out;
    }
    return value;
  }
  redactText(s, options, found) {
    const redacted = this.redactString(s, found);
    if (options.home === undefined)
      return redacted;
    return replaceHome(redacted ?? s, options.home) ?? redacted;
  }
  redactDocument(doc, options = {}) {
    const report = { counts: {}, findings: [] };
    const add = (message) => (rule, secret) => {
      report.counts[rule] = (report.counts[rule] ?? 0) + 1;
      report.findings.push({ rule, message, excerpt: mask(secret) });
    };
    const out = {};
    for (const [key, field] of Object.entries(doc)) {
      if (key === "redaction")
        continue;
      if (key === "messages" && Array.isArray(field)) {
        out[key] = field.map((m, i) => this.redactValue(m, options, add(i + 1)));
      } else {
        out[key] = this.redactValue(field, options, add(undefined));
      }
    }
    if (Object.keys(report.counts).length > 0)
      out.redaction = { counts: sortedCounts(report.counts) };
    return { doc: out, report };
  }
}
function sortedCounts(counts) {
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0));
}
function mask(secret) {
  const chars = Array.from(secret);
  const keep = chars.length >= 16 ? 4 : chars.length >= 8 ? 2 : 0;
  return `${chars.slice(0, keep).join("")}…[${chars.length} chars]`;
}
function replaceHome(s, home) {
  const h = home.replace(/\/+$/, "");
  if (h.length < 2 || !s.includes(h))
    return;
  let out = "";
  let rest = s;
  let any = false;
  for (let i = rest.indexOf(h);i !== -1; i = rest.indexOf(h)) {
    const after = rest.slice(i + h.length);
    const next = after[0];
    const ends = next === undefined || !/[\p{L}\p{N}_.-]/u.test(next);
    out += rest.slice(0, i) + (ends ? "~" : h);
    any ||= ends;
    rest = after;
  }
  return any ? out + rest : undefined;
}
var shared;
function redactor() {
  shared ??= new Redactor;
  return shared;
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
    if (deps.privacy?.redact === false)
      deps.log("warn", NO_REDACT_WARNING);
  }
  prepare(doc) {
    const privacy = this.deps.privacy ?? { redact: true };
    if (!privacy.redact)
      return doc;
    return redactor().redactDocument(doc, { home: privacy.home }).doc;
  }
  get warning() {
    return this.deps.privacy?.redact === false ? " Redaction is off: secrets were uploaded as they are." : "";
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
          return { ok: true, url: existing.url, message: `Already shared; updated ${existing.url}${this.warning}` };
        } catch (err) {
          if (!(err instanceof ShareApiError && err.shareGone))
            throw err;
          await this.forget(existing);
        }
      }
      const entry = await this.create(sessionId, randomShareId());
      await this.copyLink(entry.url, false);
      return { ok: true, url: entry.url, message: `Shared: ${entry.url}${this.warning}` };
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
      doc = this.prepare({ shareId, sessionId, createdAt: now, updatedAt: now, ...treeFields(tree) });
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
    if (typeof created.shareExpiresAt === "number")
      entry.expiresAt = created.shareExpiresAt;
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
      const doc = this.prepare({
        shareId: entry.shareId,
        sessionId: entry.sessionId,
        createdAt: entry.createdAt,
        updatedAt: now,
        ...treeFields(tree)
      });
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
      api: new ShareApi(serverBaseUrl(options), overrides.fetch, createOptions(options, process.env, (m) => log("warn", m))),
      source: v1Source(client),
      registryPath: overrides.registryPath ?? defaultRegistryPath(),
      notify: (notice) => showToast(client, notice),
      log,
      copy: overrides.copy ?? copyToClipboard,
      debounce: overrides.debounce,
      recopyDelayMs: overrides.recopyDelayMs,
      privacy: privacy(options)
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
