"use strict";
// Everything from the server is untrusted text: it only ever reaches the page
// through textContent, text nodes and checked http(s) links.
(() => {
  const match = location.pathname.match(/^\/tasks\/([^/]+)$/);
  const only = match ? decodeURIComponent(match[1]) : "";
  const list = document.getElementById("tasks");
  const conn = document.getElementById("conn");
  const empty = document.getElementById("empty");
  const createForm = document.getElementById("create");
  const createErr = document.getElementById("create-err");
  const cards = new Map();
  const maxEvents = 200;
  if (only) {
    document.getElementById("new").hidden = true;
    empty.textContent = "No task " + only + ".";
  }

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function safeURL(u) {
    try {
      const p = new URL(String(u), location.href);
      return p.protocol === "http:" || p.protocol === "https:" ? p.href : "";
    } catch (_) {
      return "";
    }
  }

  function clock(t) {
    const d = new Date(t);
    return isNaN(d.getTime()) ? "" : d.toLocaleTimeString();
  }

  async function api(method, path, body) {
    const init = { method: method, headers: { "Content-Type": "application/json" } };
    if (body !== undefined) init.body = JSON.stringify(body);
    const res = await fetch(path, init);
    let data = {};
    try { data = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new Error((data.error && data.error.message) || res.status + " " + res.statusText);
    return data;
  }

  function taskPath(key) {
    return "/api/tasks/" + encodeURIComponent(key);
  }

  function newCard(key) {
    const card = { root: el("article", "task"), body: el("div"), last: "" };
    const chat = el("form", "chat");
    const input = el("input");
    input.placeholder = "Reply in the task chat (queues a follow-up run)";
    input.required = true;
    const send = el("button", "", "Send");
    send.type = "submit";
    const stop = el("button", "stop", "Stop");
    stop.type = "button";
    const err = el("span", "err");
    chat.append(input, send, stop, err);
    chat.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      try {
        await api("POST", taskPath(key) + "/messages", { body: input.value });
        input.value = "";
        refresh();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    stop.addEventListener("click", async () => {
      err.textContent = "";
      try {
        await api("POST", taskPath(key) + "/stop");
        refresh();
      } catch (e) {
        err.textContent = e.message;
      }
    });
    card.root.append(card.body, chat);
    return card;
  }

  function renderRun(rv) {
    const r = rv.run;
    const box = el("div", "run");
    const head = el("p", "run-head");
    let info = " " + r.kind + " · attempt " + r.attempt + " · " + r.id;
    if (rv.runner_id) info += " · runner " + rv.runner_id;
    if (rv.last_state) info += " · " + rv.last_state;
    info += " · " + rv.heartbeats + " heartbeats";
    head.append(el("span", "status s-" + r.status, r.status), info);
    box.append(head);
    const c = rv.completion;
    if (c) {
      if (c.summary) box.append(el("pre", "", c.summary));
      if (c.error) box.append(el("pre", "err", c.error));
    }
    const events = rv.events || [];
    if (events.length) {
      const ol = el("ol", "events");
      const shown = events.slice(-maxEvents);
      if (shown.length < events.length) box.append(el("p", "meta", (events.length - shown.length) + " earlier events not shown"));
      for (const e of shown) {
        const li = el("li", "t-" + e.type);
        li.value = e.seq;
        let text = "[" + e.type + "] " + e.text;
        if (e.type === "tool" && e.data && e.data.name && !e.text) text += String(e.data.name);
        li.textContent = text;
        ol.append(li);
      }
      box.append(ol);
    }
    return box;
  }

  function renderTask(body, view) {
    const t = view.task;
    const runs = view.runs || [];
    const latest = runs.length ? runs[runs.length - 1].run : null;
    body.replaceChildren();
    const h = el("h2");
    const link = el("a", "key", t.key);
    link.href = "/tasks/" + encodeURIComponent(t.key);
    h.append(link, " ", el("span", "", t.title));
    if (latest) h.append(" ", el("span", "status s-" + latest.status, latest.status));
    body.append(h);
    const meta = el("p", "meta");
    meta.append("base: " + (t.base_branch || "default branch"));
    if (t.pull_request) {
      meta.append(" · PR: ");
      const label = "#" + t.pull_request.number + " " + t.pull_request.branch;
      const href = safeURL(t.pull_request.url);
      if (href) {
        const a = el("a", "", label);
        a.href = href;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        meta.append(a);
      } else {
        meta.append(label);
      }
    }
    body.append(meta);
    if (t.description) body.append(el("pre", "desc", t.description));
    if (t.messages && t.messages.length) {
      const ul = el("ul", "messages");
      for (const m of t.messages) {
        const author = m.author || {};
        const li = el("li", "m-" + author.kind);
        li.append(el("b", "", author.name || "?"), " ", el("time", "", clock(m.created_at)), el("div", "", m.body));
        ul.append(li);
      }
      body.append(ul);
    }
    for (const rv of runs.slice().reverse()) body.append(renderRun(rv));
  }

  let busy = false;
  let again = false;
  let timer = 0;
  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    clearTimeout(timer);
    try {
      const data = await api("GET", "/api/tasks");
      let views = (data.tasks || []).slice().reverse();
      if (only) views = views.filter((v) => v.task.key === only);
      const seen = new Set();
      let prev = null;
      for (const v of views) {
        const key = v.task.key;
        seen.add(key);
        let card = cards.get(key);
        if (!card) {
          card = newCard(key);
          cards.set(key, card);
        }
        const json = JSON.stringify(v);
        if (json !== card.last) {
          card.last = json;
          renderTask(card.body, v);
        }
        // Move a card only when it is out of place, so a focused chat box keeps focus.
        const want = prev ? prev.nextSibling : list.firstChild;
        if (want !== card.root) list.insertBefore(card.root, want);
        prev = card.root;
      }
      for (const [key, card] of cards) {
        if (!seen.has(key)) {
          card.root.remove();
          cards.delete(key);
        }
      }
      empty.hidden = views.length > 0;
      conn.textContent = "live";
    } catch (e) {
      conn.textContent = "disconnected: " + e.message;
    }
    busy = false;
    if (again) {
      again = false;
      refresh();
    } else {
      timer = setTimeout(refresh, 1000);
    }
  }

  createForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new FormData(createForm);
    const base = String(f.get("base_branch") || "").trim();
    const body = {
      key: String(f.get("key") || "").trim(),
      title: String(f.get("title") || ""),
      description: String(f.get("description") || ""),
      base_branch: base ? base : null,
    };
    createErr.textContent = "";
    try {
      await api("POST", "/api/tasks", body);
      createForm.reset();
      refresh();
    } catch (e) {
      createErr.textContent = e.message;
    }
  });

  refresh();
})();
