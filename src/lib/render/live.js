// bshare: live follow for the share page. The page is whole without this script; with it, new
// and changed messages appear as the server learns of them, without a reload, and without moving
// what the reader is looking at. It talks only to its own origin:
// - `<page>/events`: an event stream with `change` and `gone`;
// - `<page>?after=<id>`: the rendered messages from message <id> on (that one may have changed);
// - when the server holds as many streams as it may (503), `HEAD <page>` every 10 s, by ETag.
(() => {
  "use strict";
  const main = document.getElementById("messages");
  if (!main || !window.fetch) return;
  const page = location.pathname.replace(/\/+$/, "");
  const POLL_MS = 10000;

  const badge = document.createElement("span");
  badge.className = "live-badge";
  badge.setAttribute("role", "status");
  badge.textContent = "live";
  badge.hidden = true;
  document.body.appendChild(badge);

  let source = null;
  let pollTimer = null;
  let etag = null;
  let gone = false;
  let busy = false;
  let again = false;

  function lastId() {
    const all = main.querySelectorAll("article[data-id]");
    return all.length ? all[all.length - 1].dataset.id : "";
  }

  // Fetch what follows the last message shown and put it in place. One fetch at a time; a
  // change during a fetch makes one more.
  async function refresh() {
    if (gone) return;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      do {
        again = false;
        const response = await fetch(page + "?after=" + encodeURIComponent(lastId()), {
          cache: "no-store",
          credentials: "same-origin",
        });
        if (response.status === 404 || response.status === 410) {
          takenDown();
          return;
        }
        if (!response.ok) return;
        apply(await response.text());
      } while (again && !gone);
    } catch (_) {
      // The network is away; the next event or poll tries again.
    } finally {
      busy = false;
    }
  }

  // The fragment is this server's own rendering (every document string escaped), and the page's
  // policy runs no inline script.
  function apply(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const article of template.content.querySelectorAll("article[data-id]")) {
      const id = article.dataset.id;
      const old = main.querySelector('article[data-id="' + CSS.escape(id) + '"]');
      if (!old) {
        main.appendChild(article);
      } else if (old.innerHTML !== article.innerHTML) {
        // Keep what the reader opened.
        const open = Array.from(old.querySelectorAll("details"), (d) => d.open);
        article.querySelectorAll("details").forEach((d, i) => {
          if (i < open.length) d.open = open[i];
        });
        old.replaceWith(article);
      }
    }
  }

  function takenDown() {
    if (gone) return;
    gone = true;
    if (source) source.close();
    if (pollTimer) clearInterval(pollTimer);
    badge.hidden = true;
    const notice = document.createElement("div");
    notice.className = "taken-down";
    notice.setAttribute("role", "alert");
    const title = document.createElement("h2");
    title.textContent = "This share was taken down";
    const text = document.createElement("p");
    text.textContent = "Its owner removed it. Its content is no longer available.";
    notice.append(title, text);
    main.replaceChildren(notice);
    // The prompt list and the changed files quote the content too.
    document.querySelectorAll("nav.toc, header.top .files").forEach((e) => e.remove());
  }

  async function poll() {
    if (gone) return;
    try {
      const headers = etag ? { "If-None-Match": etag } : {};
      const response = await fetch(page, { method: "HEAD", headers, cache: "no-store" });
      if (response.status === 404 || response.status === 410) {
        takenDown();
        return;
      }
      const tag = response.headers.get("ETag");
      if (response.status === 200 && (etag === null || tag !== etag)) refresh();
      if (tag) etag = tag;
    } catch (_) {
      // Try again at the next poll.
    }
  }

  function startPolling() {
    if (pollTimer || gone) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }

  function connect() {
    if (!window.EventSource) {
      startPolling();
      return;
    }
    source = new EventSource(page + "/events");
    source.addEventListener("open", () => {
      badge.hidden = false;
      if (pollTimer) {
        clearInterval(pollTimer);
        pollTimer = null;
      }
      // What changed between the page's render and now.
      refresh();
    });
    source.addEventListener("change", refresh);
    source.addEventListener("gone", takenDown);
    source.addEventListener("error", () => {
      badge.hidden = true;
      // CLOSED: refused (503 beyond the server's cap, 410, 404); the browser does not retry.
      if (source.readyState === EventSource.CLOSED && !gone) startPolling();
    });
  }

  connect();
})();
