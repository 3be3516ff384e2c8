// Putting a link on the clipboard: the first clipboard program this machine has, or an OSC 52
// escape (which most terminals, tmux and ssh sessions understand) when it has none.

import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

export interface ClipboardCommand {
  cmd: string;
  args: string[];
}

export interface ClipboardEnv {
  platform: NodeJS.Platform;
  env: Record<string, string | undefined>;
  /** Whether an executable of this name is on PATH. */
  has: (cmd: string) => boolean;
}

/** The program to copy with, or `undefined` when only OSC 52 is left. */
export function pickClipboard({ platform, env, has }: ClipboardEnv): ClipboardCommand | undefined {
  if (platform === "darwin" && has("pbcopy")) return { cmd: "pbcopy", args: [] };
  if (platform === "win32") return { cmd: "clip.exe", args: [] };
  const wayland = Boolean(env.WAYLAND_DISPLAY);
  const x11 = Boolean(env.DISPLAY);
  if (wayland && has("wl-copy")) return { cmd: "wl-copy", args: [] };
  if (x11 && has("xclip")) return { cmd: "xclip", args: ["-selection", "clipboard"] };
  if (x11 && has("xsel")) return { cmd: "xsel", args: ["--clipboard", "--input"] };
  // WSL: the Windows clipboard is reachable through clip.exe.
  if (has("clip.exe")) return { cmd: "clip.exe", args: [] };
  return undefined;
}

/** The OSC 52 sequence that asks the terminal to set its clipboard, wrapped for tmux/screen. */
export function osc52(text: string, env: Record<string, string | undefined>): string {
  const seq = `\x1b]52;c;${Buffer.from(text, "utf8").toString("base64")}\x07`;
  if (env.TMUX) return `\x1bPtmux;\x1b${seq}\x1b\\`;
  if (env.STY) return `\x1bP${seq}\x1b\\`;
  return seq;
}

export function onPath(cmd: string, env: Record<string, string | undefined> = process.env): boolean {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      // Not in this directory.
    }
  }
  return false;
}

/** How the text ended up on the clipboard, for the log line. */
export type CopyResult = { via: string } | { via: undefined; reason: string };

/** Copies `text`; never throws. */
export async function copyToClipboard(text: string): Promise<CopyResult> {
  const picked = pickClipboard({ platform: process.platform, env: process.env, has: (c) => onPath(c) });
  if (picked !== undefined) {
    const error = await runWithInput(picked, text);
    if (error === undefined) return { via: picked.cmd };
    if (!process.stdout.isTTY) return { via: undefined, reason: `${picked.cmd} failed: ${error}` };
  }
  if (process.stdout.isTTY) {
    process.stdout.write(osc52(text, process.env));
    return { via: "OSC 52" };
  }
  return { via: undefined, reason: "no clipboard program found and no terminal for OSC 52" };
}

function runWithInput(c: ClipboardCommand, text: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (error: string | undefined) => {
      if (settled) return;
      settled = true;
      resolve(error);
    };
    try {
      const child = spawn(c.cmd, c.args, { stdio: ["pipe", "ignore", "ignore"] });
      child.on("error", (err) => done(err.message));
      child.on("close", (code) => done(code === 0 ? undefined : `exit status ${code}`));
      // wl-copy and xclip stay alive to serve the selection; their exit is not waited for past this.
      setTimeout(() => done(undefined), 2_000).unref?.();
      child.stdin.on("error", (err) => done(err.message));
      child.stdin.end(text);
    } catch (err) {
      done(err instanceof Error ? err.message : String(err));
    }
  });
}
