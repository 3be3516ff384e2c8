// The OpenCode TUI plugin: the `/bshare-share` and `/bshare-unshare` slash commands (also in the
// command palette), each answering with a toast that carries the link or the error.
//
// OpenCode loads TUI plugins from the `plugin` list of `tui.json`, never from the plugin
// directories, and a module may be a server plugin or a TUI plugin but not both; hence this
// second file. It imports nothing from OpenCode at run time, so it works without
// `@opencode-ai/plugin` installed next to it.

import type { TuiPlugin, TuiPluginApi, TuiPluginModule } from "@opencode-ai/plugin/tui";
import { ShareApi } from "./api.js";
import { copyToClipboard } from "./clipboard.js";
import { createOptions, serverBaseUrl } from "./config.js";
import { v2Source, type V2SessionClient } from "./document.js";
import { defaultRegistryPath } from "./registry.js";
import { type Outcome, Sharer, type SharerDeps } from "./sharer.js";

/** A command in the shape `api.keymap.registerLayer` takes (OpenCode 1.18). */
export interface KeymapCommand {
  namespace: "palette";
  name: string;
  title: string;
  desc: string;
  category: string;
  slashName: string;
  run: () => void | Promise<void>;
}

/** What this plugin uses of the TUI API; older versions lack `keymap`, newer ones `command`. */
export interface TuiApiSubset {
  client: unknown;
  route: { readonly current: { name: string; params?: Record<string, unknown> } };
  ui: { toast: (input: { variant?: "info" | "success" | "warning" | "error"; title?: string; message: string; duration?: number }) => void };
  keymap?: { registerLayer?: (layer: { commands: KeymapCommand[] }) => () => void };
  command?: {
    register: (
      cb: () => Array<{
        title: string;
        value: string;
        description?: string;
        category?: string;
        slash?: { name: string };
        onSelect?: () => void | Promise<void>;
      }>,
    ) => () => void;
  };
  lifecycle?: { onDispose: (fn: () => void | Promise<void>) => () => void };
}

export interface TuiPluginOverrides {
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  registryPath?: string;
  copy?: SharerDeps["copy"];
}

export const SHARE_SLASH = "bshare-share";
export const UNSHARE_SLASH = "bshare-unshare";

/** Registers the commands; returns how (for the tests) and an unregister function. */
export function registerCommands(
  api: TuiApiSubset,
  options: Record<string, unknown> | undefined,
  overrides: TuiPluginOverrides = {},
): { via: "keymap" | "command" | "none"; commands: KeymapCommand[]; dispose: () => void } {
  const sharer = new Sharer({
    api: new ShareApi(serverBaseUrl(options), overrides.fetch, createOptions(options)),
    source: v2Source(api.client as V2SessionClient),
    registryPath: overrides.registryPath ?? defaultRegistryPath(),
    notify: (notice) => api.ui.toast(notice),
    log: () => undefined,
    copy: overrides.copy ?? copyToClipboard,
  });

  const inSession = async (action: (sessionId: string) => Promise<Outcome>): Promise<void> => {
    const route = api.route.current;
    const sessionId = route.name === "session" ? route.params?.sessionID : undefined;
    if (typeof sessionId !== "string") {
      api.ui.toast({ variant: "warning", title: "bshare", message: "Open a session first." });
      return;
    }
    let outcome: Outcome;
    try {
      outcome = await action(sessionId);
    } catch (err) {
      outcome = { ok: false, message: err instanceof Error ? err.message : String(err) };
    }
    api.ui.toast({
      variant: outcome.ok ? "success" : "error",
      title: "bshare",
      message: outcome.message,
      duration: outcome.ok ? 8_000 : 10_000,
    });
  };

  const commands: KeymapCommand[] = [
    {
      namespace: "palette",
      name: "bshare.share",
      title: "Share session (bshare)",
      desc: "Publish this session on your bshare server and copy the link",
      category: "Session",
      slashName: SHARE_SLASH,
      run: () => inSession((id) => sharer.share(id)),
    },
    {
      namespace: "palette",
      name: "bshare.unshare",
      title: "Unshare session (bshare)",
      desc: "Take this session's bshare link down",
      category: "Session",
      slashName: UNSHARE_SLASH,
      run: () => inSession((id) => sharer.unshare(id)),
    },
  ];

  let unregister: () => void = () => undefined;
  let via: "keymap" | "command" | "none" = "none";
  if (typeof api.keymap?.registerLayer === "function") {
    unregister = api.keymap.registerLayer({ commands });
    via = "keymap";
  } else if (api.command !== undefined) {
    unregister = api.command.register(() =>
      commands.map((c) => ({
        title: c.title,
        value: c.name,
        description: c.desc,
        category: c.category,
        slash: { name: c.slashName },
        onSelect: c.run,
      })),
    );
    via = "command";
  }
  return {
    via,
    commands,
    dispose: () => {
      unregister();
      sharer.dispose();
    },
  };
}

const tui: TuiPlugin = async (api: TuiPluginApi, options) => {
  const registered = registerCommands(api as unknown as TuiApiSubset, options);
  if (registered.via === "none") {
    api.ui.toast({
      variant: "warning",
      title: "bshare",
      message: "This OpenCode offers plugins no slash commands; ask the agent to use the bshare_share and bshare_unshare tools.",
    });
  }
  api.lifecycle.onDispose(() => registered.dispose());
};

const plugin: TuiPluginModule = { id: "bshare", tui };
export default plugin;
