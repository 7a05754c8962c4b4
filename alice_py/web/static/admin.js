// The admin page keeps its numbers and the key pool current from status.json (same session cookie).
// The key tables are rebuilt as the server renders them (web/pages.py: pool_html), per upstream.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const url = document.body.dataset.statusUrl;
  const pool = $("keys");
  const EVERY_MS = 5000;
  const HEADINGS = [
    ["Key"], ["State"], ["Reason"], ["Cooldown until"], ["Last error"],
    ["Requests", "num"], ["Failures", "num"], ["Success rate", "num"], ["Tokens", "num"], [""],
  ];

  function duration(seconds) {
    let whole = Math.max(Math.floor(seconds), 0);
    const parts = [];
    for (const [name, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
      if (whole >= size || (name === "s" && !parts.length)) {
        parts.push(`${Math.floor(whole / size)} ${name}`);
        whole %= size;
      }
      if (parts.length === 2) break;
    }
    return parts.join(" ");
  }

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function hidden(name, value) {
    const input = el("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function testForm(key) {
    const form = el("form");
    form.method = "post";
    form.action = pool.dataset.testUrl;
    const button = el("button", "Test now");
    button.type = "submit";
    form.append(hidden("csrf", pool.dataset.csrf), hidden("upstream", key.upstream), hidden("key", key.id), button);
    const td = el("td");
    td.append(form);
    return td;
  }

  function until(key) {
    if (!key.cooldown_until) return "—";
    const clock = new Date(key.cooldown_until).toISOString().slice(11, 19);
    return `${clock} UTC (in ${duration(key.cooldown_remaining + 0.999)})`;
  }

  function lastError(key) {
    if (!key.last_error) return "—";
    return key.last_error + (key.last_error_request_id ? ` (upstream request ${key.last_error_request_id})` : "");
  }

  function rate(key) {
    return key.success_rate === null ? "—" : `${Math.round(key.success_rate * 100)} % of ${key.window_requests}`;
  }

  function keyRow(key) {
    const tr = el("tr");
    tr.dataset.key = key.id;
    const stateCell = el("td");
    stateCell.append(el("span", key.state, `state ${key.state}`));
    tr.append(
      el("td", key.key, "key"),
      stateCell,
      el("td", key.disabled_reason || "—", "reason"),
      el("td", until(key), "until"),
      el("td", lastError(key), "error"),
      el("td", String(key.requests), "num"),
      el("td", String(key.failures), "num"),
      el("td", rate(key), "num"),
      el("td", String(key.tokens), "num"),
      testForm(key),
    );
    return tr;
  }

  function summary(keys) {
    let text = `${keys.length} key${keys.length === 1 ? "" : "s"}`;
    for (const state of ["active", "cooling", "disabled"]) {
      const count = keys.filter((k) => k.state === state).length;
      if (count) text += ` · ${count} ${state}`;
    }
    return text;
  }

  function upstreamSection(name, keys) {
    const section = el("section", undefined, "upstream");
    section.dataset.upstream = name;
    const title = el("h3", `${name} `);
    title.append(el("span", summary(keys), "muted"));
    const head = el("tr");
    for (const [text, className] of HEADINGS) head.append(el("th", text, className));
    const thead = el("thead");
    thead.append(head);
    const tbody = el("tbody");
    tbody.append(...keys.map(keyRow));
    if (!keys.length) {
      const td = el("td", "No API keys configured.", "muted");
      td.colSpan = HEADINGS.length;
      const tr = el("tr");
      tr.append(td);
      tbody.append(tr);
    }
    const table = el("table");
    table.append(thead, tbody);
    const wrap = el("div", undefined, "table-wrap");
    wrap.append(table);
    section.append(title, wrap);
    return section;
  }

  function show(status) {
    $("uptime").textContent = duration(status.uptime);
    $("conversations").textContent = String(status.conversations);
    $("shares").textContent = String(status.shares);
    const usable = status.keys.filter((k) => k.state !== "disabled").length;
    $("usable").textContent = `${usable} / ${status.keys.length}`;
    pool.replaceChildren(...status.upstreams.map((name) => upstreamSection(name, status.keys.filter((k) => k.upstream === name))));
    $("refreshed").textContent = `Updated ${new Date().toLocaleTimeString()}; updates every 5 seconds.`;
  }

  async function refresh() {
    try {
      const resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 401) {
        $("refreshed").textContent = "The session has ended: reload the page to log in again.";
        return;
      }
      if (resp.ok) show(await resp.json());
    } catch (_) {
      $("refreshed").textContent = "The service does not answer; retrying.";
    }
    setTimeout(refresh, EVERY_MS);
  }

  setTimeout(refresh, EVERY_MS);
})();
