// The ShareData document (DESIGN.md §3) and where the plugin reads a session (with its
// subagents' sessions) from.
//
// The server plugin talks to OpenCode through the v1 SDK client (`client.session.get({ path })`),
// the TUI plugin through the v2 client (`client.session.get({ sessionID })`); both are reduced
// to `SessionSource` so the sharing code does not care which one it has.

import type { Message, Part, Session } from "@opencode-ai/sdk";

export interface SessionMessage {
  info: Message;
  parts: Part[];
}

export interface ShareData {
  shareId: string;
  sessionId: string;
  createdAt: number;
  updatedAt: number;
  session: Session;
  messages: SessionMessage[];
  /** Counts per redaction rule, never the values (DESIGN.md §3a); absent when nothing was found. */
  redaction?: { counts: Record<string, number> };
  /**
   * DESIGN.md §3's addition: the sessions the session's `task` calls created (OpenCode's sessions
   * with `parentID`), recursively, as one flat list. Left out when there are none, so documents
   * without subagents are what they always were.
   */
  children?: ChildSession[];
  /** Subagent sessions left out because the document would have passed the size limit. */
  childrenOmitted?: number;
}

export interface ChildSession {
  session: Session;
  messages: SessionMessage[];
}

export interface SessionSource {
  session(sessionId: string): Promise<Session>;
  messages(sessionId: string): Promise<SessionMessage[]>;
  /** The sessions whose `parentID` is `sessionId`: the subagents its `task` calls ran. */
  children(sessionId: string): Promise<Session[]>;
}

/** The size up to which subagent sessions are added: the server's default document limit. */
export const DOCUMENT_LIMIT = 50 * 1024 * 1024;

/** A session with its subagents, as a document's `session`, `messages`, `children`, `childrenOmitted`. */
export interface SessionTree {
  session: Session;
  messages: SessionMessage[];
  children: ChildSession[];
  childrenOmitted: number;
}

const encoder = new TextEncoder();
const byteSize = (value: unknown) => encoder.encode(JSON.stringify(value)).byteLength;

/**
 * Reads a session and its subagents, recursively: children breadth first, each session's oldest
 * first, while the document stays within `limit` bytes. Once one does not fit, it and every
 * session not yet added are counted in `childrenOmitted` (the page says so), as the CLI does.
 */
