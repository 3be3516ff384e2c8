// Where the bshare server is: plugin option `baseUrl`, else `BETTER_SHARE_BASE_URL` (the original
// plugin's variable), else a server on this machine.

import { normalizeServer } from "./api.js";

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
