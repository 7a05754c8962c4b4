// The admin page keeps its numbers and the key pool current from status.json (same session cookie).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const url = document.body.dataset.statusUrl;
  const EVERY_MS = 5000;

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

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function keyRow(key) {
    const tr = document.createElement("tr");
    let detail = "";
    if (key.state === "cooling") detail = ` (${duration(key.cooldown_remaining + 0.999)})`;
    else if (key.disabled_reason) detail = `: ${key.disabled_reason}`;
    const state = document.createElement("span");
    state.className = `state ${key.state}`;
    state.textContent = key.state + detail;
    const stateCell = document.createElement("td");
    stateCell.append(state);
    tr.append(
      cell(key.key, "key"),
      stateCell,
      cell(String(key.requests), "num"),
      cell(String(key.failures), "num"),
      cell(key.last_error || "—", "error"),
    );
    return tr;
  }

  function show(status) {
    $("uptime").textContent = duration(status.uptime);
    $("conversations").textContent = String(status.conversations);
    $("shares").textContent = String(status.shares);
    const usable = status.keys.filter((k) => k.state !== "disabled").length;
    $("usable").textContent = `${usable} / ${status.keys.length}`;
    const rows = status.keys.map(keyRow);
    if (!rows.length) {
      const tr = document.createElement("tr");
      const td = cell("No API keys configured.", "muted");
      td.colSpan = 5;
      tr.append(td);
      rows.push(tr);
    }
    $("keys").replaceChildren(...rows);
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
