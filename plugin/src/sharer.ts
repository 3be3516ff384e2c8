// Sharing, re-syncing and unsharing one OpenCode session on a bshare server.
//
// The registry file is the one source of truth for "is this session shared, and with which
// secret": the TUI plugin (which runs the slash commands) and the server plugin (which sees the
// change events) are separate modules, sometimes separate threads, and the `bshare` CLI writes
// the same file. Nothing here throws into OpenCode: every public method turns failures into an
// `Outcome`, a toast or a log line.

import { randomInt } from "node:crypto";
import { ShareApi, ShareApiError } from "./api.js";
import type { CopyResult } from "./clipboard.js";
import { NO_REDACT_WARNING, type Privacy } from "./config.js";
import { Debouncer, type DebounceOptions } from "./debounce.js";
import {
  DOCUMENT_LIMIT,
  encodeDocument,
  readSessionTree,
  refusedLimit,
  type SessionSource,
  type ShareData,
  treeFields,
} from "./document.js";
import { redactor } from "./redact.js";
import {
  findBySession,
  readRegistry,
  type RegistryEntry,
  removeEntry,
  updateRegistry,
  upsertEntry,
} from "./registry.js";

export type Variant = "info" | "success" | "warning" | "error";

export interface Notice {
  variant: Variant;
  title?: string;
  message: string;
}

export type Outcome = { ok: true; url: string; message: string } | { ok: false; message: string };

export interface SharerDeps {
  api: ShareApi;
  source: SessionSource;
  registryPath: string;
  notify: (notice: Notice) => void | Promise<void>;
  log: (level: "info" | "warn" | "error", message: string) => void;
  copy?: (text: string) => Promise<CopyResult>;
  debounce?: DebounceOptions;
  /** Delay before copying the link a second time (the original `/share` flow); 0 disables. */
  recopyDelayMs?: number;
  /** Redaction before every upload; on unless the user turned it off. */
  privacy?: Privacy;
}

/** The minimal shape of the OpenCode events the plugin reacts to. */
export interface PluginEvent {
  type: string;
  properties?: unknown;
}

export const DEFAULT_DEBOUNCE: DebounceOptions = { waitMs: 2_000, maxWaitMs: 10_000 };
const TITLE = "bshare";
const BASE62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** 12 random base62 characters, the same shape the server picks. */
export function randomShareId(): string {
  let id = "";
  for (let i = 0; i < 12; i++) id += BASE62[randomInt(BASE62.length)];
  return id;
}

/** The share id the original plugin used: the last 8 characters of the session id. */
export function originalShareId(sessionId: string): string {
  return sessionId.slice(-8);
}

export class Sharer {
  private readonly debouncer: Debouncer;
  /** Share URLs of OpenCode's own `/share` already handled, per session. */
  private readonly seenOpenCodeShare = new Map<string, string>();
  /** Sessions whose original-flow share is being created right now. */
  private readonly creating = new Set<string>();
  /** The last re-sync failure told to the user, per session, so a dead server is one toast. */
  private readonly lastSyncFailure = new Map<string, string>();
  /** Shares created by this process whose registry write failed: still usable until exit. */
  private readonly unrecorded = new Map<string, RegistryEntry>();
  /**
   * The parent of each session seen (`null`: none), from OpenCode's events or asked once: a
   * subagent's changes re-sync the shared session whose `task` call runs it.
   */
  private readonly parents = new Map<string, string | null>();

  constructor(private readonly deps: SharerDeps) {
    this.debouncer = new Debouncer((sessionId) => this.resyncQuietly(sessionId), deps.debounce ?? DEFAULT_DEBOUNCE);
    if (deps.privacy?.redact === false) deps.log("warn", NO_REDACT_WARNING);
  }

  /** The document as it may leave: redacted unless the user opted out. */
  private prepare(doc: ShareData): ShareData {
    const privacy = this.deps.privacy ?? { redact: true };
    if (!privacy.redact) return doc;
    return redactor().redactDocument(doc, { home: privacy.home }).doc;
  }

