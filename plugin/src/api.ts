// The bshare share API as the plugin uses it (DESIGN.md §2), plus the upload to a presigned URL.
//
// Every failure becomes a `ShareApiError` whose message is a sentence a user can act on: the
// server's own `{"error": "...", "code": "..."}` when it sent one, otherwise what went wrong on
// the way (server not reachable, upload refused by the object store).

/** `POST /api/share/presign` answer. */
export interface CreatedShare {
  shareId: string;
  url: string;
  presignedUrl: string;
  secret: string;
  /** When the upload URL expires. */
  expiresAt: number | string;
  /** When the share expires (epoch ms); null or absent: never. */
  shareExpiresAt?: number | null;
}

/** What the plugin asks of every share it creates. */
export interface CreateOptions {
  /** Sent as `Authorization: Bearer` (a server started with `--create-token` needs one). */
  token?: string;
  /** `expiresIn`: the share's lifetime in seconds. */
  expiresIn?: number;
}

/** `POST /api/share/:id/presign` answer. */
export interface FreshUpload {
  presignedUrl: string;
  expiresAt: number | string;
}

export type FailureKind =
  | "unreachable" // no HTTP answer at all
  | "http" // the share API answered with an error status
  | "upload" // the presigned PUT was refused
  | "protocol"; // the server answered 2xx with something we cannot read

export class ShareApiError extends Error {
  readonly kind: FailureKind;
  readonly status: number | undefined;
  readonly code: string | undefined;
  /** Seconds, from `Retry-After` on a 429. */
  readonly retryAfter: number | undefined;

