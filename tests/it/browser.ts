// Drives headless Chromium over the DevTools protocol for tests/it/browser.rs (run with Bun:
// `bun tests/it/browser.ts CHROMIUM URL`). For each viewport and colour scheme it loads the page
// and reports the computed colours of its elements and its layout widths; it records every
// request the page made. Prints one JSON object; the Rust test makes the assertions.

const [chromium, url] = process.argv.slice(2);
if (!chromium || !url) throw new Error("usage: bun browser.ts CHROMIUM URL");

const profile = `${process.env.TMPDIR ?? "/tmp"}/bshare-cdp-${process.pid}`;
const browser = Bun.spawn(
  [
    chromium,
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    "about:blank",
  ],
  { stdout: "ignore", stderr: "pipe" },
);

/** Chromium names its DevTools address on stderr. */
async function devtoolsAddress(): Promise<string> {
  const reader = browser.stderr.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += decoder.decode(value, { stream: true });
    const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
    if (match) {
      // Keep draining so Chromium never blocks on a full pipe.
      void (async () => {
        for (;;) if ((await reader.read()).done) return;
      })();
      return match[1]!;
    }
  }
  throw new Error(`Chromium did not name its DevTools address:\n${seen}`);
}

type Message = { id?: number; method?: string; params?: any; result?: any; error?: any; sessionId?: string };

const ws = new WebSocket(await devtoolsAddress());
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = reject;
});
let nextId = 0;
const waiting = new Map<number, { resolve: (r: any) => void; reject: (e: Error) => void }>();
const listeners: Array<(m: Message) => void> = [];
ws.onmessage = (event) => {
  const msg = JSON.parse(String(event.data)) as Message;
  if (msg.id !== undefined) {
    const w = waiting.get(msg.id);
    waiting.delete(msg.id);
    if (msg.error) w?.reject(new Error(`${JSON.stringify(msg.error)}`));
    else w?.resolve(msg.result);
  } else {
    for (const l of listeners) l(msg);
  }
};
function send(method: string, params: object = {}, sessionId?: string): Promise<any> {
  const id = ++nextId;
  ws.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => waiting.set(id, { resolve, reject }));
}
function once(method: string, sessionId: string): Promise<any> {
  return new Promise((resolve) => {
    const l = (m: Message) => {
      if (m.method === method && m.sessionId === sessionId) {
        listeners.splice(listeners.indexOf(l), 1);
        resolve(m.params);
      }
    };
    listeners.push(l);
  });
}

const requests: string[] = [];
listeners.push((m) => {
  if (m.method === "Network.requestWillBeSent") requests.push(m.params.request.url);
});

const { targetId } = await send("Target.createTarget", { url: "about:blank" });
const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
await send("Page.enable", {}, sessionId);
await send("Network.enable", {}, sessionId);
await send("Network.setCacheDisabled", { cacheDisabled: true }, sessionId);

// What the page shows, read in the page (DevTools' evaluation is not subject to the page's CSP).
const probe = `(() => {
  const style = (selector, property) => {
    const el = document.querySelector(selector);
    return el ? getComputedStyle(el).getPropertyValue(property) : null;
  };
  const root = document.documentElement;
  const wide = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
    .filter((el) => !el.closest("pre, .scroll, table"))
    .slice(0, 5)
    .map((el) => el.tagName.toLowerCase() + (el.className ? "." + String(el.className).replace(/ /g, ".") : ""));
  return JSON.stringify({
    innerWidth: window.innerWidth,
    scrollWidth: root.scrollWidth,
    bodyScrollWidth: document.body.scrollWidth,
    wide,
    colors: {
      "body background-color": style("body", "background-color"),
      "body color": style("body", "color"),
      ".toc a color": style(".toc a", "color"),
      ".msg.user background-color": style(".msg.user", "background-color"),
      "pre.code background-color": style("pre.code:not(.cmd)", "background-color"),
    },
    html: root.outerHTML,
  });
})()`;

const views: unknown[] = [];
for (const [name, width, height, mobile] of [
  ["desktop", 1280, 900, false],
  ["phone", 390, 844, true],
] as const) {
  for (const scheme of ["light", "dark"]) {
    await send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile }, sessionId);
    await send("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: scheme }] }, sessionId);
    const loaded = once("Page.loadEventFired", sessionId);
    await send("Page.navigate", { url }, sessionId);
    await loaded;
    const { result } = await send("Runtime.evaluate", { expression: probe, returnByValue: true }, sessionId);
    views.push({ name, scheme, width, ...JSON.parse(result.value) });
  }
}

console.log(JSON.stringify({ requests, views }));
ws.close();
browser.kill();
await browser.exited;
await Bun.$`rm -rf ${profile}`.quiet().nothrow();
process.exit(0);
