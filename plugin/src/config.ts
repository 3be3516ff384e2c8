// Where the bshare server is: plugin option `baseUrl`, else `BETTER_SHARE_BASE_URL` (the original
// plugin's variable), else a server on this machine.

import { type CreateOptions, normalizeServer } from "./api.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8080";

export function serverBaseUrl(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env,
): string {
  const fromOptions = options?.baseUrl;
  if (typeof fromOptions === "string" && fromOptions.trim() !== "") return normalizeServer(fromOptions);
  const fromEnv = env.BETTER_SHARE_BASE_URL;
  if (fromEnv !== undefined && fromEnv.trim() !== "") return normalizeServer(fromEnv);
  return DEFAULT_BASE_URL;
}

/** Tools for the agent are on unless the options or `BSHARE_PLUGIN_TOOLS=0` turn them off. */
export function toolsEnabled(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env,
): boolean {
  if (options?.tools === false) return false;
  const fromEnv = env.BSHARE_PLUGIN_TOOLS;
  return !(fromEnv === "0" || fromEnv === "false" || fromEnv === "off");
}

/**
 * What new shares are created with: the create token (plugin option `token`, else `BSHARE_TOKEN`)
 * and the lifetime (plugin option `expires`, else `BSHARE_EXPIRES`: seconds, or a duration like
 * `7d`, `12h`, `30m`). An unreadable lifetime is reported through `warn` and ignored.
 */
export function createOptions(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env,
  warn: (message: string) => void = () => {},
): CreateOptions {
  const out: CreateOptions = {};
  const token = typeof options?.token === "string" ? options.token : env.BSHARE_TOKEN;
  if (token !== undefined && token.trim() !== "") out.token = token.trim();
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

const UNITS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in `7d`, `12h`, `30m`, `90s`, `90` or the number 90; `undefined` when unreadable. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+)\s*([smhdw]?)\s*$/.exec(value);
  if (m === null) return undefined;
  const seconds = Number(m[1]) * (UNITS[m[2] ?? ""] ?? 1);
  return Number.isSafeInteger(seconds) && seconds > 0 ? seconds : undefined;
}
