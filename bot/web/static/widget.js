/*!
 * autoresponder web chat widget
 *
 * Embed with one tag:
 *   <script src="https://HOST/widget.js" data-server="https://HOST" async></script>
 *
 * Optional attributes on the script tag:
 *   data-server         base URL of the autoresponder server (default: origin of this script)
 *   data-locale         "zh-CN" | "zh-TW" | "en" (default: from navigator.languages)
 *   data-open           "true" to open the chat panel as soon as the page loads
 *   data-customer-id    the logged-in customer's id, with
 *   data-customer-hash  HMAC-SHA256(identity secret, customer id) in hex, computed by the shop's server
 *   data-transport      "auto" (default: a websocket, HTTP when the page's policy or a proxy refuses one),
 *                       "websocket", or "http" (for pages whose Content-Security-Policy lists no ws: source)
 *
 * The identity can also be given before the script loads (window.autoresponderSettings = {customerId,
 * customerHash}) or after: autoresponder.identify({customerId, customerHash}) when the customer logs in,
 * autoresponder.logout() when they log out (a new conversation starts).
 *
 * Plain ES2020, no dependencies, renders inside an open Shadow DOM.
 * Debug / test hooks: window.AutoResponderWidget = {open(), close(), send(text), socket()}.
 */
(() => {
  "use strict";

  if (window.AutoResponderWidget && window.AutoResponderWidget.__loaded) return;

  // ---------------------------------------------------------------------------
  // Configuration
  // ---------------------------------------------------------------------------

  const script =
    document.currentScript ||
    Array.from(document.getElementsByTagName("script")).find((s) => /\/widget\.js(\?|#|$)/.test(s.src || "")) ||
    null;

  const attr = (name) => (script && script.getAttribute(name)) || null;

  const MAX_CHARS = 5000;
  const WARN_CHARS = 4500;
  const PING_INTERVAL_MS = 25000;
  const PONG_TIMEOUT_MS = 20000;
  const TYPING_MAX_MS = 15000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const ERROR_SHOW_MS = 8000;
  const LS_SESSION = "ar_session";
  const SS_OUTBOX = "ar_outbox";
  const SS_OPEN = "ar_open";

  function resolveServer() {
    const explicit = attr("data-server");
    let base;
    try {
      if (explicit) base = new URL(explicit, window.location.href);
      else if (script && script.src) base = new URL(script.src, window.location.href);
      else base = new URL(window.location.href);
    } catch (_e) {
      base = new URL(window.location.href);
    }
    // data-server may carry a path prefix (e.g. https://example.com/support); the script's own URL may not.
    const path = explicit ? base.pathname.replace(/\/+$/, "") : "";
    return { httpBase: base.origin + path, wsScheme: base.protocol === "https:" ? "wss:" : "ws:", host: base.host, path };
  }

  const server = resolveServer();
  const WS_URL = `${server.wsScheme}//${server.host}${server.path}/channels/webchat/ws`;
  const TRANSPORT = String(attr("data-transport") || "auto").toLowerCase();
  const SOCKET_CONNECTING = 0;
  const SOCKET_OPEN = 1;
  const SOCKET_CLOSED = 3;
  const POLL_WAIT_S = 25;

  function seqAfter(a, b) {
    // Stream ids "ms-n": true when a comes after b.
    const [am, an] = String(a).split("-").map(Number);
    const [bm, bn] = String(b).split("-").map(Number);
    return am > bm || (am === bm && an > bn);
  }

  // The same frames as the websocket, over HTTP: hello and frames are posted, what follows is long-polled.
  // Used where a websocket cannot be opened (a strict Content-Security-Policy without a ws: source, a
  // proxy that refuses upgrades). It behaves like a WebSocket for the code below.
  class HttpSocket {
    constructor(base) {
      this.base = base;
      this.readyState = SOCKET_CONNECTING;
      this.listeners = { open: [], message: [], close: [], error: [] };
      this.session = null;
      this.after = null;
      this.mode = null;
      this.polling = false;
      this.abort = new AbortController();
      this.chain = Promise.resolve();
      setTimeout(() => {
        if (this.readyState !== SOCKET_CONNECTING) return;
        this.readyState = SOCKET_OPEN;
        this.emit("open", {});
      }, 0);
    }

    addEventListener(type, fn) {
      if (this.listeners[type]) this.listeners[type].push(fn);
    }

    emit(type, event) {
      for (const fn of this.listeners[type]) fn(event);
    }

    send(text) {
      if (this.readyState !== SOCKET_OPEN) throw new Error("not open");
      const frame = JSON.parse(text);
      this.chain = this.chain.then(() => this.post(frame));
    }

    close() {
      this.fail();
    }

    fail() {
      if (this.readyState === SOCKET_CLOSED) return;
      this.readyState = SOCKET_CLOSED;
      this.abort.abort();
      this.emit("close", {});
    }

    async request(path, init) {
      const res = await fetch(this.base + path, {
        ...init,
        signal: this.abort.signal,
        cache: "no-store",
        credentials: "omit",
        // text/plain: a "simple" cross-origin request, no preflight round trip (the server reads JSON anyway).
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
      });
      if (res.status === 401 || res.status === 404) {
        // The session is gone: a new hello (after reconnecting) starts afresh.
        this.session = null;
        throw new Error(`http ${res.status}`);
      }
      if (!res.ok) throw new Error(`http ${res.status}`);
      const body = await res.json();
      return Array.isArray(body.frames) ? body.frames : [];
    }

    async post(frame) {
      if (this.readyState !== SOCKET_OPEN) return;
      if (frame.type === "ping") {
        this.deliver({ type: "pong" });
        return;
      }
      try {
        let frames;
        if (frame.type === "hello") {
          this.after = frame.last_seq || null;
          const { type: _t, ...hello } = frame;
          frames = await this.request("/channels/webchat/http/hello", { method: "POST", body: JSON.stringify(hello) });
        } else {
          const body = JSON.stringify({ session: this.session, frames: [frame] });
          frames = await this.request("/channels/webchat/http/frames", { method: "POST", body });
        }
        for (const f of frames) this.deliver(f);
        if (this.session && !this.polling) this.poll();
      } catch (_e) {
        this.fail();
      }
    }

    deliver(frame) {
      if (frame.type === "welcome") {
        this.session = frame.session;
        this.mode = frame.mode;
        const history = Array.isArray(frame.history) ? frame.history : [];
        for (const m of history) if (m && m.seq && (!this.after || seqAfter(m.seq, this.after))) this.after = m.seq;
      } else if (frame.type === "message" && frame.seq) {
        if (!this.after || seqAfter(frame.seq, this.after)) this.after = frame.seq;
      } else if (frame.type === "mode") {
        this.mode = frame.mode;
      }
      if (this.readyState === SOCKET_OPEN) this.emit("message", { data: JSON.stringify(frame) });
    }

    async poll() {
      this.polling = true;
      while (this.readyState === SOCKET_OPEN && this.session) {
        const query = new URLSearchParams({ session: this.session, wait: String(POLL_WAIT_S) });
        if (this.after) query.set("after", this.after);
        if (this.mode) query.set("mode", this.mode);
        try {
          const frames = await this.request(`/channels/webchat/http/poll?${query}`, { method: "GET" });
          for (const f of frames) this.deliver(f);
        } catch (_e) {
          this.fail();
          return;
        }
      }
      this.polling = false;
    }
  }

  function openSocket() {
    const useHttp = TRANSPORT === "http" || state.transport === "http" || typeof WebSocket === "undefined";
    return useHttp ? new HttpSocket(server.httpBase) : new WebSocket(WS_URL);
  }

  function pickLocale(tag) {
    const t = String(tag || "").trim();
    if (/^zh\b/i.test(t) || /^zh[-_]/i.test(t) || t.toLowerCase() === "zh") {
      return /(TW|HK|MO|Hant)/i.test(t) ? "zh-TW" : "zh-CN";
    }
    if (/^en\b/i.test(t)) return "en";
    return null;
  }

  function detectLocale() {
    const forced = pickLocale(attr("data-locale"));
    if (forced) return forced;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || "";
    return pickLocale(nav) || "en";
  }

  const LOCALE = detectLocale();
  const OPEN_AT_LOAD = /^(true|1|yes|open)$/i.test(attr("data-open") || "");

  // ---------------------------------------------------------------------------
  // Strings
  // ---------------------------------------------------------------------------

  const STRINGS = {
    "zh-CN": {
      title: "在线客服",
      launcherOpen: "打开在线客服",
      launcherClose: "关闭在线客服",
      close: "最小化聊天窗口",
      placeholder: "请输入您的问题…",
      inputLabel: "输入消息（Enter 发送，Shift+Enter 换行）",
      send: "发送",
      connecting: "正在连接…",
      reconnecting: "连接已断开，正在重连…",
      online: "在线 · 通常即时回复",
      offline: "网络已断开，恢复后将自动重连",
      waiting: "正在为您转接人工客服，请稍候…",
      agentNamed: "人工客服 {name} 正在为您服务",
      agentAnon: "人工客服正在为您服务",
      backToBot: "已切换回智能助手",
      newConversation: "已为您开始新的会话",
      agentLabel: "人工客服",
      botLabel: "智能助手",
      typing: "对方正在输入…",
      messages: "聊天记录",
      quickReplies: "快捷回复",
      pending: "发送中…",
      failed: "发送失败",
      retry: "重试",
      tooLong: "消息过长，最多 {max} 个字符",
      counter: "{n}/{max}",
      emptyHello: "您好！👋",
      emptyHint: "请问有什么可以帮您？可以直接输入订单号查询物流，或输入“转人工”联系人工客服。",
      unread: "{n} 条未读消息",
      dismiss: "关闭提示",
      errors: {
        bad_json: "消息格式错误，请重试",
        unknown_type: "暂不支持该操作",
        too_large: "消息太长，最多 {max} 个字符",
        bad_session: "会话无效，已为您开始新的会话",
        expired_session: "会话已过期，已为您开始新的会话",
        rate_limited: "发送太频繁，请稍后再试",
        internal: "服务器开小差了，请稍后再试",
        generic: "出错了，请稍后再试",
      },
    },
    "zh-TW": {
      title: "線上客服",
      launcherOpen: "開啟線上客服",
      launcherClose: "關閉線上客服",
      close: "最小化聊天視窗",
      placeholder: "請輸入您的問題…",
      inputLabel: "輸入訊息（Enter 傳送，Shift+Enter 換行）",
      send: "傳送",
      connecting: "正在連線…",
      reconnecting: "連線已中斷，正在重新連線…",
      online: "線上 · 通常即時回覆",
      offline: "網路已中斷，恢復後將自動重新連線",
      waiting: "正在為您轉接人工客服，請稍候…",
      agentNamed: "人工客服 {name} 正在為您服務",
      agentAnon: "人工客服正在為您服務",
      backToBot: "已切換回智慧助理",
      newConversation: "已為您開始新的對話",
      agentLabel: "人工客服",
      botLabel: "智慧助理",
      typing: "對方正在輸入…",
      messages: "聊天記錄",
      quickReplies: "快速回覆",
      pending: "傳送中…",
      failed: "傳送失敗",
      retry: "重試",
      tooLong: "訊息過長，最多 {max} 個字元",
      counter: "{n}/{max}",
      emptyHello: "您好！👋",
      emptyHint: "請問有什麼可以幫您？可以直接輸入訂單編號查詢物流，或輸入「轉人工」聯絡人工客服。",
      unread: "{n} 則未讀訊息",
      dismiss: "關閉提示",
      errors: {
        bad_json: "訊息格式錯誤，請重試",
        unknown_type: "暫不支援此操作",
        too_large: "訊息太長，最多 {max} 個字元",
        bad_session: "對話無效，已為您開始新的對話",
        expired_session: "對話已過期，已為您開始新的對話",
        rate_limited: "傳送太頻繁，請稍後再試",
        internal: "伺服器發生錯誤，請稍後再試",
        generic: "發生錯誤，請稍後再試",
      },
    },
    en: {
      title: "Customer service",
      launcherOpen: "Open customer service chat",
      launcherClose: "Close customer service chat",
      close: "Minimise chat",
      placeholder: "Type your message…",
      inputLabel: "Message (Enter to send, Shift+Enter for a new line)",
      send: "Send",
      connecting: "Connecting…",
      reconnecting: "Connection lost, reconnecting…",
      online: "Online · We usually reply instantly",
      offline: "You are offline. We will reconnect automatically.",
      waiting: "Waiting for an agent…",
      agentNamed: "You are chatting with {name} (agent)",
      agentAnon: "You are chatting with an agent",
      backToBot: "You're back with the assistant",
      newConversation: "A new conversation has started",
      agentLabel: "Agent",
      botLabel: "Assistant",
      typing: "Typing…",
      messages: "Conversation",
      quickReplies: "Quick replies",
      pending: "Sending…",
      failed: "Not sent",
      retry: "Retry",
      tooLong: "Message too long (max {max} characters)",
      counter: "{n}/{max}",
      emptyHello: "Hi there! 👋",
      emptyHint: "How can we help? Type an order number to track it, or ask to talk to a human agent.",
      unread: "{n} unread messages",
      dismiss: "Dismiss",
      errors: {
        bad_json: "The message could not be read. Please try again.",
        unknown_type: "That action is not supported.",
        too_large: "Message too long (max {max} characters).",
        bad_session: "Your session was invalid, so a new conversation was started.",
        expired_session: "Your session expired, so a new conversation was started.",
        rate_limited: "You're sending messages too fast. Please wait a moment.",
        internal: "Something went wrong on our side. Please try again later.",
        generic: "Something went wrong. Please try again.",
      },
    },
  };

  const S = STRINGS[LOCALE];
  const fmt = (s, vars) => String(s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));

  // ---------------------------------------------------------------------------
  // Utilities
  // ---------------------------------------------------------------------------

  function uuid4() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      try {
        return c.randomUUID();
      } catch (_e) {
        /* insecure context in some browsers: fall through */
      }
    }
    const b = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") c.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // Redis stream ids "<ms>-<n>": compare numerically, never as strings.
  function parseSeq(seq) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(String(seq));
    if (!m) return null;
    try {
      return [BigInt(m[1]), BigInt(m[2] || "0")];
    } catch (_e) {
      return null;
    }
  }

  function cmpSeq(a, b) {
    const pa = parseSeq(a);
    const pb = parseSeq(b);
    if (!pa || !pb) return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    if (pa[0] !== pb[0]) return pa[0] < pb[0] ? -1 : 1;
    if (pa[1] !== pb[1]) return pa[1] < pb[1] ? -1 : 1;
    return 0;
  }

  // Character count the way the server (Python len) sees it: code points, not UTF-16 units.
  const charCount = (s) => {
    let n = 0;
    for (const _ch of s) n++;
    return n;
  };

  const storage = {
    get(area, key) {
      try {
        return window[area].getItem(key);
      } catch (_e) {
        return null;
      }
    },
    set(area, key, value) {
      try {
        window[area].setItem(key, value);
      } catch (_e) {
        /* storage disabled or full: keep working in memory */
      }
    },
    remove(area, key) {
      try {
        window[area].removeItem(key);
      } catch (_e) {
        /* ignore */
      }
    },
  };

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [k, v] of Object.entries(props)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "className") node.className = v;
        else if (k === "text") node.textContent = v;
        else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? "" : String(v));
      }
    }
    if (children) for (const c of children) if (c) node.appendChild(c);
    return node;
  }

  // URLs become links; everything else is plain text nodes (never innerHTML).
  const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u3000-\u303f\uff00-\uffef]+/gi;
  const TRAILING_PUNCT = ".,;:!?'\"]}>";

  function appendRichText(container, text) {
    const str = String(text == null ? "" : text);
    let last = 0;
    URL_RE.lastIndex = 0;
    let m;
    while ((m = URL_RE.exec(str)) !== null) {
      let url = m[0];
      // Trim trailing punctuation; keep a closing paren only when it balances one inside the URL.
      while (url.length) {
        const ch = url[url.length - 1];
        if (TRAILING_PUNCT.includes(ch)) {
          url = url.slice(0, -1);
          continue;
        }
        if (ch === ")" && (url.match(/\)/g) || []).length > (url.match(/\(/g) || []).length) {
          url = url.slice(0, -1);
          continue;
        }
        break;
      }
      const start = m.index;
      const end = start + url.length;
      URL_RE.lastIndex = end;
      let href = null;
      try {
        const u = new URL(url);
        if (u.protocol === "http:" || u.protocol === "https:") href = u.href;
      } catch (_e) {
        href = null;
      }
      if (!href) continue;
      if (start > last) container.appendChild(document.createTextNode(str.slice(last, start)));
      const a = document.createElement("a");
      a.href = href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = url;
      container.appendChild(a);
      last = end;
    }
    if (last < str.length) container.appendChild(document.createTextNode(str.slice(last)));
  }

  function formatTime(ts) {
    if (typeof ts !== "number" || !isFinite(ts)) return null;
    try {
      return new Date(ts * 1000).toLocaleString(LOCALE === "en" ? undefined : LOCALE);
    } catch (_e) {
      return null;
    }
  }


  // Static, trusted markup only (icons). Message text never goes through innerHTML.
  const ICON_CHAT =
    '<svg class="ar-icon-chat" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z"/></svg>';
  const ICON_CLOSE =
    '<svg class="ar-icon-close" viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" aria-hidden="true" focusable="false"><path d="M18 6 6 18M6 6l12 12"/></svg>';
  const ICON_MIN =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="m6 9 6 6 6-6"/></svg>';
  const ICON_HEADSET =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M3 14v-3a9 9 0 0 1 18 0v3"/><path d="M21 15a2 2 0 0 1-2 2h-1v-6h1a2 2 0 0 1 2 2zM3 15a2 2 0 0 0 2 2h1v-6H5a2 2 0 0 0-2 2z"/><path d="M18 17v1a3 3 0 0 1-3 3h-3"/></svg>';
  const ICON_SEND =
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M22 2 11 13"/><path d="M22 2 15 22l-4-9-9-4z"/></svg>';

  // ---------------------------------------------------------------------------
  // DOM
  // ---------------------------------------------------------------------------

  const host = document.createElement("autoresponder-widget");
  host.setAttribute("data-autoresponder", "");
  host.style.setProperty("all", "initial", "important");
  host.style.setProperty("display", "block", "important");
  host.style.setProperty("position", "static", "important");
  const shadow = host.attachShadow({ mode: "open" });

  // A stylesheet from this server, not a <style> element: shops with a strict Content-Security-Policy
  // (no 'unsafe-inline') allow it by the server's origin. The widget stays hidden until it has loaded.
  const styleLink = document.createElement("link");
  styleLink.rel = "stylesheet";
  styleLink.href = `${server.httpBase}/widget.css`;
  shadow.appendChild(styleLink);

  const uid = Math.random().toString(36).slice(2, 8);
  const ids = { panel: `ar-panel-${uid}`, title: `ar-title-${uid}`, input: `ar-input-${uid}`, counter: `ar-counter-${uid}` };

  const root = el("div", { className: "ar-root", lang: LOCALE, "data-open": "false" });

  const launcher = el("button", {
    type: "button",
    className: "ar-launcher",
    "data-testid": "ar-launcher",
    "aria-label": S.launcherOpen,
    "aria-expanded": "false",
    "aria-controls": ids.panel,
  });
  launcher.innerHTML = ICON_CHAT + ICON_CLOSE;
  const badge = el("span", { className: "ar-badge", "data-testid": "ar-unread", hidden: true, "aria-hidden": "true" });
  launcher.appendChild(badge);

  const panel = el("div", {
    id: ids.panel,
    className: "ar-panel",
    role: "dialog",
    "aria-modal": "false",
    "aria-labelledby": ids.title,
    "data-testid": "ar-panel",
    hidden: true,
  });

  const avatar = el("div", { className: "ar-avatar", "aria-hidden": "true" });
  avatar.innerHTML = ICON_HEADSET;
  const title = el("h2", { id: ids.title, className: "ar-title", text: S.title });
  const statusText = el("span", { className: "ar-status-text", text: S.connecting });
  const status = el("div", { className: "ar-status", "data-testid": "ar-status", "data-state": "connecting", role: "status" }, [
    el("span", { className: "ar-status-dot", "aria-hidden": "true" }),
    statusText,
  ]);
  const closeBtn = el("button", { type: "button", className: "ar-close", "data-testid": "ar-close", "aria-label": S.close, title: S.close });
  closeBtn.innerHTML = ICON_MIN;
  const header = el("div", { className: "ar-header" }, [avatar, el("div", { className: "ar-heading" }, [title, status]), closeBtn]);

  const modeSlot = el("div", { className: "ar-mode-slot" });

  const scroller = el("div", { className: "ar-scroll" });
  const emptyState = el("div", { className: "ar-empty", "data-testid": "ar-empty" }, [
    el("div", { className: "ar-empty-hello", text: S.emptyHello }),
    el("div", { text: S.emptyHint }),
  ]);
  const list = el("div", {
    className: "ar-messages",
    role: "log",
    "aria-live": "polite",
    "aria-relevant": "additions",
    "aria-label": S.messages,
  });
  const typingSlot = el("div", { className: "ar-typing-slot", "aria-live": "polite" });
  // Quick replies sit right under the newest message, inside the scrolling area.
  const quickSlot = el("div", { className: "ar-quick-slot" });
  scroller.append(emptyState, list, typingSlot, quickSlot);

  const errorSlot = el("div", { className: "ar-error-slot" });

  const input = el("textarea", {
    id: ids.input,
    className: "ar-input",
    rows: "1",
    "data-testid": "ar-input",
    placeholder: S.placeholder,
    "aria-label": S.inputLabel,
    "aria-describedby": ids.counter,
    autocomplete: "off",
    enterkeyhint: "send",
  });
  const sendBtn = el("button", { type: "button", className: "ar-send", "data-testid": "ar-send", "aria-label": S.send, disabled: true });
  sendBtn.innerHTML = ICON_SEND;
  sendBtn.appendChild(el("span", { text: S.send }));
  const counter = el("div", { id: ids.counter, className: "ar-counter", "data-testid": "ar-counter", "aria-live": "polite", hidden: true });
  const composer = el("div", { className: "ar-composer" }, [el("div", { className: "ar-composer-row" }, [input, sendBtn]), counter]);

  panel.append(header, modeSlot, scroller, errorSlot, composer);
  root.append(panel, launcher);
  root.hidden = true; // shown once its stylesheet is there (or failed: then unstyled rather than missing)
  const showRoot = () => {
    root.hidden = false;
  };
  styleLink.addEventListener("load", showRoot, { once: true });
  styleLink.addEventListener("error", showRoot, { once: true });
  shadow.appendChild(root);

  // ---------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------

  function initialIdentity() {
    const pre = window.autoresponderSettings || {};
    const id = attr("data-customer-id") || (typeof pre.customerId === "string" ? pre.customerId : null);
    const hash = attr("data-customer-hash") || (typeof pre.customerHash === "string" ? pre.customerHash : null);
    return id && hash ? { customer_id: id, hash } : null;
  }

  const state = {
    identity: initialIdentity(), // {customer_id, hash} signed by the shop, or null for a guest
    transport: TRANSPORT === "http" ? "http" : "websocket",
    wsFailures: 0, // websockets in a row that never opened
    ws: null,
    ready: false, // welcome received on the current socket
    everConnected: false,
    stopped: false,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    pongTimer: null,
    typingTimer: null,
    errorTimer: null,
    session: storage.get("localStorage", LS_SESSION),
    conversationId: null,
    mode: "bot",
    agentName: null,
    isOpen: false,
    unread: 0,
    rendered: new Map(), // seq -> element
    newestSeq: null,
    pending: new Map(), // client_id -> {frame, el, status}
    outbox: [], // client_ids in send order (queued or sent-but-unconfirmed)
    latestBot: null, // {seq, buttons}
    quickDismissedSeq: null,
    latestCustomerSeq: null,
    latestAgentSeq: null,
  };

  // ---------------------------------------------------------------------------
  // Rendering
  // ---------------------------------------------------------------------------

  function isNearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force || isNearBottom()) {
      requestAnimationFrame(() => {
        scroller.scrollTop = scroller.scrollHeight;
      });
    }
  }

  function updateEmptyState() {
    emptyState.hidden = list.childElementCount > 0;
  }

  function buildMessageEl(role, text, opts) {
    const o = opts || {};
    const safeRole = ["customer", "bot", "agent", "system"].includes(role) ? role : "system";
    const node = el("div", { className: "ar-msg", "data-testid": "ar-message", "data-role": safeRole });
    if (o.seq) node.setAttribute("data-seq", o.seq);
    if (o.clientId) node.setAttribute("data-client-id", o.clientId);
    if (o.local) node.setAttribute("data-local", "true");
    if (safeRole === "agent") {
      const label = o.agentName ? `${S.agentLabel} · ${o.agentName}` : S.agentLabel;
      node.appendChild(el("div", { className: "ar-label", text: label }));
    }
    const bubble = el("div", { className: "ar-bubble" });
    appendRichText(bubble, text);
    const when = formatTime(o.ts);
    if (when) bubble.title = when;
    node.appendChild(bubble);
    return node;
  }

  // Insert a seq'd element in seq order. Pending (unconfirmed) customer messages always stay at the bottom.
  function insertBySeq(node, seq) {
    let ref = list.lastElementChild;
    while (ref) {
      if (ref.getAttribute("data-status") === "pending" || ref.getAttribute("data-status") === "failed") {
        ref = ref.previousElementSibling;
        continue;
      }
      const rs = ref.getAttribute("data-seq");
      if (rs && cmpSeq(rs, seq) > 0) {
        ref = ref.previousElementSibling;
        continue;
      }
      break;
    }
    if (ref) ref.after(node);
    else list.prepend(node);
  }

  function noteSeq(seq, node) {
    state.rendered.set(seq, node);
    if (!state.newestSeq || cmpSeq(seq, state.newestSeq) > 0) state.newestSeq = seq;
  }

  function setPendingStatus(entry, status) {
    entry.status = status;
    const node = entry.el;
    node.setAttribute("data-status", status === "failed" ? "failed" : "pending");
    let meta = node.querySelector(".ar-meta");
    if (!meta) {
      meta = el("div", { className: "ar-meta" });
      node.appendChild(meta);
    }
    meta.textContent = "";
    if (status === "failed") {
      meta.appendChild(el("span", { text: S.failed }));
      if (entry.retryable) {
        meta.appendChild(
          el("button", {
            type: "button",
            className: "ar-retry",
            "data-testid": "ar-retry",
            text: S.retry,
            onclick: () => retryMessage(entry.frame.client_id),
          }),
        );
      }
    } else {
      meta.appendChild(el("span", { text: S.pending }));
    }
  }

  function addPendingBubble(frame) {
    const text = frame.type === "button" ? frame.title || frame.payload || "" : frame.text;
    const node = buildMessageEl("customer", text, { clientId: frame.client_id });
    const entry = { frame, el: node, status: "queued", retryable: true };
    setPendingStatus(entry, "queued");
    state.pending.set(frame.client_id, entry);
    list.appendChild(node);
    updateEmptyState();
    scrollToBottom(true);
    return entry;
  }

  function confirmPending(entry, msg) {
    const node = entry.el;
    state.pending.delete(msg.client_id);
    removeFromOutbox(msg.client_id);
    node.removeAttribute("data-status");
    const meta = node.querySelector(".ar-meta");
    if (meta) meta.remove();
    node.setAttribute("data-seq", msg.seq);
    // Server text is authoritative (it may have normalised whitespace).
    if (typeof msg.text === "string") {
      const bubble = node.querySelector(".ar-bubble");
      bubble.textContent = "";
      appendRichText(bubble, msg.text);
      const when = formatTime(msg.ts);
      if (when) bubble.title = when;
    }
    node.remove();
    insertBySeq(node, msg.seq);
    noteSeq(msg.seq, node);
  }

  function renderMessage(msg, live) {
    if (!msg || typeof msg !== "object") return;
    const seq = msg.seq != null ? String(msg.seq) : null;
    if (seq && state.rendered.has(seq)) return; // never render the same seq twice
    const role = msg.role;

    if (role === "customer" && msg.client_id && state.pending.has(msg.client_id)) {
      if (seq) confirmPending(state.pending.get(msg.client_id), msg);
    } else {
      const node = buildMessageEl(role, msg.text, { seq, agentName: msg.agent_name, ts: msg.ts });
      if (role === "customer" && msg.client_id) node.setAttribute("data-client-id", msg.client_id);
      if (seq) {
        insertBySeq(node, seq);
        noteSeq(seq, node);
      } else {
        // A message without seq should not happen; show it but it cannot be deduplicated.
        insertBySeq(node, "99999999999999999-0");
      }
      if (live && !state.isOpen && (role === "bot" || role === "agent")) {
        state.unread += 1;
        updateBadge();
      }
    }

    if (seq) {
      if (role === "bot" && (!state.latestBot || cmpSeq(seq, state.latestBot.seq) > 0)) {
        state.latestBot = { seq, buttons: Array.isArray(msg.buttons) ? msg.buttons : [] };
      } else if (role === "customer" && (!state.latestCustomerSeq || cmpSeq(seq, state.latestCustomerSeq) > 0)) {
        state.latestCustomerSeq = seq;
      } else if (role === "agent" && (!state.latestAgentSeq || cmpSeq(seq, state.latestAgentSeq) > 0)) {
        state.latestAgentSeq = seq;
      }
    }
    if (role === "bot" || role === "agent") setTyping(false);
    updateEmptyState();
  }

  function addLocalSystemLine(text) {
    const near = isNearBottom();
    const node = buildMessageEl("system", text, { local: true });
    // Local notices go after all confirmed messages but before pending ones.
    let ref = list.lastElementChild;
    while (ref && (ref.getAttribute("data-status") === "pending" || ref.getAttribute("data-status") === "failed")) {
      ref = ref.previousElementSibling;
    }
    if (ref) ref.after(node);
    else list.prepend(node);
    updateEmptyState();
    scrollToBottom(near);
  }

  // Quick replies: buttons of the latest bot message only, as long as nothing newer from the customer/agent.
  function renderQuickReplies() {
    quickSlot.textContent = "";
    const lb = state.latestBot;
    if (!lb || !lb.buttons.length) return;
    if (state.quickDismissedSeq && cmpSeq(state.quickDismissedSeq, lb.seq) >= 0) return;
    if (state.latestCustomerSeq && cmpSeq(state.latestCustomerSeq, lb.seq) > 0) return;
    if (state.latestAgentSeq && cmpSeq(state.latestAgentSeq, lb.seq) > 0) return;
    if (state.outbox.length > 0) return; // the customer has already answered
    const group = el("div", { className: "ar-quick", role: "group", "aria-label": S.quickReplies, "data-testid": "ar-quick-replies" });
    for (const b of lb.buttons) {
      if (!b || typeof b !== "object") continue;
      const titleText = String(b.title != null ? b.title : b.payload != null ? b.payload : "");
      if (!titleText) continue;
      const btn = el("button", {
        type: "button",
        className: "ar-quick-btn",
        "data-testid": "ar-quick-reply",
        "data-payload": b.payload != null ? String(b.payload) : "",
        text: titleText,
      });
      btn.addEventListener("click", () => {
        state.quickDismissedSeq = lb.seq;
        sendButton(titleText, b.payload != null ? String(b.payload) : titleText);
        renderQuickReplies();
        input.focus({ preventScroll: true });
      });
      group.appendChild(btn);
    }
    if (group.childElementCount) quickSlot.appendChild(group);
  }

  function setTyping(on) {
    const near = isNearBottom();
    clearTimeout(state.typingTimer);
    state.typingTimer = null;
    typingSlot.textContent = "";
    if (!on) return;
    const t = el("div", { className: "ar-typing", "data-testid": "ar-typing", role: "status", "aria-label": S.typing }, [
      el("span", { "aria-hidden": "true" }),
      el("span", { "aria-hidden": "true" }),
      el("span", { "aria-hidden": "true" }),
    ]);
    typingSlot.appendChild(t);
    state.typingTimer = setTimeout(() => setTyping(false), TYPING_MAX_MS);
    if (near) scrollToBottom(true);
  }

  function setMode(mode, agentName, fromModeFrame) {
    const prev = state.mode;
    const m = mode === "waiting" || mode === "agent" ? mode : "bot";
    state.mode = m;
    if (agentName !== undefined) state.agentName = agentName || null;
    modeSlot.textContent = "";
    if (m === "bot") {
      state.agentName = null;
      if (fromModeFrame && prev !== "bot") addLocalSystemLine(S.backToBot);
      return;
    }
    const banner = el("div", { className: "ar-mode", "data-testid": "ar-mode", "data-mode": m, role: "status" });
    if (m === "waiting") {
      banner.appendChild(el("span", { className: "ar-spinner", "aria-hidden": "true" }));
      banner.appendChild(el("span", { text: S.waiting }));
    } else {
      banner.appendChild(el("span", { className: "ar-mode-dot", "aria-hidden": "true" }));
      banner.appendChild(el("span", { text: state.agentName ? fmt(S.agentNamed, { name: state.agentName }) : S.agentAnon }));
    }
    modeSlot.appendChild(banner);
  }

  function setStatus(kind) {
    status.setAttribute("data-state", kind);
    statusText.textContent = S[kind] || kind;
  }

  function showError(code, serverMessage) {
    clearTimeout(state.errorTimer);
    errorSlot.textContent = "";
    let text = S.errors[code];
    if (!text) text = serverMessage ? String(serverMessage) : S.errors.generic;
    text = fmt(text, { max: MAX_CHARS });
    const box = el("div", { className: "ar-error", "data-testid": "ar-error", "data-code": code || "", role: "alert" }, [
      el("span", { className: "ar-error-text", text }),
      el("button", {
        type: "button",
        className: "ar-error-x",
        "aria-label": S.dismiss,
        text: "×",
        onclick: () => {
          errorSlot.textContent = "";
        },
      }),
    ]);
    errorSlot.appendChild(box);
    state.errorTimer = setTimeout(() => {
      errorSlot.textContent = "";
    }, ERROR_SHOW_MS);
  }

  function updateBadge() {
    if (state.unread > 0 && !state.isOpen) {
      badge.hidden = false;
      badge.textContent = state.unread > 99 ? "99+" : String(state.unread);
      launcher.setAttribute("aria-label", `${S.launcherOpen} (${fmt(S.unread, { n: state.unread })})`);
    } else {
      badge.hidden = true;
      badge.textContent = "";
      launcher.setAttribute("aria-label", state.isOpen ? S.launcherClose : S.launcherOpen);
    }
  }

  function resetConversationView() {
    // Keep pending/failed local messages (they will be sent into the new conversation); drop the rest.
    for (const child of Array.from(list.children)) {
      const st = child.getAttribute("data-status");
      if (st !== "pending" && st !== "failed") child.remove();
    }
    state.rendered.clear();
    state.newestSeq = null;
    state.latestBot = null;
    state.latestCustomerSeq = null;
    state.latestAgentSeq = null;
    state.quickDismissedSeq = null;
    setTyping(false);
    updateEmptyState();
  }

  // ---------------------------------------------------------------------------
  // Composer
  // ---------------------------------------------------------------------------

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 120)}px`;
  }

  function updateComposer() {
    const text = input.value;
    const n = charCount(text);
    const over = n > MAX_CHARS;
    sendBtn.disabled = over || text.trim() === "";
    if (n >= WARN_CHARS) {
      counter.hidden = false;
      counter.setAttribute("data-over", over ? "true" : "false");
      counter.textContent = over ? `${fmt(S.counter, { n, max: MAX_CHARS })} · ${fmt(S.tooLong, { max: MAX_CHARS })}` : fmt(S.counter, { n, max: MAX_CHARS });
      input.setAttribute("aria-invalid", over ? "true" : "false");
    } else {
      counter.hidden = true;
      counter.textContent = "";
      input.removeAttribute("aria-invalid");
    }
  }

  function submitInput() {
    const text = input.value;
    if (!text.trim()) return;
    if (charCount(text) > MAX_CHARS) {
      updateComposer();
      showError("too_large");
      return;
    }
    if (sendText(text) !== null) {
      input.value = "";
      autoGrow();
      updateComposer();
    }
  }

  input.addEventListener("input", () => {
    autoGrow();
    updateComposer();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitInput();
    }
  });
  sendBtn.addEventListener("click", () => {
    submitInput();
    input.focus({ preventScroll: true });
  });

  // ---------------------------------------------------------------------------
  // Outbox (persisted per tab in sessionStorage so a reload does not lose unsent messages)
  // ---------------------------------------------------------------------------

  function persistOutbox() {
    const frames = state.outbox.map((id) => state.pending.get(id)).filter(Boolean).map((e) => e.frame);
    if (frames.length) storage.set("sessionStorage", SS_OUTBOX, JSON.stringify(frames));
    else storage.remove("sessionStorage", SS_OUTBOX);
  }

  function removeFromOutbox(clientId) {
    const i = state.outbox.indexOf(clientId);
    if (i >= 0) {
      state.outbox.splice(i, 1);
      persistOutbox();
    }
  }

  function enqueue(frame) {
    addPendingBubble(frame);
    state.outbox.push(frame.client_id);
    persistOutbox();
    renderQuickReplies();
    if (state.ready) flushOutbox();
    else ensureConnected();
    return frame.client_id;
  }

  function sendText(text) {
    const t = String(text == null ? "" : text).replace(/^\s+|\s+$/g, "");
    if (!t) return null;
    if (charCount(t) > MAX_CHARS) {
      showError("too_large");
      return null;
    }
    return enqueue({ type: "message", text: t, client_id: uuid4() });
  }

  function sendButton(titleText, payload) {
    return enqueue({ type: "button", payload, title: titleText, client_id: uuid4() });
  }

  function flushOutbox() {
    if (!state.ready || !state.ws || state.ws.readyState !== SOCKET_OPEN) return;
    for (const id of state.outbox) {
      const entry = state.pending.get(id);
      // "sent" entries await their echo on this socket; they go back to "queued" (and are resent) only after a drop.
      if (!entry || entry.status !== "queued") continue;
      try {
        state.ws.send(JSON.stringify(entry.frame));
        setPendingStatus(entry, "sent");
      } catch (_e) {
        break; // socket died; onclose will reconnect and we resend then
      }
    }
  }

  function retryMessage(clientId) {
    const entry = state.pending.get(clientId);
    if (!entry || entry.status !== "failed") return;
    setPendingStatus(entry, "queued");
    // Move to the end of the visual queue and the outbox.
    entry.el.remove();
    list.appendChild(entry.el);
    removeFromOutbox(clientId);
    state.outbox.push(clientId);
    persistOutbox();
    if (state.ready) flushOutbox();
    else ensureConnected();
  }

  function markFailed(clientId, retryable) {
    const entry = state.pending.get(clientId);
    if (!entry) return;
    entry.retryable = retryable;
    setPendingStatus(entry, "failed");
    removeFromOutbox(clientId);
  }

  function restoreOutbox() {
    const raw = storage.get("sessionStorage", SS_OUTBOX);
    if (!raw) return;
    let frames;
    try {
      frames = JSON.parse(raw);
    } catch (_e) {
      frames = null;
    }
    if (!Array.isArray(frames)) return;
    for (const f of frames) {
      if (!f || typeof f !== "object" || typeof f.client_id !== "string") continue;
      if (f.type === "message" && typeof f.text === "string") {
        addPendingBubble({ type: "message", text: f.text, client_id: f.client_id });
      } else if (f.type === "button" && typeof f.payload === "string") {
        addPendingBubble({ type: "button", payload: f.payload, title: String(f.title || f.payload), client_id: f.client_id });
      } else continue;
      state.outbox.push(f.client_id);
    }
    persistOutbox();
  }

  // ---------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------

  function wsSend(obj) {
    const ws = state.ws;
    if (!ws || ws.readyState !== SOCKET_OPEN) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (_e) {
      return false;
    }
  }

  function clearTimers() {
    clearInterval(state.pingTimer);
    clearTimeout(state.pongTimer);
    state.pingTimer = null;
    state.pongTimer = null;
  }

  // Anything sent but not echoed goes back to "queued"; it is resent (same client_id) after the next welcome.
  function requeueSent() {
    for (const id of state.outbox) {
      const entry = state.pending.get(id);
      if (entry && entry.status === "sent") setPendingStatus(entry, "queued");
    }
  }

  function ensureConnected() {
    state.stopped = false;
    if (state.ws && (state.ws.readyState === SOCKET_OPEN || state.ws.readyState === SOCKET_CONNECTING)) return;
    if (state.reconnectTimer) return; // a reconnect is already scheduled
    connect();
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.ws && (state.ws.readyState === SOCKET_OPEN || state.ws.readyState === SOCKET_CONNECTING)) return;
    if (state.ws) {
      // Replacing a socket that is still closing (e.g. "online" fired before its close event): its close
      // event will be ignored, so what it sent but never got echoed must be queued for resending here.
      state.ws = null;
      clearTimers();
      requeueSent();
    }
    setStatus(state.everConnected ? "reconnecting" : "connecting");
    let ws;
    try {
      ws = openSocket();
    } catch (_e) {
      if (TRANSPORT === "auto") state.transport = "http";
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.ready = false;
    let opened = false;

    ws.addEventListener("open", () => {
      if (state.ws !== ws) return;
      opened = true;
      state.wsFailures = 0;
      wsSend({
        type: "hello",
        session: state.session || null,
        locale: LOCALE,
        last_seq: state.newestSeq || null,
        identity: state.identity,
      });
      clearTimers();
      state.pingTimer = setInterval(() => {
        if (state.ws !== ws) return;
        if (wsSend({ type: "ping" }) && !state.pongTimer) {
          state.pongTimer = setTimeout(() => {
            // No traffic at all since the ping: treat the connection as dead.
            if (state.ws === ws) {
              try {
                ws.close(4000, "pong timeout");
              } catch (_e) {
                /* ignore */
              }
            }
          }, PONG_TIMEOUT_MS);
        }
      }, PING_INTERVAL_MS);
    });

    ws.addEventListener("message", (ev) => {
      if (state.ws !== ws) return;
      clearTimeout(state.pongTimer);
      state.pongTimer = null;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (_e) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      try {
        handleFrame(frame);
      } catch (err) {
        if (window.console) console.error("[autoresponder] failed to handle frame", frame, err);
      }
    });

    const onGone = () => {
      if (state.ws !== ws) return;
      if (!opened && !(ws instanceof HttpSocket) && TRANSPORT === "auto" && ++state.wsFailures >= 2) {
        // Websockets never open here (a policy or a proxy in the way): HTTP from now on.
        state.transport = "http";
      }
      state.ws = null;
      state.ready = false;
      clearTimers();
      setTyping(false);
      requeueSent();
      if (!state.stopped) scheduleReconnect();
    };
    ws.addEventListener("close", onGone);
    ws.addEventListener("error", () => {
      // "close" always follows "error"; nothing else to do here.
    });
  }

  function scheduleReconnect() {
    if (state.reconnectTimer || state.stopped) return;
    setStatus(navigator.onLine === false ? "offline" : state.everConnected ? "reconnecting" : "connecting");
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.8 + Math.random() * 0.4)));
    state.attempt = Math.min(state.attempt + 1, 10);
    state.reconnectTimer = setTimeout(() => {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (state.stopped) return;
    if (state.ws && (state.ws.readyState === SOCKET_OPEN || state.ws.readyState === SOCKET_CONNECTING)) return;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    state.attempt = 0;
    connect();
  }

  // A page whose Content-Security-Policy has no ws: source refuses the websocket: switch to HTTP at once.
  document.addEventListener("securitypolicyviolation", (e) => {
    if (TRANSPORT !== "auto" || state.transport === "http") return;
    if (String(e.blockedURI || "").startsWith(`${server.wsScheme}//${server.host}`)) {
      state.transport = "http";
      reconnectNow();
    }
  });

  window.addEventListener("online", () => {
    if (state.ws || state.reconnectTimer || state.everConnected || state.outbox.length || state.isOpen) reconnectNow();
  });
  window.addEventListener("offline", () => {
    if (!state.ready) setStatus("offline");
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.reconnectTimer) reconnectNow();
  });

  // ---------------------------------------------------------------------------
  // Protocol
  // ---------------------------------------------------------------------------

  function handleFrame(f) {
    switch (f.type) {
      case "welcome":
        return onWelcome(f);
      case "message": {
        const near = isNearBottom();
        renderMessage(f, true);
        renderQuickReplies();
        scrollToBottom(near || f.role === "customer");
        return;
      }
      case "typing":
        setTyping(!!f.on);
        return;
      case "mode":
        setMode(f.mode, f.agent_name, true);
        return;
      case "error":
        return onError(f);
      case "pong":
        return;
      default:
        return;
    }
  }

  function onWelcome(f) {
    if (typeof f.session === "string" && f.session) {
      state.session = f.session;
      storage.set("localStorage", LS_SESSION, f.session);
    }
    const conv = f.conversation_id != null ? String(f.conversation_id) : null;
    if (conv && state.conversationId && conv !== state.conversationId) {
      resetConversationView();
      addLocalSystemLine(S.newConversation);
    }
    if (conv) state.conversationId = conv;

    const history = Array.isArray(f.history) ? f.history.slice() : [];
    history.sort((a, b) => (a && b && a.seq != null && b.seq != null ? cmpSeq(a.seq, b.seq) : 0));
    for (const m of history) {
      if (m && (m.type === undefined || m.type === "message")) renderMessage(m, false);
    }
    setMode(f.mode, f.agent_name, false);
    renderQuickReplies();

    state.ready = true;
    state.everConnected = true;
    state.attempt = 0;
    setStatus("online");
    flushOutbox();
    scrollToBottom(true);
  }

  function onError(f) {
    const code = typeof f.code === "string" ? f.code : "";
    if (code === "bad_identity") {
      // The shop's page passed an id whose hash the server rejects: a set-up problem for the shop, not
      // something the customer can fix. The visitor simply chats as a guest.
      console.warn("autoresponder: customer identity rejected (check the hash computed by the shop's server)");
      return;
    }
    if (code === "bad_session" || code === "expired_session") {
      state.session = null;
      storage.remove("localStorage", LS_SESSION);
    }
    if (f.client_id && state.pending.has(f.client_id)) {
      // too_large will never succeed; other per-message errors may be retried by the customer.
      markFailed(f.client_id, code !== "too_large" && code !== "bad_json" && code !== "unknown_type");
    }
    showError(code, f.message);
  }

  // ---------------------------------------------------------------------------
  // Open / close
  // ---------------------------------------------------------------------------

  function openPanel(opts) {
    const o = opts || {};
    if (!state.isOpen) {
      state.isOpen = true;
      panel.hidden = false;
      root.setAttribute("data-open", "true");
      launcher.setAttribute("aria-expanded", "true");
      state.unread = 0;
      updateBadge();
      storage.set("sessionStorage", SS_OPEN, "1");
      scrollToBottom(true);
    }
    ensureConnected();
    if (o.focus !== false) input.focus({ preventScroll: true });
  }

  function closePanel(opts) {
    const o = opts || {};
    if (!state.isOpen) return;
    state.isOpen = false;
    panel.hidden = true;
    root.setAttribute("data-open", "false");
    launcher.setAttribute("aria-expanded", "false");
    updateBadge();
    storage.set("sessionStorage", SS_OPEN, "0");
    if (o.focus !== false) launcher.focus({ preventScroll: true });
  }

  launcher.addEventListener("click", () => (state.isOpen ? closePanel() : openPanel()));
  closeBtn.addEventListener("click", () => closePanel());
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closePanel();
    }
  });

  // ---------------------------------------------------------------------------
  // Boot
  // ---------------------------------------------------------------------------

  function mount() {
    if (!host.isConnected) (document.body || document.documentElement).appendChild(host);
    updateEmptyState();
    updateComposer();
    restoreOutbox();
    const reopen = storage.get("sessionStorage", SS_OPEN) === "1";
    if (OPEN_AT_LOAD || reopen) {
      // Do not steal focus from the host page at load time.
      openPanel({ focus: false });
    } else if (state.session || state.outbox.length) {
      // Returning visitor (or unsent messages): connect now so agent replies and unread counts arrive.
      ensureConnected();
    }
    // First-time visitors connect lazily when they open the panel or send something.
  }

  function setIdentity(identity) {
    const next =
      identity && typeof identity.customerId === "string" && typeof identity.customerHash === "string"
        ? { customer_id: identity.customerId, hash: identity.customerHash }
        : null;
    const same =
      (next === null && state.identity === null) ||
      (next && state.identity && next.customer_id === state.identity.customer_id && next.hash === state.identity.hash);
    if (same) return;
    state.identity = next;
    // The server answers with a welcome: the same conversation (a guest logging in) or a new one.
    if (state.ready) wsSend({ type: "identify", identity: next });
  }

  window.autoresponder = {
    identify: (identity) => setIdentity(identity || null),
    logout: () => setIdentity(null),
  };

  window.AutoResponderWidget = {
    __loaded: true,
    version: "1.0.0",
    locale: LOCALE,
    server: server.httpBase,
    open: () => openPanel(),
    close: () => closePanel(),
    toggle: () => (state.isOpen ? closePanel() : openPanel()),
    send: (text) => sendText(text),
    socket: () => state.ws,
    state: () => ({
      open: state.isOpen,
      connected: !!(state.ws && state.ws.readyState === SOCKET_OPEN),
      ready: state.ready,
      mode: state.mode,
      conversationId: state.conversationId,
      lastSeq: state.newestSeq,
      pending: state.outbox.slice(),
    }),
  };

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount, { once: true });
})();