  /** Said with each share: how the upload was treated when redaction is off. */
  private get warning(): string {
    return this.deps.privacy?.redact === false ? " Redaction is off: secrets were uploaded as they are." : "";
  }

  get server(): string {
    return this.deps.api.server;
  }

  /**
   * The share command: shares the session, or re-uploads it and answers with the existing link
   * when it is already shared.
   */
  async share(sessionId: string): Promise<Outcome> {
    try {
      const existing = this.lookup(sessionId);
      if (existing !== undefined) {
        try {
          await this.upload(existing);
          this.lastSyncFailure.delete(sessionId);
          await this.copyLink(existing.url, false);
          return { ok: true, url: existing.url, message: `Already shared; updated ${existing.url}${this.warning}` };
        } catch (err) {
          // Deleted on the server behind our back (another machine, an admin): share anew.
          if (!(err instanceof ShareApiError && err.shareGone)) throw err;
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

  /** The unshare command: deletes the share on the server and forgets it. */
  async unshare(sessionId: string): Promise<Outcome> {
    let entry: RegistryEntry | undefined;
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
      message: alreadyGone ? `${entry.url} was already gone from the server; forgotten.` : `Unshared ${entry.url}`,
    };
  }

  /**
   * Uploads the current session now if it is shared, or the shared session it is a subagent of;
   * `undefined` when neither is.
   */
  async resync(sessionId: string): Promise<Outcome | undefined> {
    let entry: RegistryEntry | undefined;
    try {
      entry = this.lookup(sessionId) ?? (await this.sharedAncestor(sessionId));
      if (entry === undefined) return undefined;
      await this.upload(entry);
      return { ok: true, url: entry.url, message: `Updated ${entry.url}` };
    } catch (err) {
      if (entry !== undefined && err instanceof ShareApiError && err.shareGone) {
        // Unshared meanwhile (a command, the CLI): nothing went wrong.
        const shared = entry;
        const current = (() => {
          try {
            return this.lookup(shared.sessionId);
          } catch {
            return shared;
          }
        })();
        if (current?.shareId !== entry.shareId) return undefined;
        await this.forget(entry).catch(() => undefined);
        return { ok: false, message: `${entry.url} no longer exists on the server (${err.message}); stopped syncing it.` };
      }
      return { ok: false, message: `Could not update the shared session: ${describe(err)}` };
    }
  }

  /** Reacts to an OpenCode event; never throws, never waits for network work. */
  handleEvent(event: PluginEvent): void {
    try {
      const props = (event.properties ?? {}) as Record<string, unknown>;
      switch (event.type) {
        case "session.created":
        case "session.updated": {
          const info = props.info as { id?: unknown; parentID?: unknown; share?: { url?: unknown } } | undefined;
          if (typeof info?.id !== "string") return;
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
          const id = (props.info as { sessionID?: unknown } | undefined)?.sessionID;
          if (typeof id === "string") this.debouncer.trigger(id);
          return;
        }
        case "message.part.updated": {
          const id = (props.part as { sessionID?: unknown } | undefined)?.sessionID;
          if (typeof id === "string") this.debouncer.trigger(id);
          return;
        }
        case "session.idle": {
          const id = props.sessionID;
          if (typeof id === "string") this.debouncer.trigger(id);
          return;
        }
        default:
          return;
      }
    } catch (err) {
      this.deps.log("error", `bshare: ignoring ${event.type}: ${describe(err)}`);
    }
  }

  /** Resolves when no upload is scheduled or running (tests, shutdown). */
  async idle(): Promise<void> {
    await this.debouncer.idle();
    while (this.creating.size > 0) await new Promise((r) => setTimeout(r, 10));
    await this.debouncer.idle();
  }

  dispose(): void {
    this.debouncer.dispose();
  }

  /**
   * OpenCode's own `/share` (versions that still have it) produced `shareUrl`. Shares on our
   * server are OpenCode's own enterprise shares: OpenCode keeps them in sync itself.
   */
  private onOpenCodeShare(sessionId: string, shareUrl: string): void {
    if (isOnServer(shareUrl, this.server)) return;
    if (this.seenOpenCodeShare.get(sessionId) === shareUrl || this.creating.has(sessionId)) {
      this.debouncer.trigger(sessionId);
      return;
    }
    this.seenOpenCodeShare.set(sessionId, shareUrl);
    let existing: RegistryEntry | undefined;
    try {
      existing = this.lookup(sessionId);
    } catch (err) {
      void this.tell({ variant: "error", title: TITLE, message: `Could not share: ${describe(err)}` });
      return;
    }
    if (existing !== undefined) {
      this.debouncer.trigger(sessionId);
      return;
    }
    this.creating.add(sessionId);
    void (async () => {
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

  /**
   * Creates the share, records it, uploads the document (with the session's subagents). Throws on
   * failure.
   */
  private async create(sessionId: string, shareId: string): Promise<RegistryEntry> {
    const now = Date.now();
    let limit = DOCUMENT_LIMIT;
    let doc: ShareData;
    let body: Uint8Array;
    let created: Awaited<ReturnType<ShareApi["create"]>>;
    for (;;) {
      const tree = await readSessionTree(this.deps.source, sessionId, limit);
      // Redacted whole, subagents included, each time: a retry uploads a smaller document.
      doc = this.prepare({ shareId, sessionId, createdAt: now, updatedAt: now, ...treeFields(tree) });
      const encoded = encodeDocument(doc);
      body = encoded.body;
      try {
        created = await this.deps.api.create({ sessionId, shareId, size: encoded.size });
        break;
      } catch (err) {
        // A server with a lower limit than the default names it: try once more within it.
        const lower = tree.children.length > 0 ? refusedLimit(err, limit) : undefined;
        if (lower === undefined) throw err;
        limit = lower;
      }
    }
    const session = doc.session;
    const entry: RegistryEntry = {
      shareId: created.shareId,
      sessionId,
      secret: created.secret,
      url: created.url,
      server: this.server,
      title: typeof session.title === "string" ? session.title : "",
      createdAt: now,
      updatedAt: now,
    };
    if (typeof created.shareExpiresAt === "number") entry.expiresAt = created.shareExpiresAt;
    // Recorded before the upload: if the upload fails, the next change re-syncs through the
    // registry entry instead of leaving an empty share nobody can delete.
    try {
      await updateRegistry(this.deps.registryPath, (file) => upsertEntry(file, entry));
    } catch (err) {
      this.unrecorded.set(sessionId, entry);
      this.deps.log("error", `bshare: ${describe(err)}; ${entry.url} is known to this OpenCode process only`);
    }
    if (created.shareId !== shareId) {
      // The server chose another id: the document must name the share it lives in.
      const again = encodeDocument({ ...doc, shareId: created.shareId });
      await this.deps.api.upload(created.presignedUrl, again.body);
    } else {
      await this.deps.api.upload(created.presignedUrl, body);
    }
    return entry;
  }

  /**
   * Uploads the current document of a shared session (with its subagents) through a fresh upload
   * URL.
   */
  private async upload(entry: RegistryEntry): Promise<void> {
    const now = Date.now();
    let limit = DOCUMENT_LIMIT;
    for (;;) {
      const tree = await readSessionTree(this.deps.source, entry.sessionId, limit);
      // Redacted whole, subagents included, each time: a retry uploads a smaller document.
      const doc = this.prepare({
        shareId: entry.shareId,
        sessionId: entry.sessionId,
        createdAt: entry.createdAt,
        updatedAt: now,
        ...treeFields(tree),
      });
      const { body, size } = encodeDocument(doc);
      let fresh: Awaited<ReturnType<ShareApi["presign"]>>;
      try {
        fresh = await this.deps.api.presign(entry.shareId, entry.secret, size);
      } catch (err) {
        const lower = tree.children.length > 0 ? refusedLimit(err, limit) : undefined;
        if (lower === undefined) throw err;
        limit = lower;
        continue;
      }
      await this.deps.api.upload(fresh.presignedUrl, body);
      await this.recordUpload(entry, tree.session, now);
      return;
    }
  }

  private async recordUpload(entry: RegistryEntry, session: ShareData["session"], now: number): Promise<void> {
    const title = typeof session.title === "string" ? session.title : entry.title;
    if (this.unrecorded.has(entry.sessionId)) {
      this.unrecorded.set(entry.sessionId, { ...entry, title, updatedAt: now });
      return;
    }
    await updateRegistry(this.deps.registryPath, (file) => {
      const current = file.shares.find((e) => e.shareId === entry.shareId && isOnServer(e.server, this.server));
      // Unshared meanwhile (the CLI or the other plugin half): do not bring it back.
      if (current !== undefined) upsertEntry(file, { ...current, title, updatedAt: now });
    });
  }

  /** The debounced re-sync: tells the user about a failure once, and each recovery. */
  private async resyncQuietly(sessionId: string): Promise<void> {
    if (this.creating.has(sessionId)) return;
    const outcome = await this.resync(sessionId);
    if (outcome === undefined) return;
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

  private rememberParent(sessionId: string, parentID: unknown): void {
    // Bounded: a long-running OpenCode sees many sessions; forgetting only costs a lookup.
    if (this.parents.size >= 10_000) this.parents.clear();
    this.parents.set(sessionId, typeof parentID === "string" && parentID !== "" ? parentID : null);
  }

  /** The registry entry of the nearest shared ancestor of a subagent session, if any. */
  private async sharedAncestor(sessionId: string): Promise<RegistryEntry | undefined> {
    let id = sessionId;
    for (let depth = 0; depth < 8; depth++) {
      if (!this.parents.has(id)) {
        const session = await this.deps.source.session(id).catch(() => undefined);
        this.rememberParent(id, session?.parentID);
      }
      const parent = this.parents.get(id);
      if (parent === null || parent === undefined) return undefined;
      const entry = this.lookup(parent);
      if (entry !== undefined) return entry;
      id = parent;
    }
    return undefined;
  }

  private lookup(sessionId: string): RegistryEntry | undefined {
    const fromFile = findBySession(readRegistry(this.deps.registryPath), this.server, sessionId);
    return fromFile ?? this.unrecorded.get(sessionId);
  }

  private async forget(entry: RegistryEntry): Promise<void> {
    this.unrecorded.delete(entry.sessionId);
    await updateRegistry(this.deps.registryPath, (file) => removeEntry(file, this.server, entry.shareId));
  }

  private async copyLink(url: string, overrideOpenCode: boolean): Promise<void> {
    const copy = this.deps.copy;
    if (copy === undefined) return;
    const once = async () => {
      const result = await copy(url).catch((err: unknown) => ({ via: undefined, reason: describe(err) }));
      if (result.via === undefined) this.deps.log("warn", `bshare: could not copy ${url}: ${result.reason}`);
    };
    await once();
    // OpenCode copies its own link when its `/share` call returns, which can land after the
    // session.updated event we react to; copying again a moment later leaves ours on top.
    const delay = this.deps.recopyDelayMs ?? 1_500;
    if (overrideOpenCode && delay > 0) setTimeout(() => void once(), delay);
  }

  private async tell(notice: Notice): Promise<void> {
    try {
      await this.deps.notify(notice);
    } catch (err) {
      this.deps.log("warn", `bshare: could not show "${notice.message}": ${describe(err)}`);
    }
  }
}

/** Whether `url` lives on the bshare server `server`. */
export function isOnServer(url: unknown, server: string): boolean {
  if (typeof url !== "string") return false;
  try {
    const a = new URL(url);
    const b = new URL(server);
    const prefix = b.pathname.replace(/\/+$/, "");
    return a.origin === b.origin && (prefix === "" || a.pathname === prefix || a.pathname.startsWith(`${prefix}/`));
  } catch {
    return false;
  }
}

/** One sentence for any failure. */
export function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
