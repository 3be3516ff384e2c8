import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { build, MARKER } from "../scripts/build.ts";

const root = join(import.meta.dir, "..");

test("bundle/ is up to date with src/ (run `npm run build` after changing the plugin)", async () => {
  // Built with the Bun pinned in package.json, whichever Bun runs the tests: another bundler
  // version may print the same code differently.
  const pinned = join(root, "node_modules", ".bin", "bun");
  if (existsSync(pinned) && process.execPath !== pinned) {
    const check = Bun.spawnSync([pinned, join(root, "scripts", "build.ts"), "--check"], { cwd: root });
    expect({ exitCode: check.exitCode, stderr: check.stderr.toString() }).toEqual({ exitCode: 0, stderr: "" });
    return;
  }
  for (const { out, text } of await build()) {
    expect({ out, text: readFileSync(join(root, out), "utf8") }).toEqual({ out, text });
  }
});

test("each bundle starts with the marker `bshare plugin install` recognizes", () => {
  for (const file of ["bundle/bshare.js", "bundle/bshare-tui.js"]) {
    expect(readFileSync(join(root, file), "utf8").startsWith(MARKER)).toBe(true);
  }
});

test("the server bundle exports only the plugin function; the TUI bundle only { id, tui }", async () => {
  const server = await import(join(root, "bundle/bshare.js"));
  expect(Object.keys(server)).toEqual(["BsharePlugin"]);
  expect(typeof server.BsharePlugin).toBe("function");
  const tui = await import(join(root, "bundle/bshare-tui.js"));
  expect(Object.keys(tui)).toEqual(["default"]);
  expect(tui.default.id).toBe("bshare");
  expect(typeof tui.default.tui).toBe("function");
  expect(tui.default.server).toBeUndefined();
});

test("the bundles import nothing but node: built-ins", () => {
  for (const file of ["bundle/bshare.js", "bundle/bshare-tui.js"]) {
    const text = readFileSync(join(root, file), "utf8");
    const specifiers = [...text.matchAll(/^import .* from "([^"]+)";?$/gm)].map((m) => m[1]);
    expect(specifiers.length).toBeGreaterThan(0);
    for (const s of specifiers) expect(s).toStartWith("node:");
  }
});
