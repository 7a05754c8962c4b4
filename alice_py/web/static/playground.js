// The alice-py playground: a small frontend of the Alice API (/chatgpt/*) and its tree routes
// (docs/tree.md), no build step. What the user typed goes into the page through textContent; what
// the model wrote only through markdown.js (marked, then DOMPurify). The side list's storage is
// history.js. The page shows the path to the conversation's current leaf, as the server has it.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const SETTINGS_KEY = "alice-playground";
  const SECRET_KEY = "alice-playground-secret";
  const CONVERSATION_KEY = "alice-playground-conversation";

  const CREATE = {
    turbo: { path: "chatgpt/createTurbo", body: (prompt) => JSON.stringify({ prompt, stream: true }) },
    gpt4: { path: "chatgpt/createGPT4", body: (prompt) => prompt },
    gpt3: { path: "chatgpt/create", body: (prompt) => prompt },
  };

  // conv: {id, kind} of the open conversation; tree: its last known tree (indexTree); messages: the
  // views on screen (role, text, el, body, node: the tree's message, null while being answered).
  const state = { conv: null, tree: null, messages: [], busy: false, abort: null };

  // --- settings -----------------------------------------------------------------------------------

  function loadSettings() {
    let saved = {};
    try {
      saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}");
    } catch (_) {
      saved = {};
    }
    const remembered = saved.remember === true;
    return {
      // The server says its mode in the page (never its secret): that wins over one saved by an
      // earlier visit, when the server may have run differently (--demo runs with "none").
      mode: document.body.dataset.authMode || saved.mode || "simple",
      secret: (remembered ? localStorage : sessionStorage).getItem(SECRET_KEY) || "",
      remember: remembered,
      prompt: saved.prompt || "",
      kind: saved.kind || "turbo",
    };
  }

  function saveSettings(s) {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ mode: s.mode, remember: s.remember, prompt: s.prompt, kind: s.kind }));
    localStorage.removeItem(SECRET_KEY);
    sessionStorage.removeItem(SECRET_KEY);
    (s.remember ? localStorage : sessionStorage).setItem(SECRET_KEY, s.secret);
  }

  const settings = loadSettings();

  // --- auth and requests --------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message || `HTTP ${status}`);
      this.status = status;
    }
  }

  function newUuid() {
    if (crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  async function authHeaders() {
    if (settings.mode === "none") return {};
    if (settings.mode === "simple") return { token: settings.secret };
    if (!window.isSecureContext || !crypto.subtle) {
      throw new ApiError(0, "Normal auth needs a secure context: open the playground over https, or at http://localhost or http://127.0.0.1.");
    }
    const uuid = newUuid();
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(settings.secret + uuid));
    const token = Array.from(new Uint8Array(digest), (x) => x.toString(16).padStart(2, "0")).join("");
    return { uuid, token };
  }

  // POST to an Alice route (relative URL: works under a path prefix); throws ApiError on failure.
  async function api(path, { body = "", headers = {}, withConversation = true, signal } = {}) {
    const all = { ...(await authHeaders()), ...headers };
    if (withConversation && state.conv) all.conversation = state.conv.id;
    let resp;
    try {
      resp = await fetch(path, { method: "POST", headers: all, body, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "The server cannot be reached.");
    }
    if (!resp.ok) throw new ApiError(resp.status, (await resp.text()).trim());
    return resp;
  }

  // --- Server-Sent Events from a fetch stream (the EventSource algorithm of the HTML spec) ------

  function splitLines(buffer, final) {
    const lines = [];
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (c !== "\n" && c !== "\r") continue;
      if (c === "\r" && i + 1 === buffer.length && !final) break; // a "\n" may follow in the next chunk
      lines.push(buffer.slice(start, i));
      if (c === "\r" && buffer[i + 1] === "\n") i++;
      start = i + 1;
    }
    return [lines, buffer.slice(start)];
  }

  async function* sseEvents(resp) {
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let data = [];
    let type = "";
    for (;;) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const [lines, rest] = splitLines(buffer, done);
      buffer = rest;
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield { type: type || "message", data: data.join("\n") };
          data = [];
          type = "";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") data.push(val);
        else if (field === "event") type = val;
      }
      if (done) return;
    }
  }

  // The answer of chat / regenerate: a stream (turbo) or plain text; onText gets the text so far.
  async function readAnswer(resp, onText) {
    if (!(resp.headers.get("Content-Type") || "").includes("text/event-stream")) {
      const whole = await resp.text();
      onText(whole);
      return whole;
    }
    let text = "";
    for await (const event of sseEvents(resp)) {
      if (event.type === "error") throw new ApiError(502, event.data);
      if (event.type !== "message") continue;
      if (event.data === "[DONE]") return text;
      text += event.data;
      onText(text);
    }
    throw new ApiError(502, "The answer stream ended early.");
  }

  // --- the transcript: the path from the root to the current leaf -------------------------------

  const log = $("log");

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  // A question is shown as the person typed it; an answer as Markdown, through the sanitizer.
  function renderBody(view) {
    if (view.role === "ai") {
      window.aliceMarkdown.render(view.body, view.text);
      return;
    }
    const p = document.createElement("p");
    p.textContent = view.text;
    view.body.replaceChildren(p);
  }

  // One message on screen. ``node`` is its message in the tree (absent while it is being answered).
  function addMessage(role, text, node = null) {
    const el = document.createElement("article");
    el.className = `msg ${role}`;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = role === "human" ? "You" : "AI";
    const body = document.createElement("div");
    body.className = "rich";
    el.append(who, body);
    const view = { role, text, el, body, node };
    if (node) {
      el.dataset.id = node.id;
      el.append(messageTools(view));
    }
    state.messages.push(view);
    $("empty").hidden = true;
    log.append(el);
    setText(view, text);
    log.scrollTop = log.scrollHeight;
    return view;
  }

  function setText(view, text) {
    const stick = nearBottom();
    view.text = text;
    renderBody(view);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function removeMessage(view) {
    view.el.remove();
    state.messages = state.messages.filter((m) => m !== view);
    $("empty").hidden = state.messages.length > 0;
  }

  function clearTranscript() {
    state.messages.forEach((m) => m.el.remove());
    state.messages = [];
    $("empty").hidden = false;
  }

  function button(label, className, onClick, title = "") {
    const b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = label;
    if (title) b.title = title;
    b.addEventListener("click", onClick);
    return b;
  }

  // Under each message: "‹ n/m ›" when it has siblings (an edited question, a regenerated answer),
  // Edit on questions, and Fork from here.
  function messageTools(view) {
    const tools = document.createElement("div");
    tools.className = "msg-tools";
    const siblings = siblingsOf(view.node);
    if (siblings.length > 1) {
      const at = siblings.indexOf(view.node.id);
      const pager = document.createElement("span");
      pager.className = "pager";
      const prev = button("‹", "prev", () => checkout(siblings[at - 1]), "Previous version");
      const next = button("›", "next", () => checkout(siblings[at + 1]), "Next version");
      prev.disabled = at === 0;
      next.disabled = at === siblings.length - 1;
      prev.dataset.keep = prev.disabled ? "off" : "";
      next.dataset.keep = next.disabled ? "off" : "";
      const pos = document.createElement("span");
      pos.className = "pos";
      pos.textContent = `${at + 1}/${siblings.length}`;
      pager.append(prev, pos, next);
      tools.append(pager);
    }
    if (view.role === "human") tools.append(button("Edit", "edit", () => startEdit(view), "Edit this question: a new branch"));
    tools.append(button("Fork from here", "fork", () => fork(view.node.id), "A new conversation holding everything up to here"));
    return tools;
  }

  // Streaming re-renders at most once per frame, however fast the pieces arrive; cancel() drops
  // a frame still due, so that it cannot overwrite the final (or restored) text.
  function frameRenderer(view) {
    let pending = "";
    let frame = 0;
    const render = (text) => {
      pending = text;
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          setText(view, pending);
        });
      }
    };
    render.cancel = () => {
      if (frame) cancelAnimationFrame(frame);
      frame = 0;
    };
    return render;
  }

  // Stop: what arrived stays on screen, marked, until the next change redraws the tree; the
  // server dropped the turn, and the page says so.
  function markStopped(view, text, what) {
    view.el.classList.remove("pending");
    view.el.classList.add("stopped");
    setText(view, text);
    const note = document.createElement("div");
    note.className = "stopped-note";
    note.textContent = `Stopped. The server kept the conversation as it was before ${what}; this partial answer is only on this page.`;
    const stick = nearBottom();
    view.el.append(note);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  // --- the tree (POST /chatgpt/tree, docs/tree.md) -------------------------------------------------

  function indexTree(json) {
    const byId = new Map(json.messages.map((m) => [m.id, m]));
    return { leaf: json.leaf, roots: json.roots, byId };
  }

  function pathOf(tree) {
    const path = [];
    for (let node = tree.leaf && tree.byId.get(tree.leaf); node; node = node.parent_id && tree.byId.get(node.parent_id)) {
      path.push(node);
    }
    return path.reverse();
  }

  function siblingsOf(node) {
    if (!state.tree) return [node.id];
    return node.parent_id ? state.tree.byId.get(node.parent_id).children : state.tree.roots;
  }

  function showTree(json) {
    state.tree = indexTree(json);
    clearTranscript();
    for (const node of pathOf(state.tree)) addMessage(node.role === "user" ? "human" : "ai", node.content, node);
  }

  async function loadTree(signal) {
    const resp = await api("chatgpt/tree", { signal });
    showTree(await resp.json());
  }

  // --- status line and buttons --------------------------------------------------------------------

  function notice(text, { error = false, link = null } = {}) {
    const box = $("notice");
    box.classList.toggle("error", error);
    $("notice-text").textContent = text;
    const a = $("notice-link");
    a.hidden = !link;
    if (link) {
      a.href = link;
      a.textContent = link;
    }
    box.hidden = false;
  }

  function showError(err) {
    if (err.name === "AbortError") return;
    let text = err.message || String(err);
    if (err.status === 401 || err.status === 505) {
      text += " (check the auth mode and secret in Settings)";
      showSettings(true);
      if (settings.mode !== "none") $("secret").focus();
    }
    if (err.status === 404 && state.conv && /conversation/i.test(text)) {
      window.aliceHistory.remove(state.conv.id);
      forgetConversation();
      clearTranscript();
      text += " (it expired: the next message starts a new one)";
    }
    notice(text, { error: true });
  }

  function refreshButtons() {
    const last = state.messages[state.messages.length - 1];
    const ai = Boolean(last && last.role === "ai" && last.node);
    const idle = !state.busy;
    $("send").hidden = state.busy;
    $("stop").hidden = !state.busy;
    $("regenerate").disabled = !(idle && state.conv && ai);
    $("rollback").disabled = !(idle && state.conv && state.messages.length >= 2);
    $("context").disabled = !(idle && state.conv);
    $("share").disabled = !(idle && state.conv && state.messages.length > 0);
    $("new-chat").disabled = state.busy;
    $("kind").disabled = state.busy || Boolean(state.conv);
    $("kind").value = state.conv ? state.conv.kind : settings.kind;
    $("conv-label").textContent = state.conv ? `${state.conv.kind} · ${state.conv.id}` : "";
    for (const b of log.querySelectorAll(".msg-tools button")) b.disabled = state.busy || b.dataset.keep === "off";
    renderHistory();
  }

  async function busy(work) {
    if (state.busy) return;
    state.busy = true;
    state.abort = new AbortController();
    refreshButtons();
    try {
      await work(state.abort.signal);
    } catch (err) {
      showError(err);
    } finally {
      state.busy = false;
      state.abort = null;
      refreshButtons();
    }
  }

  // --- the side list: conversations this browser made ------------------------------------------

  function renderHistory() {
    const list = $("history");
    const entries = window.aliceHistory.list();
    $("history-empty").hidden = entries.length > 0;
    list.replaceChildren(
      ...entries.map((entry) => {
        const li = document.createElement("li");
        li.className = state.conv && state.conv.id === entry.id ? "current" : "";
        const open = button("", "open", () => openConversation(entry));
        const q = document.createElement("span");
        q.className = "q";
        q.textContent = entry.question || "(no question yet)";
        const meta = document.createElement("span");
        meta.className = "meta";
        const when = new Date(entry.time).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
        meta.textContent = `${entry.kind} · ${when}${entry.forkOf ? " · fork" : ""}`;
        open.append(q, meta);
        open.disabled = state.busy;
        if (li.className) open.setAttribute("aria-current", "true");
        const drop = button("✕", "drop link", () => dropConversation(entry), "Delete this conversation");
        drop.setAttribute("aria-label", "Delete this conversation");
        drop.disabled = state.busy;
        li.append(open, drop);
        return li;
      }),
    );
  }

  function showSidebar(open) {
    document.body.classList.toggle("sidebar-open", open);
    $("toggle-sidebar").setAttribute("aria-expanded", String(open));
  }

  async function openConversation(entry) {
    if (state.busy) return;
    $("notice").hidden = true;
    rememberConversation({ id: entry.id, kind: entry.kind });
    clearTranscript();
    showSidebar(false);
    await busy(loadTree);
  }

  function dropConversation(entry) {
    window.aliceHistory.remove(entry.id);
    if (state.conv && state.conv.id === entry.id) {
      forgetConversation();
      clearTranscript();
    }
    refreshButtons();
    // Frees the server's memory at once; the conversation would expire anyway.
    api("chatgpt/finish", { headers: { conversation: entry.id }, withConversation: false }).catch(() => {});
  }

  // --- conversation actions -----------------------------------------------------------------------

  function rememberConversation(conv) {
    state.conv = conv;
    state.tree = null;
    if (conv) sessionStorage.setItem(CONVERSATION_KEY, JSON.stringify(conv));
    else sessionStorage.removeItem(CONVERSATION_KEY);
  }

  function forgetConversation() {
    rememberConversation(null);
  }

  async function ensureConversation(signal, question) {
    if (state.conv) return;
    const kind = $("kind").value;
    const resp = await api(CREATE[kind].path, { body: CREATE[kind].body(settings.prompt), withConversation: false, signal });
    const id = (await resp.text()).trim();
    rememberConversation({ id, kind });
    window.aliceHistory.add({ id, kind, question });
    renderHistory();
  }

  // The last answer's X-Context-* headers (docs/context.md): the gauge of its request against the
  // model's window, and the oldest turns it left out, dimmed (the conversation still has them).
  function showGauge(resp) {
    const gauge = $("context-gauge");
    const size = Number(resp.headers.get("X-Context-Window"));
    const tokens = Number(resp.headers.get("X-Context-Tokens"));
    const dropped = Number(resp.headers.get("X-Context-Dropped")) || 0;
    gauge.hidden = !size;
    if (!size) return;
    gauge.max = size;
    gauge.value = tokens;
    gauge.title = `${tokens} of ${size} tokens sent` + (dropped ? `; ${dropped} oldest turn(s) left out` : "");
    let questions = 0;
    state.messages.forEach((m) => {
      if (m.role === "human") questions += 1;
      m.el.classList.toggle("left-out", questions <= dropped);
    });
  }

  // Streams the answer of ``path`` into a pending message, then shows the tree as the server has
  // it. A failure leaves the conversation as it was, and so does the page; Stop keeps the partial
  // answer on screen (markStopped).
  async function answerInto(view, signal, request, { onFail, what }) {
    view.el.classList.add("pending");
    setText(view, "");
    const render = frameRenderer(view);
    let text = "";
    const onText = (t) => {
      text = t;
      render(t);
    };
    try {
      const resp = await request();
      await readAnswer(resp, onText);
      render.cancel();
      await loadTree(signal);
      showGauge(resp);
    } catch (err) {
      render.cancel();
      if (err.name === "AbortError") {
        markStopped(view, text, what);
        return;
      }
      await onFail();
      throw err;
    }
  }

  async function send(question) {
    await busy(async (signal) => {
      $("notice").hidden = true;
      const asked = addMessage("human", question);
      const answer = addMessage("ai", "");
      const putBack = () => {
        if (!$("input").value) $("input").value = question;
      };
      await answerInto(answer, signal, async () => {
        await ensureConversation(signal, question);
        return api("chatgpt/chat", { body: question, signal });
      }, {
        what: "this question",
        onFail: async () => {
          removeMessage(answer);
          removeMessage(asked);
          putBack();
        },
      });
      if (answer.el.classList.contains("stopped")) putBack();
    });
  }

  async function regenerate() {
    const answer = state.messages[state.messages.length - 1];
    const previous = answer.text;
    await busy(async (signal) => {
      answer.el.querySelector(".msg-tools")?.remove();
      await answerInto(answer, signal, () => api("chatgpt/regenerate", { signal }), {
        what: "the regeneration (the earlier answer is still there)",
        onFail: async () => {
          answer.el.classList.remove("pending");
          setText(answer, previous);
          if (answer.node) answer.el.append(messageTools(answer));
        },
      });
    });
  }

  function startEdit(view) {
    if (state.busy || view.el.classList.contains("editing")) return;
    view.el.classList.add("editing");
    const box = document.createElement("form");
    box.className = "edit-box";
    const area = document.createElement("textarea");
    area.value = view.text;
    area.rows = Math.min(8, view.text.split("\n").length + 1);
    area.setAttribute("aria-label", "Edited question");
    const save = button("Send edit", "primary", () => box.requestSubmit());
    save.type = "submit";
    const cancel = button("Cancel", "", () => {
      box.remove();
      view.el.classList.remove("editing");
    });
    box.append(area, save, cancel);
    box.addEventListener("submit", (event) => {
      event.preventDefault();
      if (area.value.trim()) edit(view, area.value);
    });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        box.requestSubmit();
      } else if (event.key === "Escape") {
        cancel.click();
      }
    });
    view.body.after(box);
    area.focus();
  }

  // The edited question becomes a sibling of the old one, with its own answer (a new branch).
  async function edit(view, text) {
    await busy(async (signal) => {
      $("notice").hidden = true;
      const at = state.messages.indexOf(view);
      state.messages.slice(at).forEach(removeMessage);
      addMessage("human", text);
      const answer = addMessage("ai", "");
      await answerInto(answer, signal, () => api("chatgpt/edit", { body: text, headers: { message: view.node.id }, signal }), {
        what: "this edit (the earlier question is still there)",
        onFail: () => loadTree(undefined).catch(() => {}),
      });
    });
  }

  async function checkout(id) {
    await busy(async (signal) => {
      const resp = await api("chatgpt/checkout", { headers: { message: id }, signal });
      showTree(await resp.json());
    });
  }

  // A new conversation (same kind, prompt and settings) holding the path up to ``id``.
  async function fork(id) {
    await busy(async (signal) => {
      const original = state.conv;
      const first = state.messages.find((m) => m.role === "human");
      const resp = await api("chatgpt/fork", { headers: { message: id }, signal });
      const forked = { id: (await resp.text()).trim(), kind: original.kind };
      rememberConversation(forked);
      window.aliceHistory.add({ ...forked, question: first ? first.text : "", forkOf: original.id });
      await loadTree(signal);
      notice(`Forked into a new conversation; the original (${original.id}) is in the list of conversations.`);
    });
  }

  async function rollback() {
    await busy(async (signal) => {
      await api("chatgpt/rollback", { signal });
      await loadTree(signal);
      notice("Rolled back the last question and its answer.");
    });
  }

  async function showContext() {
    await busy(async (signal) => {
      const resp = await api("chatgpt/context", { signal });
      $("context-text").textContent = await resp.text();
      $("context-dialog").showModal();
    });
  }

  async function share() {
    await busy(async (signal) => {
      const resp = await api("chatgpt/store", { headers: { Accept: "application/json" }, signal });
      const stored = await resp.json();
      const url = new URL(`chatgpt/share/${encodeURIComponent(stored.id)}`, document.baseURI).href;
      notice("Saved. Anyone with this link can read the conversation:", { link: url });
    });
  }

  // The conversation left stays on the server (and in the side list) until it expires.
  function newChat() {
    forgetConversation();
    clearTranscript();
    $("notice").hidden = true;
    refreshButtons();
    $("input").focus();
  }

  // After a reload, the conversation of this tab comes back from the server.
  async function restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(CONVERSATION_KEY) || "null");
    } catch (_) {
      saved = null;
    }
    if (!saved || !saved.id) return;
    rememberConversation(saved);
    await busy(async (signal) => {
      try {
        await loadTree(signal);
      } catch (err) {
        forgetConversation();
        if (err.status !== 404) throw err;
      }
    });
  }

  // --- wiring -------------------------------------------------------------------------------------

  function bindSettings() {
    $("auth-mode").value = settings.mode;
    $("secret").value = settings.secret;
    $("remember").checked = settings.remember;
    $("prompt").value = settings.prompt;
    $("kind").value = settings.kind;
    const update = () => {
      settings.mode = $("auth-mode").value;
      settings.secret = $("secret").value;
      settings.remember = $("remember").checked;
      settings.prompt = $("prompt").value;
      settings.kind = $("kind").value;
      $("secret").disabled = settings.mode === "none";
      saveSettings(settings);
    };
    ["auth-mode", "secret", "remember", "prompt", "kind"].forEach((id) => $(id).addEventListener("input", update));
    $("auth-mode").addEventListener("change", update);
    $("secret").disabled = settings.mode === "none";
    $("settings").addEventListener("submit", (event) => event.preventDefault());
    $("toggle-settings").addEventListener("click", () => showSettings($("settings").hidden));
    $("toggle-sidebar").addEventListener("click", () => showSidebar(!document.body.classList.contains("sidebar-open")));
    $("close-sidebar").addEventListener("click", () => showSidebar(false));
    $("sidebar-backdrop").addEventListener("click", () => showSidebar(false));
  }

  function showSettings(open) {
    $("settings").hidden = !open;
    $("toggle-settings").setAttribute("aria-expanded", String(open));
  }

  function bindComposer() {
    const input = $("input");
    const grow = () => {
      input.style.height = "auto";
      input.style.height = `${input.scrollHeight}px`;
    };
    input.addEventListener("input", grow);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const question = input.value;
      if (!question.trim() || state.busy) return;
      input.value = "";
      grow();
      send(question);
    });
    $("stop").addEventListener("click", () => state.abort && state.abort.abort());
  }

  function main() {
    bindSettings();
    bindComposer();
    $("new-chat").addEventListener("click", newChat);
    $("regenerate").addEventListener("click", regenerate);
    $("rollback").addEventListener("click", rollback);
    $("context").addEventListener("click", showContext);
    $("share").addEventListener("click", share);
    $("notice-close").addEventListener("click", () => {
      $("notice").hidden = true;
    });
    // Another tab of this page may add to the side list.
    window.addEventListener("storage", (event) => event.key === null || event.key.startsWith("alice-playground-history") ? renderHistory() : null);
    refreshButtons();
    restore();
  }

  main();
})();
