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

/**
 * Tools for the agent are off unless the plugin option `{"tools": true}` or `BSHARE_PLUGIN_TOOLS=1`
 * turns them on: with them, text the agent reads (a web page, a file, a tool's output) could talk
 * it into publishing the session, so publishing stays a thing only the user does by default.
 * The option wins over the variable either way.
 */
export function toolsEnabled(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env,
): boolean {
  if (typeof options?.tools === "boolean") return options.tools;
  const fromEnv = env.BSHARE_PLUGIN_TOOLS?.trim().toLowerCase();
  return fromEnv === "1" || fromEnv === "true" || fromEnv === "on";
}
