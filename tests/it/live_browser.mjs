// The share page's live follow in real Chromium, driven by playwright-core (see live.rs, which
// starts the server and the share and checks what this prints). Steps: open the page, see the
// live badge, scroll to the middle; add a message through OpenCode's sync, then through a
// presigned re-upload, each seen without reload within 3 s and with the scroll position kept;
// delete the share and see it say so in place. Prints one JSON line of what it measured; exits
// non-zero on the first failed step.
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

const require = createRequire(import.meta.url);
const { chromium } = require(process.env.BSHARE_TEST_PLAYWRIGHT);
const base = process.env.BASE;
const id = process.env.SHARE_ID;
const secret = process.env.SECRET;
const session = process.env.SESSION;
const shots = process.env.SHOTS;
mkdirSync(shots, { recursive: true });

function fail(step, detail) {
  console.error(`FAILED: ${step}: ${detail}`);
  process.exit(1);
}

function message(n, text) {
  const mid = `msg_live${String(n).padStart(4, "0")}`;
  const info = { id: mid, sessionID: session, role: "user", time: { created: 1795479651000 + n * 1000 } };
  const part = { id: `prt_live${String(n).padStart(4, "0")}`, messageID: mid, sessionID: session, type: "text", text };
  return { mid, info, part };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic"],
});
const result = {};
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));

  await page.goto(`${base}/share/${id}`, { waitUntil: "load" });
  try {
    await page.waitForSelector(".live-badge:not([hidden])", { timeout: 5000 });
  } catch (e) {
    fail("live badge", `not shown: ${errors.join("; ")}`);
  }
  result.badgeText = await page.textContent(".live-badge");
  // Survives only if the page is never reloaded.
  await page.evaluate(() => {
    window.bshareSamePage = true;
  });
  await page.screenshot({ path: `${shots}/live-badge.png` });

  const scrollToMiddle = () =>
    page.evaluate(() => {
      window.scrollTo(0, Math.floor((document.documentElement.scrollHeight - innerHeight) / 2));
      return scrollY;
    });
  const y = await scrollToMiddle();
  if (y < 200) fail("scroll", `the page is too short to scroll (${y})`);
  await page.waitForTimeout(300);

  // 1. OpenCode's sync.
  const synced = message(100, "added-through-opencode-sync");
  let t = Date.now();
  let r = await fetch(`${base}/api/share/${id}/sync`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ secret, data: [{ type: "message", data: synced.info }, { type: "part", data: synced.part }] }),
  });
  if (r.status !== 200) fail("sync", `${r.status} ${await r.text()}`);
  try {
    await page.waitForSelector(`article[data-id="${synced.mid}"]`, { timeout: 3000 });
  } catch (e) {
    fail("sync", "the synced message did not appear within 3 s");
  }
  result.syncMs = Date.now() - t;
  result.syncScroll = [y, await page.evaluate(() => scrollY)];
  if (result.syncScroll[1] !== y) fail("sync", `scroll moved: ${result.syncScroll}`);
  if (!(await page.textContent(`article[data-id="${synced.mid}"]`)).includes("added-through-opencode-sync"))
    fail("sync", "the new message has not its text");

  // 2. A presigned re-upload, straight to the bucket.
  r = await fetch(`${base}/api/share/${id}`);
  if (r.status !== 200) fail("re-upload", `document: ${r.status}`);
  const doc = await r.json();
  const uploaded = message(101, "added-through-presigned-upload");
  doc.messages.push({ info: uploaded.info, parts: [uploaded.part] });
  const body = JSON.stringify(doc);
  r = await fetch(`${base}/api/share/${id}/presign`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Share-Secret": secret },
    body: JSON.stringify({ size: Buffer.byteLength(body) }),
  });
  if (r.status !== 200) fail("re-upload", `presign: ${r.status} ${await r.text()}`);
  const { presignedUrl } = await r.json();
  if (presignedUrl.startsWith(base)) fail("re-upload", `the URL is this server's: ${presignedUrl}`);
  // Let the announcement of the new upload URL pass first: what sees the PUT below is the
  // server's own check of the object while the URL is open.
  await page.waitForTimeout(1100);
  t = Date.now();
  r = await fetch(presignedUrl, { method: "PUT", headers: { "Content-Type": "application/json" }, body });
  if (r.status !== 200) fail("re-upload", `PUT: ${r.status} ${await r.text()}`);
  try {
    await page.waitForSelector(`article[data-id="${uploaded.mid}"]`, { timeout: 3000 });
  } catch (e) {
    fail("re-upload", "the uploaded message did not appear within 3 s");
  }
  result.uploadMs = Date.now() - t;
  result.uploadScroll = [y, await page.evaluate(() => scrollY)];
  if (result.uploadScroll[1] !== y) fail("re-upload", `scroll moved: ${result.uploadScroll}`);
  result.articles = await page.evaluate(() => document.querySelectorAll("article[data-id]").length);

  // 3. Taken down.
  t = Date.now();
  r = await fetch(`${base}/api/share/${id}`, { method: "DELETE", headers: { "X-Share-Secret": secret } });
  if (r.status !== 200) fail("delete", `${r.status} ${await r.text()}`);
  try {
    await page.waitForSelector(".taken-down", { timeout: 3000 });
  } catch (e) {
    fail("delete", "the page did not say it was taken down within 3 s");
  }
  result.goneMs = Date.now() - t;
  result.goneText = await page.textContent(".taken-down");
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${shots}/taken-down.png` });

  result.samePage = await page.evaluate(() => window.bshareSamePage === true);
  if (!result.samePage) fail("reload", "the page was reloaded");
  result.otherHosts = requests.filter((u) => !u.startsWith(base));
  result.errors = errors;
  if (result.otherHosts.length) fail("requests", `to other hosts: ${result.otherHosts}`);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
