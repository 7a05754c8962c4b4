// The alice-py playground: a small frontend of the Alice API (/chatgpt/*), no build step.
// Every text from the user or the model goes into the page through textContent, never innerHTML.
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

  const state = { conv: null, messages: [], busy: false, abort: null };

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

  // --- Markdown-ish rendering: ``` fences as <pre><code>, `inline code`, line breaks kept ---------

  const FENCE = /^ {0,3}(`{3,})[ \t]*([^`]*)$/;

  function blocks(text) {
    const out = [];
    let lines = [];
    let fence = null;
    let lang = "";
    for (const line of text.replace(/\r\n/g, "\n").split("\n")) {
      const m = FENCE.exec(line);
      if (fence === null && m) {
        out.push({ code: false, body: lines.join("\n") });
        [lines, fence, lang] = [[], m[1], m[2].trim()];
      } else if (fence !== null && m && m[1].length >= fence.length && !m[2].trim()) {
        out.push({ code: true, lang, body: lines.join("\n") });
        [lines, fence] = [[], null];
      } else {
        lines.push(line);
      }
    }
    out.push({ code: fence !== null, lang, body: lines.join("\n") });
    return out;
  }

  function renderRich(el, text) {
    const frag = document.createDocumentFragment();
    for (const block of blocks(text)) {
      if (block.code) {
        const pre = document.createElement("pre");
        const lang = block.lang.split(/\s+/)[0];
        if (/^[\w+#.-]{1,30}$/.test(lang)) pre.dataset.lang = lang;
        const code = document.createElement("code");
        code.textContent = block.body;
        pre.append(code);
        frag.append(pre);
      } else if (block.body.trim()) {
        const p = document.createElement("p");
        block.body.replace(/^\n+|\n+$/g, "").split(/`([^`\n]+)`/).forEach((part, i) => {
          if (i % 2) {
            const code = document.createElement("code");
            code.textContent = part;
            p.append(code);
          } else if (part) {
            p.append(document.createTextNode(part));
          }
        });
        frag.append(p);
      }
    }
    el.replaceChildren(frag);
  }

  // --- the transcript -----------------------------------------------------------------------------

  const log = $("log");

  function nearBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function addMessage(role, text) {
    const el = document.createElement("article");
    el.className = `msg ${role}`;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = role === "human" ? "You" : "AI";
    const body = document.createElement("div");
    body.className = "rich";
    el.append(who, body);
    const message = { role, text, el, body };
    state.messages.push(message);
    $("empty").hidden = true;
    log.append(el);
    setText(message, text);
    log.scrollTop = log.scrollHeight;
    return message;
  }

  function setText(message, text) {
    const stick = nearBottom();
    message.text = text;
    renderRich(message.body, text);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function removeMessage(message) {
    message.el.remove();
    state.messages = state.messages.filter((m) => m !== message);
    $("empty").hidden = state.messages.length > 0;
  }

  function clearTranscript() {
    state.messages.forEach((m) => m.el.remove());
    state.messages = [];
    $("empty").hidden = false;
  }

  // Streaming re-renders at most once per frame, however fast the pieces arrive; cancel() drops
  // a frame still due, so that it cannot overwrite the final (or restored) text.
  function frameRenderer(message) {
    let pending = "";
    let frame = 0;
    const render = (text) => {
      pending = text;
      if (!frame) {
        frame = requestAnimationFrame(() => {
          frame = 0;
          setText(message, pending);
        });
      }
    };
    render.cancel = () => {
      if (frame) cancelAnimationFrame(frame);
      frame = 0;
    };
    return render;
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
    if (err.status === 404 && state.conv && /conversation/.test(text)) {
      forgetConversation();
      text += " (it expired: the next message starts a new one)";
    }
    notice(text, { error: true });
  }

  function refreshButtons() {
    const ai = state.messages.length > 0 && state.messages[state.messages.length - 1].role === "ai";
    const idle = !state.busy;
    $("send").hidden = state.busy;
    $("stop").hidden = !state.busy;
    $("regenerate").disabled = !(idle && state.conv && ai);
    $("rollback").disabled = !(idle && state.conv && state.messages.length >= 2);
    $("context").disabled = !(idle && state.conv);
    $("share").disabled = !(idle && state.conv && state.messages.length > 0);
    $("new-chat").disabled = state.busy;
    $("kind").disabled = state.busy || Boolean(state.conv);
    $("conv-label").textContent = state.conv ? `${state.conv.kind} · ${state.conv.id}` : "";
  }

  async function busy(work) {
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

  // --- conversation actions -----------------------------------------------------------------------

  function rememberConversation(conv) {
    state.conv = conv;
    if (conv) sessionStorage.setItem(CONVERSATION_KEY, JSON.stringify(conv));
    else sessionStorage.removeItem(CONVERSATION_KEY);
  }

  function forgetConversation() {
    rememberConversation(null);
  }

  async function ensureConversation(signal) {
    if (state.conv) return;
    const kind = $("kind").value;
    const resp = await api(CREATE[kind].path, { body: CREATE[kind].body(settings.prompt), withConversation: false, signal });
    rememberConversation({ id: (await resp.text()).trim(), kind });
  }

  // A failed or interrupted turn leaves the conversation as it was: so does the page.
  async function send(question) {
    await busy(async (signal) => {
      const asked = addMessage("human", question);
      const answer = addMessage("ai", "");
      answer.el.classList.add("pending");
      const render = frameRenderer(answer);
      try {
        await ensureConversation(signal);
        const resp = await api("chatgpt/chat", { body: question, signal });
        const text = await readAnswer(resp, render);
        render.cancel();
        setText(answer, text);
        answer.el.classList.remove("pending");
      } catch (err) {
        render.cancel();
        removeMessage(answer);
        removeMessage(asked);
        if (!$("input").value) $("input").value = question;
        throw err;
      }
    });
  }

  async function regenerate() {
    const answer = state.messages[state.messages.length - 1];
    const previous = answer.text;
    await busy(async (signal) => {
      answer.el.classList.add("pending");
      setText(answer, "");
      const render = frameRenderer(answer);
      try {
        const resp = await api("chatgpt/regenerate", { signal });
        const text = await readAnswer(resp, render);
        render.cancel();
        setText(answer, text);
      } catch (err) {
        render.cancel();
        setText(answer, previous);
        throw err;
      } finally {
        answer.el.classList.remove("pending");
      }
    });
  }

  async function rollback() {
    await busy(async (signal) => {
      await api("chatgpt/rollback", { signal });
      state.messages.slice(-2).forEach(removeMessage);
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

  async function newChat() {
    const old = state.conv;
    forgetConversation();
    clearTranscript();
    $("notice").hidden = true;
    refreshButtons();
    if (old) {
      // Frees the server's memory at once; the conversation would expire anyway.
      const headers = { conversation: old.id };
      api("chatgpt/finish", { headers, withConversation: false }).catch(() => {});
    }
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
    state.conv = saved;
    $("kind").value = saved.kind;
    await busy(async (signal) => {
      try {
        const resp = await api("chatgpt/contextArray", { signal });
        (await resp.json()).forEach((text, i) => addMessage(i % 2 ? "ai" : "human", text));
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
    refreshButtons();
    restore();
  }

  main();
})();
