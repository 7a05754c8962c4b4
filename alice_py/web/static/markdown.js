// The playground's Markdown: model text → marked (GFM) → DOMPurify → the page. Nothing else puts
// model text into the page as HTML. Loaded after vendor/marked.umd.js and vendor/purify.min.js;
// exposes window.aliceMarkdown.render(element, text).
"use strict";

(() => {
  const parser = new window.marked.Marked({
    gfm: true,
    breaks: true, // a chat answer's single line breaks are meant as breaks
    renderer: {
      // The page's CSP loads images from this site only, so another site's image would show broken:
      // it becomes a link to open instead (DOMPurify still checks the address).
      image({ href, text }) {
        const label = text || href;
        return `<a href="${escapeAttr(href)}">${escapeText(`[image: ${label}]`)}</a>`;
      },
    },
  });

  function escapeText(text) {
    return String(text).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
  }

  function escapeAttr(text) {
    return escapeText(text).replace(/"/g, "&quot;");
  }

  const purifier = window.DOMPurify;
  const SANITIZE = {
    USE_PROFILES: { html: true },
    // No forms or their fields (a model's fake login box), no images (see above), no inline
    // style (the CSP refuses it anyway), no ids or names that could shadow the page's own.
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "img", "svg", "math"],
    FORBID_ATTR: ["style", "id", "name"],
  };

  // Links open in a new tab and cannot reach back to this page (window.opener).
  purifier.addHook("afterSanitizeAttributes", (node) => {
    if (node.tagName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener");
    }
  });

  // After sanitizing: code blocks named by their language (the CSS shows it), wide tables
  // scroll inside their own box instead of widening the page.
  function dress(root) {
    for (const code of root.querySelectorAll("pre > code[class*='language-']")) {
      const lang = /language-([\w+#.-]{1,30})/.exec(code.className);
      if (lang) code.parentElement.dataset.lang = lang[1];
    }
    for (const table of root.querySelectorAll("table")) {
      const box = document.createElement("div");
      box.className = "table-scroll";
      table.replaceWith(box);
      box.append(table);
    }
  }

  function render(el, text) {
    const html = parser.parse(String(text), { async: false });
    const fragment = purifier.sanitize(html, { ...SANITIZE, RETURN_DOM_FRAGMENT: true });
    dress(fragment);
    el.classList.add("md");
    el.replaceChildren(fragment);
  }

  window.aliceMarkdown = { render };
})();
