import { describe, expect, test } from "bun:test";
import { createOptions, parseDuration, serverBaseUrl, toolsEnabled } from "../src/config.ts";
import { isOnServer, originalShareId, randomShareId } from "../src/sharer.ts";

test("the server comes from the plugin option, then BETTER_SHARE_BASE_URL, then localhost", () => {
  expect(serverBaseUrl({ baseUrl: "https://share.example.com/" }, { BETTER_SHARE_BASE_URL: "http://x" })).toBe(
    "https://share.example.com",
  );
  expect(serverBaseUrl(undefined, { BETTER_SHARE_BASE_URL: "http://10.0.0.5:8080//" })).toBe("http://10.0.0.5:8080");
  expect(serverBaseUrl({}, {})).toBe("http://127.0.0.1:8080");
  expect(serverBaseUrl({ baseUrl: " " }, { BETTER_SHARE_BASE_URL: "" })).toBe("http://127.0.0.1:8080");
});

test("agent tools are on unless turned off", () => {
  expect(toolsEnabled(undefined, {})).toBe(true);
  expect(toolsEnabled({ tools: false }, {})).toBe(false);
  expect(toolsEnabled(undefined, { BSHARE_PLUGIN_TOOLS: "0" })).toBe(false);
});

test("share URLs on the bshare server are recognized, others are not", () => {
  expect(isOnServer("https://share.example.com/share/abcdefgh", "https://share.example.com")).toBe(true);
  expect(isOnServer("https://opncd.ai/share/abcdefgh", "https://share.example.com")).toBe(false);
  expect(isOnServer("https://share.example.com:8443/share/x", "https://share.example.com")).toBe(false);
  expect(isOnServer("https://example.com/bshare/share/x", "https://example.com/bshare")).toBe(true);
  expect(isOnServer("https://example.com/other/share/x", "https://example.com/bshare")).toBe(false);
  expect(isOnServer("not a url", "https://example.com")).toBe(false);
});

test("share ids: the original plugin's last 8 characters, or 12 random base62 characters", () => {
  expect(originalShareId("ses_df514253affeB36ro8YNVEUXH4")).toBe("8YNVEUXH4".slice(-8));
  const ids = new Set(Array.from({ length: 50 }, randomShareId));
  expect(ids.size).toBe(50);
  for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9]{12}$/);
});

describe("createOptions", () => {
  test("the token comes from the option, else BSHARE_TOKEN", () => {
    expect(createOptions({ token: "opt" }, { BSHARE_TOKEN: "env" }).token).toBe("opt");
    expect(createOptions(undefined, { BSHARE_TOKEN: "env" }).token).toBe("env");
    expect(createOptions(undefined, {}).token).toBeUndefined();
  });

  test("the expiry is a duration or seconds; anything else is reported and ignored", () => {
    expect(createOptions({ expires: "7d" }, {}).expiresIn).toBe(7 * 86_400);
    expect(createOptions({ expires: 90 }, {}).expiresIn).toBe(90);
    expect(createOptions(undefined, { BSHARE_EXPIRES: "12h" }).expiresIn).toBe(43_200);
    const warned: string[] = [];
    expect(createOptions({ expires: "soon" }, {}, (m) => warned.push(m)).expiresIn).toBeUndefined();
    expect(warned.length).toBe(1);
    expect(parseDuration("0")).toBeUndefined();
    expect(parseDuration("30m")).toBe(1800);
  });
});
