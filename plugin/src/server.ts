// The OpenCode server plugin: reacts to OpenCode's own `/share` (versions that still have it),
// re-syncs shared sessions as they change, and offers `bshare_share` / `bshare_unshare` tools.
//
// The module's only export is the plugin function: OpenCode's loader calls every export of a
// file plugin that has no `{ id, server }` default export, on old and new versions alike.

import type { Hooks, Plugin, PluginInput, PluginOptions, ToolDefinition } from "@opencode-ai/plugin";
import { ShareApi } from "./api.js";
import { copyToClipboard } from "./clipboard.js";
import { createOptions, serverBaseUrl, toolsEnabled } from "./config.js";
import { v1Source, type V1SessionClient } from "./document.js";
import { defaultRegistryPath } from "./registry.js";
import { type Notice, type Outcome, Sharer, type SharerDeps } from "./sharer.js";

type Client = PluginInput["client"];

/** How long closing OpenCode waits for pending uploads. */
const DISPOSE_WAIT_MS = 5_000;

/** Test seam: everything the plugin would otherwise take from the process. */
export interface ServerPluginOverrides {
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  registryPath?: string;
  copy?: SharerDeps["copy"];
  debounce?: SharerDeps["debounce"];
  recopyDelayMs?: number;
  /** Receives the Sharer, so a test can wait until uploads settle. */
  onSharer?: (sharer: Sharer) => void;
}

export function createServerPlugin(overrides: ServerPluginOverrides = {}): Plugin {
  return async (input: PluginInput, options?: PluginOptions): Promise<Hooks> => {
    const client = input.client;
    const log = (level: "info" | "warn" | "error", message: string) => {
      void Promise.resolve()
        .then(() => client.app.log({ body: { service: "bshare", level, message } }))
        .catch(() => undefined);
    };
    const sharer = new Sharer({
      api: new ShareApi(serverBaseUrl(options), overrides.fetch, createOptions(options, process.env, (m) => log("warn", m))),
      source: v1Source(client as unknown as V1SessionClient),
      registryPath: overrides.registryPath ?? defaultRegistryPath(),
      notify: (notice) => showToast(client, notice),
      log,
      copy: overrides.copy ?? copyToClipboard,
      debounce: overrides.debounce,
      recopyDelayMs: overrides.recopyDelayMs,
    });
    overrides.onSharer?.(sharer);

    const hooks: Hooks = {
      event: async ({ event }) => {
        sharer.handleEvent(event);
      },
      dispose: async () => {
        // `opencode run` ends right after the last answer: upload what is pending first, but do
        // not hold OpenCode's exit hostage to a slow server.
        await Promise.race([sharer.idle(), new Promise((resolve) => setTimeout(resolve, DISPOSE_WAIT_MS).unref?.())]);
        sharer.dispose();
      },
    };
    if (toolsEnabled(options)) hooks.tool = tools(sharer, client);
    return hooks;
  };
}

function tools(sharer: Sharer, client: Client): Record<string, ToolDefinition> {
  const run = async (what: Promise<Outcome>): Promise<string> => {
    const outcome = await what;
    await showToast(client, {
      variant: outcome.ok ? "success" : "error",
      title: "bshare",
      message: outcome.message,
    });
    return outcome.message;
  };
  return {
    bshare_share: {
      description:
        "Publish the current session on the user's bshare server and return its link. Only call this when the user explicitly asks to share the session.",
      args: {},
      execute: (_args, context) => run(sharer.share(context.sessionID)),
    },
    bshare_unshare: {
      description:
        "Take the current session's bshare link down (delete it from the bshare server). Only call this when the user asks to unshare.",
      args: {},
      execute: (_args, context) => run(sharer.unshare(context.sessionID)),
    },
  };
}

async function showToast(client: Client, notice: Notice): Promise<void> {
  try {
    await client.tui.showToast({
      body: { title: notice.title, message: notice.message, variant: notice.variant },
    });
  } catch {
    // No TUI attached (opencode run, opencode serve): the log line is all there is.
  }
}

export const BsharePlugin: Plugin = createServerPlugin();
