// The conversations this browser's playground made, kept in localStorage (id, kind, first
// question, time, newest first) for the side list; the server keeps the conversations themselves.
// Exposes window.aliceHistory.
"use strict";

(() => {
  const KEY = "alice-playground-history";
  const LIMIT = 50; // older entries fall off: the server forgets idle conversations anyway

  function list() {
    try {
      const saved = JSON.parse(localStorage.getItem(KEY) || "[]");
      return Array.isArray(saved) ? saved.filter((e) => e && typeof e.id === "string") : [];
    } catch (_) {
      return [];
    }
  }

  function save(entries) {
    localStorage.setItem(KEY, JSON.stringify(entries.slice(0, LIMIT)));
  }

  // A new conversation goes on top; one already listed keeps its place and first question.
  function add({ id, kind, question, forkOf = null }) {
    const entries = list();
    if (entries.some((e) => e.id === id)) return;
    entries.unshift({ id, kind, question: String(question).slice(0, 200), time: Date.now(), forkOf });
    save(entries);
  }

  function remove(id) {
    save(list().filter((e) => e.id !== id));
  }

  window.aliceHistory = { list, add, remove };
})();
