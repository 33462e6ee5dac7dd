/*
 * The chat page: conversations over the REST API (session cookie + X-CSRFToken), replies over
 * the WebSocket ws/chat/ (session cookie). Plain DOM; model text goes through ChatMarkdown
 * (escaping), every other string through textContent, so nothing here parses untrusted HTML.
 */
(function () {
  "use strict";

  const md = window.ChatMarkdown;
  const API = document.body.dataset.api;
  const WS_PATH = document.body.dataset.ws;
  const LOGIN = document.body.dataset.login;
  const USER = document.body.dataset.user;
  const $ = (id) => document.getElementById(id);
  const ui = {
    list: $("conversation-list"), messages: $("messages"), empty: $("empty-state"),
    title: $("conv-title"), conn: $("conn-status"), toast: $("toast"), composer: $("composer"),
    input: $("input"), send: $("send"), stop: $("stop"), newChat: $("new-chat"),
  };

  const state = {
    conversations: [],
    currentId: null,
    turns: new Map(), // conversation id -> the turn streaming in it
    socket: null,
    outbox: [], // frames written while the socket was (re)connecting
    reconnectDelay: 500,
    renaming: false,
    edits: 0, // bumped by every change to the list, so that a slower earlier read is dropped
  };

  // Messages a person can act on, by error code; the server's own message is the fallback
  // (the model layer's messages are already written for people).
  const ERROR_TEXT = {
    rate_limited: "Your organisation's rate limit is reached. Please wait, then retry.",
    concurrency_limited: "Too many replies are being written at once. Wait a moment, then retry.",
    budget_exceeded: "Your organisation has used up its token budget for now.",
    model_overloaded: "The model is overloaded right now. Please retry in a moment.",
    model_rate_limited: "The model is receiving too many requests. Please retry in a moment.",
    turn_in_progress: "A reply is still being written in this conversation.",
    conversation_archived: "This conversation is archived; start a new one.",
    database_unavailable: "The service is having trouble right now. Please retry in a moment.",
    interrupted: "This reply was interrupted before it finished.",
  };

  // ---- HTTP -------------------------------------------------------------------------------

  // The cookie, else the page's own form token (should CSRF_COOKIE_HTTPONLY ever be turned on).
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    return document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    const url = /^https?:/.test(path) ? path : API + path;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const response = await fetch(url, { method, headers, credentials: "same-origin", body: payload });
    const data = await response.json().catch(() => null);
    if ([401, 403].includes(response.status) && data?.error?.code === "not_authenticated") {
      window.location.assign(LOGIN + "?next=/"); // the session expired
    }
    if (!response.ok) {
      const { code, message } = data?.error || {};
      throw Object.assign(new Error(message || response.statusText), { code, status: response.status });
    }
    return data;
  }

  /** Every page of a paginated list (DRF's {results, next}), up to a sane cap. */
  async function apiList(path, maxPages = 20) {
    let data = await api("GET", path);
    if (Array.isArray(data)) return data;
    const items = [...(data.results || [])];
    for (let page = 1; data.next && page < maxPages; page++) {
      data = await api("GET", data.next);
      items.push(...(data.results || []));
    }
    return items;
  }

  // ---- small view helpers -----------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  let toastTimer = null;
  function toast(message) {
    ui.toast.textContent = message;
    ui.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (ui.toast.hidden = true), 5000);
  }

  const errorText = (code, fallback) => ERROR_TEXT[code] || fallback || "Something went wrong.";

  // Streaming text scrolls the view only for a reader already at the bottom.
  const nearBottom = (m = ui.messages) => m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  const scrollToBottom = () => (ui.messages.scrollTop = ui.messages.scrollHeight);

  function formatCost(value) {
    const usd = Number(value);
    if (value === null || value === undefined || value === "" || !Number.isFinite(usd)) return null;
    if (usd === 0) return "$0";
    return usd < 0.0001 ? "<$0.0001" : "$" + usd.toFixed(4);
  }

  const number = (n) => Number(n || 0).toLocaleString("en");

  // ---- conversations ----------------------------------------------------------------------

  async function loadConversations() {
    const edits = state.edits;
    try {
      const all = await apiList("conversations", 4);
      if (edits !== state.edits) return; // a rename/archive/create overtook this read: stale
      // The sidebar is the user's own chats (the API may list the whole organisation's).
      state.conversations = all.filter((c) => !c.archived && (!c.user || c.user === USER));
      if (!state.renaming) renderConversations(); // a rename in progress renders when it ends
    } catch (error) {
      toast("Could not load conversations: " + error.message);
    }
  }

  const conversationTitle = (c) => c?.title || "New chat";

  function button(className, text, title, onClick) {
    const node = el("button", className, text);
    node.type = "button";
    if (title) node.title = title;
    node.addEventListener("click", onClick);
    return node;
  }

  function renderConversations() {
    ui.list.replaceChildren();
    if (!state.conversations.length) ui.list.append(el("p", "conv-empty", "No conversations yet."));
    for (const c of state.conversations) {
      const item = el("div", "conv-item" + (c.id === state.currentId ? " active" : ""));
      item.dataset.id = c.id;
      const actions = el("span", "conv-actions");
      actions.append(
        button("icon icon-rename", undefined, "Rename", () => startRename(item, c)),
        button("icon icon-archive", undefined, "Archive", () => archiveConversation(c)),
      );
      item.append(button("conv-open", conversationTitle(c), conversationTitle(c), () => openConversation(c.id)), actions);
      ui.list.append(item);
    }
    const current = state.conversations.find((c) => c.id === state.currentId);
    ui.title.textContent = current ? conversationTitle(current) : "New chat";
  }

  function startRename(item, conversation) {
    const input = el("input", "conv-rename");
    input.value = conversation.title || "";
    input.maxLength = 200;
    input.setAttribute("aria-label", "Conversation title");
    item.replaceChildren(input);
    input.focus();
    input.select();
    state.renaming = true;
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      state.renaming = false;
      const title = input.value.trim();
      if (save && title !== (conversation.title || "")) {
        try {
          state.edits++;
          const updated = await api("PATCH", "conversations/" + conversation.id, { title });
          conversation.title = updated?.title ?? title;
        } catch (error) {
          toast("Could not rename: " + error.message);
        }
      }
      renderConversations();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      else if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
  }

  async function archiveConversation(conversation) {
    try {
      state.edits++;
      await api("PATCH", "conversations/" + conversation.id, { archived: true });
    } catch (error) {
      toast("Could not archive: " + error.message);
      return;
    }
    state.conversations = state.conversations.filter((c) => c.id !== conversation.id);
    if (state.currentId === conversation.id) showConversation(null);
    renderConversations();
  }

  async function createConversation() {
    state.edits++;
    const created = await api("POST", "conversations", {});
    state.conversations.unshift(created);
    return created;
  }

  function showConversation(id) {
    state.currentId = id;
    ui.messages.replaceChildren(ui.empty);
    ui.empty.hidden = false;
    renderConversations();
    updateComposer();
  }

  async function openConversation(id) {
    showConversation(id);
    ui.empty.hidden = true;
    let messages;
    try {
      messages = await apiList("conversations/" + id + "/messages");
    } catch (error) {
      toast("Could not load messages: " + error.message);
      return;
    }
    if (state.currentId !== id) return; // another conversation was opened meanwhile
    // A reply still streaming here is shown by its live element, in the stored row's place.
    const turn = state.turns.get(id);
    let placed = false;
    for (const message of messages) {
      placed ||= Boolean(turn && message.id === turn.messageId);
      ui.messages.append(turn && message.id === turn.messageId ? turn.el : messageView(message));
    }
    if (turn && !placed) ui.messages.append(turn.userEl, turn.el);
    ui.empty.hidden = ui.messages.children.length > 1;
    scrollToBottom();
    ui.input.focus();
  }

  // ---- messages ---------------------------------------------------------------------------

  function messageView(message) {
    if (message.role === "user") {
      const node = el("article", "msg msg-user");
      node.append(el("div", "msg-body", message.content));
      return node;
    }
    const node = el("article", "msg msg-assistant");
    node.dataset.id = message.id;
    const body = el("div", "msg-body md");
    body.innerHTML = md.render(message.content); // escaped by the renderer, see markdown.js
    node.append(body, el("footer", "msg-meta"));
    setStatus(node, message.status);
    if (message.status === "failed") addErrorBox(node, message.error_code, "This reply failed.");
    setMeta(node, { usage: message.usage, cost: message.cost_usd, latency_ms: message.latency_ms });
    return node;
  }

  function setStatus(node, status) {
    node.classList.toggle("is-streaming", status === "streaming" || status === "pending");
    node.classList.toggle("is-stopped", status === "stopped");
    node.classList.toggle("is-failed", status === "failed");
    node.querySelector(".msg-status")?.remove();
    if (status === "stopped") node.querySelector(".msg-meta").prepend(el("span", "msg-status", "Stopped"));
  }

  function setMeta(node, { usage, cost, latency_ms: latency }) {
    const meta = node.querySelector(".msg-meta");
    meta.querySelectorAll(".meta-item").forEach((n) => n.remove());
    const items = [];
    if (usage && (usage.input_tokens || usage.output_tokens)) {
      items.push(number(usage.input_tokens) + " in", number(usage.output_tokens) + " out");
      if (usage.cache_read_input_tokens) items.push(number(usage.cache_read_input_tokens) + " cache read");
      if (usage.cache_creation_input_tokens) items.push(number(usage.cache_creation_input_tokens) + " cache write");
    }
    const price = formatCost(cost);
    if (price) items.push(price);
    if (latency != null) items.push(latency < 1000 ? Math.round(latency) + " ms" : (latency / 1000).toFixed(1) + " s");
    for (const text of items) meta.append(el("span", "meta-item", text));
    meta.title = items.length ? "Tokens in and out, cost (USD) and time of this reply" : "";
  }

  function addErrorBox(node, code, message, retry, retryAfter) {
    node.querySelector(".msg-error")?.remove();
    const box = el("div", "msg-error");
    box.setAttribute("role", "alert");
    box.append(el("span", "msg-error-text", errorText(code, message)));
    if (retry) {
      const again = button("btn btn-small btn-retry", "Retry", "", retry);
      let wait = Math.ceil(Number(retryAfter) || 0); // the server's Retry-After, counted down
      const tick = () => {
        const left = wait >= 90 ? Math.floor(wait / 60) + " min " + (wait % 60) + " s" : wait + " s";
        again.textContent = wait > 0 ? "Retry in " + left : "Retry";
        again.disabled = wait > 0;
        if (wait-- > 0) setTimeout(tick, 1000);
      };
      tick();
      box.append(again);
    }
    node.append(box);
  }

  // ---- sending and streaming --------------------------------------------------------------

  async function sendMessage(content) {
    if (!content.trim()) return;
    if (!state.currentId) {
      try {
        const created = await createConversation();
        showConversation(created.id);
      } catch (error) {
        toast("Could not start a conversation: " + errorText(error.code, error.message));
        return;
      }
    }
    const id = state.currentId;
    if (state.turns.has(id)) return;
    ui.empty.hidden = true;
    const userEl = el("article", "msg msg-user");
    userEl.append(el("div", "msg-body", content));
    const assistant = messageView({ role: "assistant", content: "", status: "pending" });
    ui.messages.append(userEl, assistant);
    scrollToBottom();
    state.turns.set(id, { conversationId: id, content, el: assistant, userEl, text: "", seq: 0, messageId: null, frame: 0 });
    updateComposer();
    socketSend({ type: "chat.send", conversation_id: id, content });
  }

  function turnFor(event) {
    if (event.conversation_id) return state.turns.get(String(event.conversation_id));
    // An event naming no conversation (a refused frame) can only be about a lone turn.
    return state.turns.size === 1 ? state.turns.values().next().value : undefined;
  }

  function paint(turn) {
    if (turn.frame) return;
    turn.frame = requestAnimationFrame(() => {
      turn.frame = 0;
      const stick = nearBottom();
      turn.el.querySelector(".msg-body").innerHTML = md.render(turn.text);
      if (stick) scrollToBottom();
    });
  }

  function finishTurn(turn, status) {
    cancelAnimationFrame(turn.frame);
    turn.frame = 0;
    turn.el.querySelector(".msg-body").innerHTML = md.render(turn.text);
    if (turn.messageId) turn.el.dataset.id = turn.messageId;
    setStatus(turn.el, status);
    state.turns.delete(turn.conversationId);
    updateComposer();
  }

  const handlers = {
    "chat.start"(event) {
      const turn = turnFor(event);
      if (!turn) return;
      turn.messageId = event.message_id;
      setStatus(turn.el, "streaming");
    },
    "chat.delta"(event) {
      const turn = turnFor(event);
      if (!turn || (event.seq && event.seq <= turn.seq)) return;
      turn.seq = event.seq || turn.seq + 1;
      turn.text += event.text || "";
      setStatus(turn.el, "streaming");
      paint(turn);
    },
    "chat.done"(event) {
      const turn = turnFor(event);
      if (!turn) return;
      if (event.message_id) turn.messageId = event.message_id;
      finishTurn(turn, "complete");
      showFigures(turn, event);
      loadConversations(); // the server titles a conversation after its first message
    },
    "chat.stopped"(event) {
      const turn = turnFor(event);
      if (!turn) return;
      if (event.message_id) turn.messageId = event.message_id;
      finishTurn(turn, "stopped");
      showFigures(turn, event);
    },
    "chat.error"(event) {
      if (event.code === "no_turn_in_progress") {
        updateComposer(); // a stop that crossed the end of the reply: nothing to report
        return;
      }
      const turn = turnFor(event);
      if (!turn) {
        toast(errorText(event.code, event.message));
        return;
      }
      finishTurn(turn, "failed");
      const { content, el: node, userEl } = turn;
      // Retry sends the same text again, as a new turn; offered only when it can succeed.
      const retry = () => node.remove() || userEl.remove() || sendMessage(content);
      addErrorBox(node, event.code, event.message, event.retryable && retry, event.retry_after);
      scrollToBottom();
    },
  };

  /** Usage and time from the end event; the cost from it too when the server sends one,
   *  else from the stored message (the reply is stored before its end event is sent). */
  async function showFigures(turn, event) {
    const cost = event.cost ?? event.cost_usd;
    setMeta(turn.el, { ...event, cost });
    if (cost !== undefined || !turn.messageId) return;
    try {
      const messages = await apiList("conversations/" + turn.conversationId + "/messages");
      const stored = messages.find((m) => m.id === turn.messageId);
      if (stored) setMeta(turn.el, { usage: stored.usage, cost: stored.cost_usd, latency_ms: stored.latency_ms });
    } catch {
      // The figures are a courtesy here; the message list shows them on the next visit.
    }
  }

  // ---- WebSocket --------------------------------------------------------------------------

  function setConnection(name, text) {
    ui.conn.dataset.state = name;
    ui.conn.textContent = text;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + window.location.host + WS_PATH);
    state.socket = socket;
    setConnection("connecting", "Connecting…");
    socket.addEventListener("open", () => {
      state.reconnectDelay = 500;
      setConnection("open", "Connected");
      for (const frame of state.outbox.splice(0)) socket.send(frame);
    });
    socket.addEventListener("message", (message) => {
      const event = JSON.parse(message.data); // the server only sends JSON objects
      handlers[event.type]?.(event);
    });
    socket.addEventListener("close", (event) => {
      if (state.socket !== socket) return;
      state.socket = null;
      // A reply keeps being generated and stored server-side; reopening shows it. Frames still
      // queued belong to the turns failed here: they must not be sent on reconnection.
      state.outbox.length = 0;
      for (const turn of [...state.turns.values()]) {
        finishTurn(turn, "failed");
        addErrorBox(turn.el, "", "The connection was lost; the reply is still being saved. Reopen the conversation to see it.");
      }
      if (event.code === 4401 || event.code === 4403) {
        window.location.assign(LOGIN + "?next=/");
        return;
      }
      setConnection("closed", "Reconnecting…");
      setTimeout(connect, state.reconnectDelay);
      state.reconnectDelay = Math.min(state.reconnectDelay * 2, 10000);
    });
  }

  function socketSend(frame) {
    const data = JSON.stringify(frame);
    if (state.socket && state.socket.readyState === WebSocket.OPEN) state.socket.send(data);
    else state.outbox.push(data);
  }

  // ---- composer ---------------------------------------------------------------------------

  function updateComposer() {
    const busy = state.turns.has(state.currentId);
    ui.send.hidden = busy;
    ui.stop.hidden = !busy;
    ui.stop.disabled = false;
    ui.stop.textContent = "Stop";
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 220) + "px";
  }

  function submit() {
    if (state.turns.has(state.currentId)) return;
    const content = ui.input.value;
    if (!content.trim()) return;
    ui.input.value = "";
    autosize();
    sendMessage(content);
  }

  ui.composer.addEventListener("submit", (event) => event.preventDefault() || submit());
  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  ui.input.addEventListener("input", autosize);
  ui.stop.addEventListener("click", () => {
    const turn = state.turns.get(state.currentId);
    if (!turn) return;
    ui.stop.disabled = true;
    ui.stop.textContent = "Stopping…";
    socketSend({ type: "chat.stop", conversation_id: turn.conversationId });
  });
  ui.newChat.addEventListener("click", async () => {
    // An empty conversation already open is reused rather than piling up empty ones.
    const empty = state.currentId && !ui.messages.querySelector(".msg");
    if (!empty) {
      try {
        showConversation((await createConversation()).id);
      } catch (error) {
        toast("Could not start a conversation: " + errorText(error.code, error.message));
      }
    }
    ui.input.focus();
  });

  // The renderer is exposed for the browser test, which checks it on hostile input directly.
  window.ChatApp = { state, render: md.render };
  connect();
  loadConversations().then(() => {
    if (state.conversations.length) openConversation(state.conversations[0].id);
  });
  ui.input.focus();
})();
