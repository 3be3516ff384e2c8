// Starts a share server for the flow tests: the real `bshare serve` (path from BSHARE_BIN,
// else the cargo build next to this repository) on the embedded default, a fresh data
// directory, an ephemeral port.

import { existsSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./support.ts";

export interface ServerLimits {
  maxDocumentBytes?: number;
  /** Share creations per client address per hour. */
  createLimit?: number;
  /** Other API requests per client address per minute. */
  requestLimit?: number;
}

export interface RunningServer {
  baseUrl: string;
  stop: () => Promise<void>;
}

export function bshareBinary(): string | undefined {
  const fromEnv = process.env.BSHARE_BIN;
  if (fromEnv) return fromEnv;
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(import.meta.dir, "..", "..", "target");
  const built = join(targetDir, "debug", "bshare");
  return existsSync(built) ? built : undefined;
}

export async function startServer(limits: ServerLimits = {}): Promise<RunningServer> {
  const bin = bshareBinary();
  if (bin === undefined) {
    throw new Error("no bshare binary: run `cargo build` in the repository root or set BSHARE_BIN");
  }
  const data = tempDir("bshare-plugin-server-");
  const args = [bin, "serve", "--bind", "127.0.0.1:0", "--data-dir", data.path];
  if (limits.maxDocumentBytes !== undefined) args.push("--max-document-bytes", String(limits.maxDocumentBytes));
  if (limits.createLimit !== undefined) args.push("--create-limit", String(limits.createLimit));
  if (limits.requestLimit !== undefined) args.push("--request-limit", String(limits.requestLimit));
  // The embedded default (SQLite and local disk), whatever the calling shell has configured.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "DATABASE_URL" || k === "BASE_URL" || k.startsWith("S3_") || k.startsWith("BSHARE_")) continue;
    env[k] = v;
  }
  const child = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", env });
  const baseUrl = await readAddress(child.stdout, child.stderr);
  return {
    baseUrl,
    stop: async () => {
      child.kill();
      await child.exited;
      data.cleanup();
    },
  };
}

/** Reads a server's output until it names the address it listens on (bshare's or OpenCode's). */
export async function readAddress(
  stdout: ReadableStream<Uint8Array>,
  stderr: ReadableStream<Uint8Array>,
  timeoutMs = 10_000,
): Promise<string> {
  let seen = "";
  const decoder = new TextDecoder();
  const find = () => /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(seen);
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const reader = stream.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      seen += decoder.decode(value, { stream: true });
      if (find()) {
        // Keep draining in the background so the server never blocks on a full pipe.
        void (async () => {
          for (;;) if ((await reader.read()).done) return;
        })();
        return;
      }
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not report its address; output so far:\n${seen}`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.any([pump(stdout), pump(stderr)]), timeout]);
  } finally {
    clearTimeout(timer);
  }
  const match = find();
  if (!match) throw new Error(`the server exited without reporting its address; output:\n${seen}`);
  return `http://127.0.0.1:${match[1]}`;
}
