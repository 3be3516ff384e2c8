// A stand-in for `bshare serve` that follows DESIGN.md §2 closely enough for the plugin's
// flows: presign/create with id rules and tombstones, re-presign with the secret, signed
// uploads bound to Content-Length, delete, the page (200/410), limits that answer 413 and 429.

import { createHash, createHmac, randomBytes } from "node:crypto";

export interface FakeServerOptions {
  maxDocumentBytes?: number;
  createLimit?: number;
}

interface Share {
  secretHash: string;
  sessionId: string;
  deleted: boolean;
  document?: string;
}

const ID = /^[A-Za-z0-9_-]{8,64}$/;

export function startFakeServer(options: FakeServerOptions = {}) {
  const shares = new Map<string, Share>();
  const key = randomBytes(32);
  let creates = 0;
  const maxBytes = options.maxDocumentBytes ?? 50 * 1024 * 1024;
  const createLimit = options.createLimit ?? 10;
  const error = (status: number, message: string, code: string, headers: Record<string, string> = {}) =>
    Response.json({ error: message, code }, { status, headers });
  const sign = (id: string, exp: number, len: number) =>
    createHmac("sha256", key).update(`${id}\n${exp}\n${len}`).digest("hex");
  const hash = (s: string) => createHash("sha256").update(s).digest("hex");

  let port = 0;
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req: Request): Promise<Response> {
      const url = new URL(req.url);
      const base = `http://127.0.0.1:${port}`;
      const parts = url.pathname.split("/").filter(Boolean);
      const presignFor = (id: string, size: number) => {
        const exp = Date.now() + 3_600_000;
        return `${base}/blob/${id}?exp=${exp}&len=${size}&sig=${sign(id, exp, size)}`;
      };
      const authorize = (id: string): Share | Response => {
        const share = shares.get(id);
        if (share === undefined) return error(404, `No share ${id}.`, "NOT_FOUND");
        if (share.deleted) return error(410, `Share ${id} was deleted.`, "GONE");
        const secret = req.headers.get("x-share-secret");
        if (secret === null) return error(401, "This needs the share's secret.", "SECRET_REQUIRED");
        if (hash(secret) !== share.secretHash) return error(403, "Wrong secret for this share.", "FORBIDDEN");
        return share;
      };

      if (req.method === "POST" && url.pathname === "/api/share/presign") {
        const body = (await req.json()) as { sessionId?: string; shareId?: string; size?: number };
        if (typeof body.sessionId !== "string") return error(400, "sessionId is required.", "BAD_REQUEST");
        if (++creates > createLimit) {
          return error(429, "Too many shares created from this address; try again later.", "RATE_LIMITED", { "Retry-After": "3600" });
        }
        const id = body.shareId ?? randomBytes(9).toString("base64url").slice(0, 12);
        if (!ID.test(id)) return error(400, "shareId must be 8-64 letters, digits, _ or -.", "BAD_SHARE_ID");
        if (shares.has(id)) return error(409, `A share with id ${id} already exists.`, "SHARE_EXISTS");
        if ((body.size ?? 0) > maxBytes) {
          return error(413, `The session is ${body.size} bytes; this server takes at most ${maxBytes}.`, "TOO_LARGE");
        }
        const secret = randomBytes(24).toString("base64url");
        shares.set(id, { secretHash: hash(secret), sessionId: body.sessionId, deleted: false });
        return Response.json(
          { shareId: id, url: `${base}/share/${id}`, presignedUrl: presignFor(id, body.size ?? 0), secret, expiresAt: Date.now() + 3_600_000 },
          { status: 201 },
        );
      }
      if (req.method === "POST" && parts[0] === "api" && parts[1] === "share" && parts[3] === "presign" && parts[2]) {
        const share = authorize(parts[2]);
        if (share instanceof Response) return share;
        const body = (await req.json()) as { size?: number };
        if ((body.size ?? 0) > maxBytes) {
          return error(413, `The session is ${body.size} bytes; this server takes at most ${maxBytes}.`, "TOO_LARGE");
        }
        return Response.json({ presignedUrl: presignFor(parts[2], body.size ?? 0), expiresAt: Date.now() + 3_600_000 });
      }
      if (req.method === "DELETE" && parts[0] === "api" && parts[1] === "share" && parts[2] && parts.length === 3) {
        const share = authorize(parts[2]);
        if (share instanceof Response) return share;
        share.deleted = true;
        share.document = undefined;
        return Response.json({ ok: true });
      }
      if (req.method === "PUT" && parts[0] === "blob" && parts[1]) {
        const id = parts[1];
        const exp = Number(url.searchParams.get("exp"));
        const len = Number(url.searchParams.get("len"));
        if (url.searchParams.get("sig") !== sign(id, exp, len) || exp < Date.now()) {
          return error(403, "The upload URL is invalid or expired.", "BAD_SIGNATURE");
        }
        if (req.headers.get("content-type") !== "application/json") {
          return error(403, "The upload must be Content-Type: application/json.", "BAD_SIGNATURE");
        }
        const text = await req.text();
        if (Buffer.byteLength(text) !== len) return error(403, "Content-Length does not match the signed size.", "BAD_SIGNATURE");
        const share = shares.get(id);
        if (share === undefined || share.deleted) return error(410, "Gone.", "GONE");
        share.document = text;
        return new Response(null, { status: 200 });
      }
      if (req.method === "GET" && parts[0] === "share" && parts[1]) {
        const share = shares.get(parts[1]);
        if (share === undefined) return new Response("not found", { status: 404 });
        if (share.deleted) return new Response("This share was deleted.", { status: 410 });
        if (share.document === undefined) return new Response("not uploaded yet", { status: 404 });
        return new Response(`<html><body><pre>${share.document.replaceAll("<", "&lt;")}</pre></body></html>`, {
          headers: { "content-type": "text/html" },
        });
      }
      return error(404, "No such route.", "NOT_FOUND");
    },
  });
  port = server.port ?? 0;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    stop: () => server.stop(true),
  };
}