  constructor(
    message: string,
    kind: FailureKind,
    opts: { status?: number; code?: string; retryAfter?: number; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "ShareApiError";
    this.kind = kind;
    this.status = opts.status;
    this.code = opts.code;
    this.retryAfter = opts.retryAfter;
  }

  /** The share is gone for good on the server (deleted or never existed there). */
  get shareGone(): boolean {
    if (this.kind !== "http") return false;
    // A 404 without the share code may be a proxy or a server that is not bshare: not proof.
    return this.status === 410 || (this.status === 404 && (this.code === undefined || this.code === "SHARE_NOT_FOUND"));
  }
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Strips trailing slashes so `http://h/` and `http://h` name the same server. */
export function normalizeServer(base: string): string {
  return base.trim().replace(/\/+$/, "");
}

export class ShareApi {
  readonly server: string;
  private readonly fetchImpl: FetchLike;
  private readonly createOptions: CreateOptions;

  constructor(
    server: string,
    fetchImpl: FetchLike = (input, init) => fetch(input, init),
    createOptions: CreateOptions = {},
  ) {
    this.server = normalizeServer(server);
    this.fetchImpl = fetchImpl;
    this.createOptions = createOptions;
  }

  /** Creates a share; `shareId` is optional (the server picks one when it is absent). */
  async create(input: { sessionId: string; shareId?: string; size: number }): Promise<CreatedShare> {
    const body: Record<string, unknown> = { sessionId: input.sessionId, size: input.size };
    if (input.shareId !== undefined) body.shareId = input.shareId;
    if (this.createOptions.expiresIn !== undefined) body.expiresIn = this.createOptions.expiresIn;
    const res = await this.call("POST", "/api/share/presign", { body, token: this.createOptions.token });
    const json = await readJson(res, "creating the share");
    for (const key of ["shareId", "url", "presignedUrl", "secret"] as const) {
      if (typeof json[key] !== "string") {
        throw new ShareApiError(`The bshare server's answer to a new share has no ${key}.`, "protocol");
      }
    }
    return json as unknown as CreatedShare;
  }

  /** A fresh upload URL for an existing share (re-sync). */
  async presign(shareId: string, secret: string, size: number): Promise<FreshUpload> {
    const res = await this.call("POST", `/api/share/${encodeURIComponent(shareId)}/presign`, {
      body: { size },
      secret,
    });
    const json = await readJson(res, "asking for an upload URL");
    if (typeof json.presignedUrl !== "string") {
      throw new ShareApiError("The bshare server's answer has no presignedUrl.", "protocol");
    }
    return json as unknown as FreshUpload;
  }

  /** Deletes the share on the server. */
  async remove(shareId: string, secret: string): Promise<void> {
    const res = await this.call("DELETE", `/api/share/${encodeURIComponent(shareId)}`, { secret });
    await res.body?.cancel();
  }

  /**
   * PUTs the document to a presigned URL. The body is bytes, so fetch sends a Content-Length
   * equal to the `size` the URL was signed for.
   */
  async upload(presignedUrl: string, body: Uint8Array): Promise<void> {
    let res: Response;
    try {
      res = await this.fetchImpl(presignedUrl, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body,
      });
    } catch (err) {
      throw new ShareApiError(
        `Could not upload the session: ${hostOf(presignedUrl)} is not reachable (${causeText(err)}).`,
        "unreachable",
        { cause: err },
      );
    }
    if (res.ok) {
      await res.body?.cancel();
      return;
    }
    const detail = await errorDetail(res);
    throw new ShareApiError(
      `The upload was rejected (HTTP ${res.status})${detail.sentence ? `: ${detail.sentence}` : "."}`,
      "upload",
      { status: res.status, code: detail.code },
    );
  }

  private async call(
    method: string,
    path: string,
    opts: { body?: unknown; secret?: string; token?: string },
  ): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.secret !== undefined) headers["X-Share-Secret"] = opts.secret;
    if (opts.token !== undefined && opts.token !== "") headers.Authorization = `Bearer ${opts.token}`;
    let res: Response;
    try {
      res = await this.fetchImpl(this.server + path, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (err) {
      throw new ShareApiError(
        `The bshare server at ${this.server} is not reachable (${causeText(err)}). Is \`bshare serve\` running, and is BETTER_SHARE_BASE_URL right?`,
        "unreachable",
        { cause: err },
      );
    }
    if (res.ok) return res;
    const detail = await errorDetail(res);
    const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
    let sentence = detail.sentence ?? `The bshare server answered HTTP ${res.status}.`;
    if (res.status === 429 && retryAfter !== undefined && !/retry|again/i.test(sentence)) {
      sentence = `${withStop(sentence)} Try again in ${retryAfter} s.`;
    }
    throw new ShareApiError(sentence, "http", { status: res.status, code: detail.code, retryAfter });
  }
}

async function readJson(res: Response, what: string): Promise<Record<string, unknown>> {
  try {
    const json: unknown = await res.json();
    if (json !== null && typeof json === "object") return json as Record<string, unknown>;
  } catch {
    // Falls through to the error below.
  }
  throw new ShareApiError(`The bshare server's answer to ${what} is not JSON.`, "protocol");
}

/** The server's `{"error", "code"}`, or S3's `<Message>`, or nothing. */
async function errorDetail(res: Response): Promise<{ sentence?: string; code?: string }> {
  let text = "";
  try {
    text = await res.text();
  } catch {
    return {};
  }
  try {
    const json: unknown = JSON.parse(text);
    if (json !== null && typeof json === "object") {
      const obj = json as Record<string, unknown>;
      const sentence = typeof obj.error === "string" ? obj.error : undefined;
      const code = typeof obj.code === "string" ? obj.code : undefined;
      return { sentence, code };
    }
  } catch {
    // Not JSON: S3-compatible stores answer XML.
  }
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  if (message !== undefined) return { sentence: message, code };
  const trimmed = text.trim();
  if (trimmed.length > 0 && trimmed.length <= 200 && !trimmed.startsWith("<")) return { sentence: trimmed };
  return {};
}

function parseRetryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number.parseInt(value, 10);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined;
}

function withStop(sentence: string): string {
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the upload server";
  }
}

/** The innermost useful reason of a fetch failure, e.g. "connection refused". */
export function causeText(err: unknown): string {
  const seen = new Set<unknown>();
  let cur: unknown = err;
  let best = "unknown error";
  while (cur !== null && cur !== undefined && !seen.has(cur)) {
    seen.add(cur);
    const obj = cur as { code?: unknown; message?: unknown; cause?: unknown };
    if (obj.code === "ECONNREFUSED" || obj.code === "ConnectionRefused") return "connection refused";
    if (obj.code === "ENOTFOUND") return "host not found";
    if (obj.code === "ETIMEDOUT") return "timed out";
    if (typeof obj.message === "string" && obj.message.length > 0) best = obj.message;
    cur = obj.cause;
  }
  if (/refused/i.test(best)) return "connection refused";
  return best;
}
