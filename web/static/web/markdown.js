/*
 * A small, escaping Markdown renderer for model text.
 *
 * Safety comes from the order of work: every piece of source text is HTML-escaped FIRST, and
 * only then are a few fixed tags put around it. Nothing from the source is ever emitted
 * unescaped, so model text cannot create elements or attributes of its own. Links are made
 * only for http(s) URLs (no javascript:, data:, ...), and their URL is escaped too.
 *
 * Supported: ``` code fences (also unterminated, while a reply streams in), `inline code`,
 * **bold** / __bold__, *italics* / _italics_, [links](https://...), # headings, - / 1. lists,
 * paragraphs and line breaks. Everything else shows as the plain text it is.
 */
(function (global) {
  "use strict";

  const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);
  }

  // Placeholders protect finished HTML (code spans, link tags) from later inline rules. They
  // are built from NUL, which is removed from the source first, so the source cannot fake one.
  const HOLE = "\u0000";

  function renderInline(source) {
    const held = [];
    const hold = (html) => HOLE + (held.push(html) - 1) + HOLE;
    let text = escapeHtml(source);
    text = text.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) =>
      hold("<code>" + code.trim() + "</code>"),
    );
    // The URL was escaped with the rest (& -> &amp;, " -> &quot;), which is exactly what an
    // attribute value needs; it is held so that emphasis rules cannot touch it.
    text = text.replace(
      /\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g,
      (_, label, url) =>
        hold('<a href="' + url + '" target="_blank" rel="noopener noreferrer nofollow">') +
        label +
        hold("</a>"),
    );
    text = text.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, "<strong>$1</strong>");
    text = text.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, "$1<strong>$2</strong>");
    text = text.replace(/(^|[^*\w])\*(?=[^\s*])([^*\n]*?[^\s*])\*(?!\*)/g, "$1<em>$2</em>");
    text = text.replace(/(^|[^\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?!\w)/g, "$1<em>$2</em>");
    return text.replace(new RegExp(HOLE + "(\\d+)" + HOLE, "g"), (_, i) => held[Number(i)]);
  }

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^\n]*$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const LIST_ITEM = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/;

  function render(source) {
    const lines = String(source == null ? "" : source)
      .replace(/\u0000/g, "")
      .replace(/\r\n?/g, "\n")
      .split("\n");
    const out = [];
    let paragraph = [];
    let list = null; // {tag: "ul"|"ol", items: [...]}

    const flushParagraph = () => {
      if (paragraph.length) out.push("<p>" + paragraph.map(renderInline).join("<br>") + "</p>");
      paragraph = [];
    };
    const flushList = () => {
      if (list) {
        const items = list.items.map((item) => "<li>" + renderInline(item) + "</li>").join("");
        out.push("<" + list.tag + ">" + items + "</" + list.tag + ">");
      }
      list = null;
    };

    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const fence = FENCE.exec(line);
      if (fence) {
        flushParagraph();
        flushList();
        const marker = fence[1];
        const code = [];
        i++;
        while (i < lines.length && !new RegExp("^\\s{0,3}" + marker[0] + "{" + marker.length + ",}\\s*$").test(lines[i])) {
          code.push(lines[i]);
          i++;
        }
        const lang = fence[2] ? ' data-lang="' + escapeHtml(fence[2]) + '"' : "";
        out.push("<pre" + lang + "><code>" + escapeHtml(code.join("\n")) + "</code></pre>");
        continue;
      }
      if (!line.trim()) {
        flushParagraph();
        flushList();
        continue;
      }
      const heading = HEADING.exec(line);
      if (heading) {
        flushParagraph();
        flushList();
        // Model headings are shown a notch smaller than the page's own (h1 is the page title).
        const level = Math.min(heading[1].length + 2, 6);
        out.push("<h" + level + ">" + renderInline(heading[2]) + "</h" + level + ">");
        continue;
      }
      const item = LIST_ITEM.exec(line);
      if (item) {
        flushParagraph();
        const tag = /\d/.test(item[1]) ? "ol" : "ul";
        if (list && list.tag !== tag) flushList();
        if (!list) list = { tag, items: [] };
        list.items.push(item[2]);
        continue;
      }
      if (list && /^\s+\S/.test(line)) {
        list.items[list.items.length - 1] += " " + line.trim();
        continue;
      }
      flushList();
      paragraph.push(line);
    }
    flushParagraph();
    flushList();
    return out.join("");
  }

  global.ChatMarkdown = { render, renderInline, escapeHtml };
})(window);
