// Screenshot of a share page's first task call with its subagent's conversation opened (the
// page itself keeps it collapsed), with headless Chromium driven by playwright-core.
//
//   node docs/subagent-screenshot.mjs URL OUT.png [light|dark]
//   node docs/subagent-screenshot.mjs http://127.0.0.1:8080/share/<id> docs/share-subagent-light.png light
//
// playwright-core comes from the npm registry (PLAYWRIGHT_CORE names its directory; default
// the test command's cache), Chromium from the system (CHROMIUM, default /usr/bin/chromium).
import { homedir } from "node:os";
import { join } from "node:path";

const core = process.env.PLAYWRIGHT_CORE ?? join(homedir(), ".cache/bshare-test/npm/node_modules/playwright-core");
const { chromium } = await import(join(core, "index.mjs"));
const [url, out, scheme = "light"] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node docs/subagent-screenshot.mjs URL OUT.png [light|dark]");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 }, colorScheme: scheme });
  await page.goto(url);
  const task = page.locator("div.tool.t-task").filter({ has: page.locator("> details.subagent") }).first();
  await task.locator("> details.subagent > summary").click();
  await task.screenshot({ path: out });
} finally {
  await browser.close();
}
