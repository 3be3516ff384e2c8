// Builds the two self-contained plugin files in bundle/ that `bshare plugin install` embeds:
//   bundle/bshare.js      the server plugin (events, re-sync, agent tools)
//   bundle/bshare-tui.js  the TUI plugin (slash commands)
// `bun scripts/build.ts` writes them; `bun scripts/build.ts --check` fails when they are stale.
// The first line of each marks the file as bshare's, so an install can replace an older copy
// and still refuse to overwrite a file that is not ours.

import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..");
const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;

export const MARKER = "// bshare-opencode-plugin";

export const bundles = [
  { entry: "src/index.ts", out: "bundle/bshare.js", what: "server plugin" },
  { entry: "src/tui-entry.ts", out: "bundle/bshare-tui.js", what: "TUI plugin" },
] as const;

export async function build(): Promise<Array<{ out: string; text: string }>> {
  const results: Array<{ out: string; text: string }> = [];
  for (const b of bundles) {
    const result = await Bun.build({
      entrypoints: [join(root, b.entry)],
      target: "node",
      format: "esm",
      banner: `${MARKER} ${version} (${b.what}); built from plugin/${b.entry}, do not edit`,
    });
    if (!result.success || result.outputs.length !== 1 || result.outputs[0] === undefined) {
      throw new Error(`bun build ${b.entry} failed: ${result.logs.map(String).join("\n")}`);
    }
    results.push({ out: b.out, text: await result.outputs[0].text() });
  }
  return results;
}

if (import.meta.main) {
  const check = process.argv.includes("--check");
  let stale = 0;
  for (const { out, text } of await build()) {
    const path = join(root, out);
    if (check) {
      let current = "";
      try {
        current = readFileSync(path, "utf8");
      } catch {
        // Missing counts as stale.
      }
      if (current !== text) {
        console.error(`${out} is out of date with src/; run \`npm run build\` in plugin/`);
        stale++;
      }
    } else {
      writeFileSync(path, text);
      console.log(`wrote ${out} (${text.length} bytes)`);
    }
  }
  process.exit(stale === 0 ? 0 : 1);
}
