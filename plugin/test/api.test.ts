import { describe, expect, test } from "bun:test";
import { ShareApi, ShareApiError } from "../src/api.ts";
import { deadServer } from "./support.ts";

type Handler = (url: string, init: RequestInit | undefined) => Response | Promise<Response>;

function api(handler: Handler, server = "http://bshare.test") {
  const calls: Array<{ url: string; init: RequestInit | undefined }> = [];
  const client = new ShareApi(server, async (url, init) => {
    calls.push({ url, init });
    return handler(url, init);
  });
  return { client, calls };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

async function failure(p: Promise<unknown>): Promise<ShareApiError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ShareApiError);
    return err as ShareApiError;
  }
  throw new Error("expected a failure");
}

describe("requests", () => {
  test("create sends sessionId, shareId and size as JSON", async () => {
    const { client, calls } = api(() =>
      json(201, { shareId: "abcdefgh", url: "u", presignedUrl: "p", secret: "s", expiresAt: 1 }),
    );
    const created = await client.create({ sessionId: "ses_1", shareId: "abcdefgh", size: 42 });
    expect(created.secret).toBe("s");
    expect(calls[0]?.url).toBe("http://bshare.test/api/share/presign");
    expect(calls[0]?.init?.method).toBe("POST");
    expect(JSON.parse(String(calls[0]?.init?.body))).toEqual({ sessionId: "ses_1", shareId: "abcdefgh", size: 42 });
  });

  test("re-presign and delete carry X-Share-Secret", async () => {
    const { client, calls } = api((url, init) =>
      init?.method === "DELETE" ? json(200, { ok: true }) : json(200, { presignedUrl: "p", expiresAt: 1 }),
    );
    await client.presign("abcdefgh", "sek", 7);
    await client.remove("abcdefgh", "sek");
    expect(calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual([
      "POST http://bshare.test/api/share/abcdefgh/presign",
      "DELETE http://bshare.test/api/share/abcdefgh",
    ]);
    for (const c of calls) expect((c.init?.headers as Record<string, string>)["X-Share-Secret"]).toBe("sek");
    expect(JSON.parse(String(calls[0]?.init?.body))).toEqual({ size: 7 });
  });

  test("a trailing slash on the server address is ignored", async () => {
    const { client, calls } = api(() => json(200, { ok: true }), "http://bshare.test/");
    await client.remove("abcdefgh", "s");
    expect(calls[0]?.url).toBe("http://bshare.test/api/share/abcdefgh");
  });
});

describe("errors become sentences", () => {
  test("the server's JSON error is the message, with its code", async () => {
    const { client } = api(() => json(409, { error: "A share with id abcdefgh already exists.", code: "SHARE_EXISTS" }));
    const err = await failure(client.create({ sessionId: "s", shareId: "abcdefgh", size: 1 }));
    expect(err.message).toBe("A share with id abcdefgh already exists.");
    expect(err.code).toBe("SHARE_EXISTS");
    expect(err.status).toBe(409);
  });

  test("429 says when to try again", async () => {
    const { client } = api(() => json(429, { error: "Too many shares created", code: "RATE_LIMITED" }, { "retry-after": "120" }));
    const err = await failure(client.create({ sessionId: "s", size: 1 }));
    expect(err.message).toBe("Too many shares created. Try again in 120 s.");
    expect(err.retryAfter).toBe(120);
  });

  test("an error without a body still says the status", async () => {
    const { client } = api(() => new Response("", { status: 502 }));
    const err = await failure(client.presign("abcdefgh", "s", 1));
    expect(err.message).toBe("The bshare server answered HTTP 502.");
  });

  test("410 and 404 mean the share is gone", async () => {
    const gone = await failure(api(() => json(410, { error: "deleted", code: "GONE" })).client.presign("abcdefgh", "s", 1));
    expect(gone.shareGone).toBe(true);
    const forbidden = await failure(api(() => json(403, { error: "wrong secret", code: "FORBIDDEN" })).client.presign("abcdefgh", "s", 1));
    expect(forbidden.shareGone).toBe(false);
    const notUploaded = await failure(api(() => json(404, { error: "not uploaded yet", code: "NOT_UPLOADED" })).client.presign("abcdefgh", "s", 1));
    expect(notUploaded.shareGone).toBe(false);
  });

  test("a server that is down is named, with the reason", async () => {
    const down = await deadServer();
    const client = new ShareApi(down);
    const err = await failure(client.create({ sessionId: "s", size: 1 }));
    expect(err.kind).toBe("unreachable");
    expect(err.message).toContain(`The bshare server at ${down} is not reachable (connection refused)`);
  });

  test("an upload refused by S3 quotes S3's message", async () => {
    const { client } = api(
      () =>
        new Response(
          "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>",
          { status: 403, headers: { "content-type": "application/xml" } },
        ),
    );
    const err = await failure(client.upload("https://bucket.example/sessions/x.json?sig=1", new Uint8Array([123, 125])));
    expect(err.kind).toBe("upload");
    expect(err.message).toBe(
      "The upload was rejected (HTTP 403): The request signature we calculated does not match the signature you provided.",
    );
    expect(err.code).toBe("SignatureDoesNotMatch");
  });

  test("the upload is a PUT of JSON bytes", async () => {
    const { client, calls } = api(() => new Response(null, { status: 200 }));
    const body = new TextEncoder().encode('{"a":1}');
    await client.upload("http://bshare.test/blob/x?sig=1", body);
    expect(calls[0]?.init?.method).toBe("PUT");
    expect((calls[0]?.init?.headers as Record<string, string>)["Content-Type"]).toBe("application/json");
    expect(calls[0]?.init?.body).toBe(body);
  });
});