export async function readSessionTree(source: SessionSource, sessionId: string, limit = DOCUMENT_LIMIT): Promise<SessionTree> {
  const [session, messages] = await Promise.all([source.session(sessionId), source.messages(sessionId)]);
  // Every descendant first (a cheap listing), so that what is left out can be counted.
  const order: Session[] = [];
  const seen = new Set<string>([sessionId]);
  const frontier = [sessionId];
  for (let next = 0; next < frontier.length; next++) {
    // An OpenCode that cannot list children (an older API, a session deleted meanwhile) still
    // gets the session shared, without them.
    const listed = await source.children(frontier[next]!).catch(() => [] as Session[]);
    const kids = [...(Array.isArray(listed) ? listed : [])].sort(
      (a, b) => (a.time?.created ?? 0) - (b.time?.created ?? 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    for (const kid of kids) {
      if (typeof kid.id !== "string" || seen.has(kid.id)) continue;
      seen.add(kid.id);
      order.push(kid);
      frontier.push(kid.id);
    }
  }
  const children: ChildSession[] = [];
  let childrenOmitted = 0;
  let used = byteSize(session) + byteSize(messages) + 1024;
  for (let i = 0; i < order.length; i++) {
    const kid = order[i]!;
    const messages = await source.messages(kid.id).catch(() => undefined);
    if (messages === undefined) continue; // deleted while we read
    const child: ChildSession = { session: kid, messages };
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

/** The document fields of a session tree: `children` and `childrenOmitted` only when they say something. */
export function treeFields(tree: SessionTree): Pick<ShareData, "session" | "messages" | "children" | "childrenOmitted"> {
  const fields: Pick<ShareData, "session" | "messages" | "children" | "childrenOmitted"> = {
    session: tree.session,
    messages: tree.messages,
  };
  if (tree.children.length > 0) fields.children = tree.children;
  if (tree.childrenOmitted > 0) fields.childrenOmitted = tree.childrenOmitted;
  return fields;
}

/** The limit a bshare server named when it refused a document ("... limit of N bytes"), when below `tried`. */
export function refusedLimit(err: unknown, tried: number): number | undefined {
  if (!(err instanceof Error) || (err as { status?: unknown }).status !== 413) return undefined;
  const match = /limit of (\d+) bytes/.exec(err.message);
  const limit = match ? Number.parseInt(match[1]!, 10) : Number.NaN;
  return Number.isFinite(limit) && limit < tried ? limit : undefined;
}

/** Serializes a document; `size` is what the upload URL is signed for. */
export function encodeDocument(doc: ShareData): { body: Uint8Array; size: number } {
  const body = new TextEncoder().encode(JSON.stringify(doc));
  return { body, size: body.byteLength };
}

/** The result shape of both SDK generations: `{ data }` on success, `{ error }` otherwise. */
interface SdkResult<T> {
  data?: T;
  error?: unknown;
  response?: { status?: number };
}

/** What the v1 SDK client (`PluginInput.client`) offers and the plugin uses. */
export interface V1SessionClient {
  session: {
    get(options: { path: { id: string } }): Promise<SdkResult<Session>>;
    messages(options: { path: { id: string } }): Promise<SdkResult<SessionMessage[]>>;
    children(options: { path: { id: string } }): Promise<SdkResult<Session[]>>;
  };
}

/** What the v2 SDK client (`TuiPluginApi.client`) offers and the plugin uses. */
export interface V2SessionClient {
  session: {
    get(parameters: { sessionID: string }): Promise<SdkResult<unknown>>;
    messages(parameters: { sessionID: string }): Promise<SdkResult<unknown>>;
    children(parameters: { sessionID: string }): Promise<SdkResult<unknown>>;
  };
}

export function v1Source(client: V1SessionClient): SessionSource {
  return {
    async session(id) {
      return unwrap(await client.session.get({ path: { id } }), "the session", id);
    },
    async messages(id) {
      return unwrap(await client.session.messages({ path: { id } }), "the messages of session", id);
    },
    async children(id) {
      return unwrap(await client.session.children({ path: { id } }), "the subagent sessions of session", id);
    },
  };
}

export function v2Source(client: V2SessionClient): SessionSource {
  return {
    async session(id) {
      return unwrap(await client.session.get({ sessionID: id }), "the session", id) as Session;
    },
    async messages(id) {
      return unwrap(await client.session.messages({ sessionID: id }), "the messages of session", id) as SessionMessage[];
    },
    async children(id) {
      return unwrap(await client.session.children({ sessionID: id }), "the subagent sessions of session", id) as Session[];
    },
  };
}

function unwrap<T>(result: SdkResult<T>, what: string, id: string): T {
  if (result.data !== undefined && result.error === undefined) return result.data;
  const status = result.response?.status;
  const detail = describeSdkError(result.error);
  throw new Error(
    `OpenCode could not give ${what} ${id}${status !== undefined ? ` (HTTP ${status})` : ""}${detail ? `: ${detail}` : "."}`,
  );
}

function describeSdkError(error: unknown): string {
  if (error === undefined || error === null) return "";
  if (typeof error === "string") return error;
  if (error instanceof Error) return error.message;
  const obj = error as { data?: { message?: unknown }; message?: unknown; name?: unknown };
  if (typeof obj.data?.message === "string") return obj.data.message;
  if (typeof obj.message === "string") return obj.message;
  if (typeof obj.name === "string") return obj.name;
  return "";
}
