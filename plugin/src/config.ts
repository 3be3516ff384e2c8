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

/** What redaction does before each upload (DESIGN.md §3a). */
export interface Privacy {
  /** False only when the user turned it off: option `{"redact": false}` or `BSHARE_NO_REDACT=1`. */
  redact: boolean;
  /** Paths under this directory become `~/…`: option `{"redactHome": true}` or `BSHARE_REDACT_HOME=1`. */
  home?: string;
}

const falsey = (v: string | undefined) => v === "0" || v === "false" || v === "off" || v === "no";
const truthy = (v: string | undefined) => v !== undefined && v !== "" && !falsey(v);

export function privacy(
  options: Record<string, unknown> | undefined,
  env: Record<string, string | undefined> = process.env,
): Privacy {
  const redact = !(options?.redact === false || truthy(env.BSHARE_NO_REDACT));
  const wantHome = options?.redactHome === true || truthy(env.BSHARE_REDACT_HOME);
  const home = wantHome ? env.HOME : undefined;
  return home !== undefined && home !== "" ? { redact, home } : { redact };
}

/** The warning shown when redaction is off. */
export const NO_REDACT_WARNING =
  "bshare: redaction is off (option redact: false or BSHARE_NO_REDACT): sessions are uploaded with any API keys, tokens and passwords they hold";
