// The ShareData document (DESIGN.md §3) and where the plugin reads a session from.
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
}

export interface SessionSource {
  session(sessionId: string): Promise<Session>;
  messages(sessionId: string): Promise<SessionMessage[]>;
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
  };
}

/** What the v2 SDK client (`TuiPluginApi.client`) offers and the plugin uses. */
export interface V2SessionClient {
  session: {
    get(parameters: { sessionID: string }): Promise<SdkResult<unknown>>;
    messages(parameters: { sessionID: string }): Promise<SdkResult<unknown>>;
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
