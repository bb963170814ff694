/*
 * The agent console: sign in with your account's name and password (a server-side session behind an
 * HttpOnly cookie; state-changing calls carry the session's CSRF token), watch the handoff queue and the
 * conversations you hold, read a conversation with its customer and orders, take it, answer, hand it back.
 * Supervisors also see the figures and take over or reassign conversations. The name shown and recorded
 * is the account's, from the session.
 *
 * Plain JavaScript, no build step. Everything that comes from the server (customer messages above all)
 * is put into the page with textContent / DOM APIs, never as markup.
 */
(function () {
  "use strict";

  const LIST_POLL_MS = 3000;
  const CONV_POLL_MS = 2000;
  const STATS_POLL_MS = 15000;
  const TOP_PRIORITY = 9; // bot.store.MAX_PRIORITY: the queue marks it as top_priority
  const SKILLS = ["logistics", "after_sales", "billing", "complaints", "general"];
  // sessionStorage keeps no secret: the account name (to prefill the form), whether this tab was signed in
  // (so that a reload after the session ended says so), the skill filter and the auto-assign switch.
  const STORE = { agent: "ar-console-agent", session: "ar-console-signed-in", skill: "ar-console-skill", auto: "ar-console-auto" };
  const CSRF_HEADER = "X-CSRF-Token";
  const CAPACITY = 3; // conversations held at once while taking them automatically
  const LANG_KEY = "ar-console-lang";

  const I18N = {
    zh: {
      title: "客服工作台",
      signInTitle: "登录客服工作台",
      signInHint: "请输入管理员为您创建的账号名和密码。",
      agentName: "账号",
      agentPassword: "密码",
      signIn: "登录",
      signingIn: "正在登录…",
      signOut: "退出",
      signedInAs: "{role}：{agent}",
      roles: { agent: "客服", supervisor: "主管", admin: "管理员" },
      needName: "请输入账号名。",
      needPassword: "请输入密码。",
      badPassword: "账号或密码错误，请检查后重试。",
      locked: "密码错误次数过多，账号已暂时锁定。请稍后再试，或联系管理员解锁。",
      tooMany: "登录尝试过于频繁，请 {t} 后再试。",
      sessionExpired: "登录已失效（已退出、超时或被管理员更改），请重新登录。",
      signedOut: "您已退出登录。",
      errorForbidden: "无权执行此操作（403）：{detail}",
      takeOver: "接管",
      reassignTo: "改派给",
      reassign: "改派",
      reassignPlaceholder: "客服账号名",
      team: "团队",
      available: "自动接单中",
      holdsNone: "没有会话",
      networkError: "无法连接服务器，请稍后再试。",
      queue: "排队中",
      mine: "我的会话",
      allSkills: "全部技能组",
      queueEmpty: "暂无排队的会话",
      mineEmpty: "您还没有接入的会话",
      pickConversation: "从左侧选择一个会话",
      loading: "正在加载…",
      guest: "访客",
      topPriority: "最高优先级",
      priority: "优先级 {p}",
      waited: "已等待 {t}",
      lastActive: "最近活动 {t}",
      updated: "已更新 {t}",
      offline: "连接中断，正在重试…",
      take: "接入",
      handBack: "交还机器人",
      send: "发送",
      sending: "发送中…",
      replyPlaceholder: "输入回复…",
      replyHint: "Enter 发送，Shift+Enter 换行",
      replyHintWaiting: "Enter 发送，Shift+Enter 换行；发送即接入此会话",
      replyBot: "会话由机器人处理中",
      replyOther: "会话正由 {agent} 处理",
      reason: "原因",
      skill: "技能组",
      summary: "摘要",
      customer: "客户",
      customerId: "客户编号",
      locale: "语言",
      channel: "渠道",
      guestCard: "访客，未关联 CRM 客户",
      orders: "订单",
      noOrders: "该客户没有订单",
      guestOrders: "访客没有关联的订单",
      carrier: "承运商",
      tracking: "运单号",
      amount: "金额",
      purchased: "下单日期",
      quantity: "数量",
      modeBot: "机器人处理中",
      modeWaiting: "排队中",
      modeAgent: "人工：{agent}",
      role_customer: "客户",
      role_bot: "机器人",
      role_agent: "客服",
      role_system: "系统",
      role_note: "内部备注",
      autoOff: "开始自动接单",
      autoOn: "自动接单中 · {n}/{c}",
      autoTitle: "开启后，系统按技能组（左上角的筛选）和负载自动把排队会话分配给您，最多同时 {c} 个。",
      noteMode: "内部备注（客户看不到）",
      addNote: "添加备注",
      notePlaceholder: "写给同事的备注，客户看不到…",
      transfer: "转派",
      transferTo: "转派到",
      transferReason: "转派原因（选填）",
      errorStatus: "操作失败（{status}）：{detail}",
      errorConflict: "冲突（409）：{detail}",
      errorNotFound: "会话不存在（404）",
      seconds: "{n} 秒",
      minutes: "{n} 分钟",
      hours: "{h} 小时 {m} 分",
      langToggle: "EN",
      langToggleTitle: "Switch to English",
      reviewToggle: "待复盘",
      reviewBack: "返回工作台",
      reviewTitle: "待复盘：机器人可能没听懂的消息",
      reviewHint:
        "建议每周复盘一次：为每条消息选出正确的意图并点“归类”；与本店业务无关的点“超出范围”，无从判断的点“忽略”。消息已脱敏；归类的例句写入 data/nlu/reviewed/reviewed.yml，下次运行 autoresponder train 时学习。",
      reviewEmpty: "没有待复盘的消息",
      reviewMore: "加载更多",
      reviewAll: "全部原因",
      reviewIntent: "正确的意图",
      reviewAssign: "归类",
      reviewOutOfScope: "超出范围",
      reviewDismiss: "忽略",
      reviewPredicted: "预测：{intent} · {p}",
      reviewCount: "出现 {n} 次",
      reviewSeen: "最近一次 {t}",
      reviewReasons: { low_confidence: "置信度低", fallback: "未识别（兜底回复）", follow_up: "客户追问", handoff: "转人工" },
      reasons: {
        requested: "客户要求人工",
        followups: "多次追问未解决",
        sentiment: "客户情绪激动",
        vip_complaint: "VIP 客户投诉",
        low_csat: "满意度低，主管回访",
      },
      sla_ok: "首次响应剩余 {t}",
      sla_due_soon: "即将超时：剩余 {t}",
      sla_overdue: "首次响应已超时 {t}",
      sla_escalated: "超时已升级 · {t}",
      sla_met: "已按时响应",
      sla_missed: "响应超时",
      slaTitle: "首次响应时限（SLA）",
      statsWaiting: "排队 {n}",
      statsOverdue: "超时 {n}",
      statsFirst: "首次响应中位数 {t}",
      statsWithin: "按时率 {p}",
      statsCsat: "满意度 {avg}（{n} 份）",
      statsTitle: "最近 24 小时",
      statsNone: "—",
      skills: { logistics: "物流", after_sales: "售后", billing: "支付与发票", complaints: "投诉", general: "综合" },
      channels: { webchat: "网页聊天", telegram: "Telegram", email: "邮件", rest: "应用 (REST)" },
      statuses: {
        paid: "已付款",
        shipped: "已发货",
        delayed: "配送延误",
        delivered: "已签收",
        returned: "已退货",
        refunding: "退款中",
        refunded: "已退款",
        cancelled: "已取消",
      },
      locales: { "zh-CN": "简体中文", "zh-TW": "繁體中文", en: "English" },
    },
    en: {
      title: "Agent console",
      signInTitle: "Sign in to the agent console",
      signInHint: "Enter the account name and password an admin created for you.",
      agentName: "Account",
      agentPassword: "Password",
      signIn: "Sign in",
      signingIn: "Signing in…",
      signOut: "Sign out",
      signedInAs: "{role}: {agent}",
      roles: { agent: "Agent", supervisor: "Supervisor", admin: "Admin" },
      needName: "Please enter your account name.",
      needPassword: "Please enter your password.",
      badPassword: "Wrong account name or password. Check them and try again.",
      locked: "Too many wrong passwords: the account is locked for now. Try again later or ask an admin to unlock it.",
      tooMany: "Too many sign-in attempts. Try again in {t}.",
      sessionExpired: "Your session has ended (signed out, timed out or changed by an admin). Please sign in again.",
      signedOut: "You have signed out.",
      errorForbidden: "Not allowed (403): {detail}",
      takeOver: "Take over",
      reassignTo: "Reassign to",
      reassign: "Reassign",
      reassignPlaceholder: "agent's account name",
      team: "Team",
      available: "taking conversations",
      holdsNone: "no conversations",
      networkError: "The server cannot be reached. Try again shortly.",
      queue: "Queue",
      mine: "Mine",
      allSkills: "All skills",
      queueEmpty: "Nobody is waiting",
      mineEmpty: "You hold no conversation",
      pickConversation: "Pick a conversation on the left",
      loading: "Loading…",
      guest: "Guest",
      topPriority: "Top priority",
      priority: "Priority {p}",
      waited: "waiting {t}",
      lastActive: "active {t}",
      updated: "Updated {t}",
      offline: "Connection lost, retrying…",
      take: "Take",
      handBack: "Hand back to bot",
      send: "Send",
      sending: "Sending…",
      replyPlaceholder: "Type your answer…",
      replyHint: "Enter sends, Shift+Enter starts a new line",
      replyHintWaiting: "Enter sends, Shift+Enter starts a new line; sending takes the conversation",
      replyBot: "The bot is handling this conversation",
      replyOther: "{agent} is handling this conversation",
      reason: "Reason",
      skill: "Skill",
      summary: "Summary",
      customer: "Customer",
      customerId: "Customer id",
      locale: "Language",
      channel: "Channel",
      guestCard: "Guest, not linked to a CRM customer",
      orders: "Orders",
      noOrders: "This customer has no orders",
      guestOrders: "Guests have no linked orders",
      carrier: "Carrier",
      tracking: "Tracking no.",
      amount: "Amount",
      purchased: "Purchased",
      quantity: "Quantity",
      modeBot: "With the bot",
      modeWaiting: "Waiting",
      modeAgent: "With {agent}",
      role_customer: "Customer",
      role_bot: "Bot",
      role_agent: "Agent",
      role_system: "System",
      role_note: "Internal note",
      autoOff: "Take conversations automatically",
      autoOn: "Taking conversations · {n}/{c}",
      autoTitle: "When on, waiting conversations of your skill (the filter above) are given to you by load, up to {c} at once.",
      noteMode: "Internal note (the customer never sees it)",
      addNote: "Add note",
      notePlaceholder: "A note for colleagues; the customer never sees it…",
      transfer: "Transfer",
      transferTo: "Transfer to",
      transferReason: "Reason (optional)",
      errorStatus: "Failed ({status}): {detail}",
      errorConflict: "Conflict (409): {detail}",
      errorNotFound: "No such conversation (404)",
      seconds: "{n} s",
      minutes: "{n} min",
      hours: "{h} h {m} min",
      langToggle: "中文",
      langToggleTitle: "切换到中文",
      reviewToggle: "Review",
      reviewBack: "Back to the desk",
      reviewTitle: "Review: messages the assistant may have misunderstood",
      reviewHint:
        "Once a week: pick the right intent for each message and press Assign; Out of scope for what the shop does not answer, Dismiss when there is nothing to learn. Texts are masked; assigned examples go to data/nlu/reviewed/reviewed.yml and are learnt at the next autoresponder train.",
      reviewEmpty: "Nothing to review",
      reviewMore: "Load more",
      reviewAll: "All reasons",
      reviewIntent: "Right intent",
      reviewAssign: "Assign",
      reviewOutOfScope: "Out of scope",
      reviewDismiss: "Dismiss",
      reviewPredicted: "predicted: {intent} · {p}",
      reviewCount: "seen {n}×",
      reviewSeen: "last {t}",
      reviewReasons: { low_confidence: "Low confidence", fallback: "Not understood (fallback)", follow_up: "Customer followed up", handoff: "Handed off" },
      reasons: {
        requested: "Asked for an agent",
        followups: "Repeated follow-ups",
        sentiment: "Upset customer",
        vip_complaint: "VIP complaint",
        low_csat: "Low satisfaction: supervisor follow-up",
      },
      sla_ok: "first answer due in {t}",
      sla_due_soon: "due soon: {t} left",
      sla_overdue: "first answer overdue by {t}",
      sla_escalated: "escalated · overdue by {t}",
      sla_met: "answered in time",
      sla_missed: "answered late",
      slaTitle: "First-response target (SLA)",
      statsWaiting: "Waiting {n}",
      statsOverdue: "Overdue {n}",
      statsFirst: "First answer median {t}",
      statsWithin: "In time {p}",
      statsCsat: "CSAT {avg} ({n})",
      statsTitle: "Last 24 hours",
      statsNone: "—",
      skills: {
        logistics: "Logistics",
        after_sales: "After-sales",
        billing: "Billing",
        complaints: "Complaints",
        general: "General",
      },
      channels: { webchat: "Web chat", telegram: "Telegram", email: "Email", rest: "App (REST)" },
      statuses: {
        paid: "Paid",
        shipped: "Shipped",
        delayed: "Delayed",
        delivered: "Delivered",
        returned: "Returned",
        refunding: "Refunding",
        refunded: "Refunded",
        cancelled: "Cancelled",
      },
      locales: { "zh-CN": "Simplified Chinese", "zh-TW": "Traditional Chinese", en: "English" },
    },
  };

  // --- small helpers ---------------------------------------------------------------------------

  function storedLang() {
    try {
      const saved = localStorage.getItem(LANG_KEY);
      if (saved === "zh" || saved === "en") return saved;
    } catch (e) {
      /* storage may be off */
    }
    return /^zh\b/i.test(navigator.language || "") ? "zh" : "en";
  }

  let lang = storedLang();

  function t(key, vars) {
    const table = I18N[lang];
    let text = key in table ? table[key] : I18N.en[key] !== undefined ? I18N.en[key] : key;
    if (vars) {
      for (const name of Object.keys(vars)) text = text.split("{" + name + "}").join(String(vars[name]));
    }
    return text;
  }

  /** A label from one of the translated tables, or the raw value when unknown. */
  function label(table, value) {
    const names = I18N[lang][table];
    return value != null && Object.prototype.hasOwnProperty.call(names, value) ? names[value] : String(value ?? "");
  }

  /** Build an element; `text` is always set as textContent. */
  function el(tag, opts, children) {
    const node = document.createElement(tag);
    const o = opts || {};
    if (o.cls) node.className = o.cls;
    if (o.text !== undefined && o.text !== null) node.textContent = String(o.text);
    if (o.title) node.title = String(o.title);
    if (o.testid) node.dataset.testid = o.testid;
    if (o.data) for (const k of Object.keys(o.data)) node.dataset[k] = String(o.data[k]);
    if (o.attrs) for (const k of Object.keys(o.attrs)) node.setAttribute(k, String(o.attrs[k]));
    for (const child of children || []) if (child) node.append(child);
    return node;
  }

  const $ = (id) => document.getElementById(id);

  function storage(key, value) {
    try {
      if (value === undefined) return sessionStorage.getItem(key);
      if (value === null) sessionStorage.removeItem(key);
      else sessionStorage.setItem(key, value);
    } catch (e) {
      /* storage may be off: the session then lasts as long as the page */
    }
    return null;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return t("seconds", { n: s });
    if (s < 3600) return t("minutes", { n: Math.floor(s / 60) });
    return t("hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  }

  function clock(ts) {
    const when = new Date(ts * 1000);
    const tag = lang === "zh" ? "zh-CN" : "en-GB";
    const time = when.toLocaleTimeString(tag, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
    if (when.toDateString() === new Date().toDateString()) return time;
    return when.toLocaleDateString(tag, { month: "2-digit", day: "2-digit" }) + " " + time;
  }

  function clip(text, max) {
    const s = String(text || "");
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  // --- state -----------------------------------------------------------------------------------

  const state = {
    signedIn: false,
    agent: storage(STORE.agent) || "", // the account name, from the session (kept only to prefill the form)
    role: "",
    csrf: "", // the session's CSRF token: in memory only, fetched again after a reload
    skill: storage(STORE.skill) || "",
    queue: [],
    queueAt: 0,
    stats: null, // last GET /agent/stats
    statsAt: 0,
    auto: storage(STORE.auto) === "1", // taking conversations automatically (presence heartbeat on)
    mine: [],
    team: [], // supervisors: GET /agent/team (every account, what it holds)
    selected: null, // conversation id
    detail: null, // last GET /agent/conversations/{id}
    shownSeqs: new Set(),
    busy: false,
    run: 0, // bumped at every sign-in and sign-out: stale polls stop themselves
    timers: { lists: 0, conv: 0 },
    convRun: 0,
    // supervisors and admins: the review list (GET /agent/review) and the intents it may be assigned
    review: { open: false, reason: "", items: [], total: 0, next: null, intents: [], error: "" },
  };

  class AuthError extends Error {}

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
      this.detail = detail;
    }
  }

  function detailOf(data) {
    if (!data || data.detail === undefined) return "";
    if (typeof data.detail === "string") return data.detail;
    if (Array.isArray(data.detail)) return data.detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ");
    return JSON.stringify(data.detail);
  }

  async function request(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && state.csrf) headers[CSRF_HEADER] = state.csrf;
    let resp;
    try {
      // The session cookie is HttpOnly and SameSite=Strict: the page never sees it, the browser sends it.
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (e) {
      throw new ApiError(0, t("networkError"));
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (resp.status === 401) throw new AuthError(detailOf(data));
    if (!resp.ok) {
      const error = new ApiError(resp.status, detailOf(data) || resp.statusText);
      error.retryAfter = Number(resp.headers.get("Retry-After") || 0);
      throw error;
    }
    return data;
  }

  /** Call the agent API in the session; a 401 (the session ended) sends the agent back to the sign-in form. */
  async function api(method, path, body) {
    try {
      return await request(method, path, body);
    } catch (e) {
      if (e instanceof AuthError) signOut(t("sessionExpired"));
      throw e;
    }
  }

  function describeError(e) {
    if (e instanceof ApiError) {
      if (e.status === 0) return e.detail;
      if (e.status === 404) return t("errorNotFound");
      if (e.status === 409) return t("errorConflict", { detail: e.detail });
      if (e.status === 403) return t("errorForbidden", { detail: e.detail });
      return t("errorStatus", { status: e.status, detail: e.detail });
    }
    return String((e && e.message) || e);
  }

  // --- sign in / out ---------------------------------------------------------------------------

  function showSignIn(message) {
    $("desk").hidden = true;
    $("signin-view").hidden = false;
    $("sign-out").hidden = true;
    $("whoami").hidden = true;
    $("agent-name").value = state.agent;
    $("agent-password").value = "";
    const error = $("signin-error");
    error.textContent = message || "";
    error.hidden = !message;
    (state.agent ? $("agent-password") : $("agent-name")).focus();
  }

  function supervising() {
    return state.role === "supervisor" || state.role === "admin";
  }

  function stopPolling() {
    state.run += 1;
    clearTimeout(state.timers.lists);
    clearTimeout(state.timers.conv);
  }

  /** Leave the desk. `endSession`: ask the server to end the session too (the Sign out button). */
  async function signOut(message, endSession) {
    const wasSignedIn = state.signedIn;
    stopPolling();
    state.signedIn = false;
    if (wasSignedIn && state.auto) {
      // Best effort and without the sign-out on 401 that api() does: the heartbeat lapses anyway.
      await request("POST", "/agent/presence", { available: false }).catch(() => {});
    }
    if (wasSignedIn && endSession) await request("POST", "/auth/sign-out").catch(() => {});
    state.auto = false;
    storage(STORE.auto, null);
    storage(STORE.session, null);
    state.csrf = "";
    state.role = "";
    state.selected = null;
    state.detail = null;
    state.stats = null;
    state.statsAt = 0;
    state.review = { open: false, reason: "", items: [], total: 0, next: null, intents: [], error: "" };
    $("review-view").hidden = true;
    renderStats();
    renderReviewToggle();
    showSignIn(message);
  }

  function signInError(e) {
    if (e instanceof AuthError) return t("badPassword");
    if (e instanceof ApiError && e.status === 423) return t("locked");
    if (e instanceof ApiError && e.status === 429) return t("tooMany", { t: duration(e.retryAfter || 60) });
    return describeError(e);
  }

  async function onSignIn(event) {
    event.preventDefault();
    const name = $("agent-name").value.trim();
    const password = $("agent-password").value;
    const error = $("signin-error");
    error.hidden = true;
    if (!name || !password) {
      error.textContent = t(name ? "needPassword" : "needName");
      error.hidden = false;
      return;
    }
    const button = $("sign-in");
    button.disabled = true;
    button.textContent = t("signingIn");
    let me;
    try {
      me = await request("POST", "/auth/sign-in", { name, password });
    } catch (e) {
      error.textContent = signInError(e);
      error.hidden = false;
      $("agent-password").value = "";
      return;
    } finally {
      button.disabled = false;
      button.textContent = t("signIn");
    }
    $("agent-password").value = "";
    enterDesk(me);
  }

  /** The session the server says this browser has (name, role, CSRF token) opens the desk. */
  function enterDesk(me) {
    state.agent = me.name;
    state.role = me.role;
    state.csrf = me.csrf_token || "";
    state.signedIn = true;
    storage(STORE.agent, me.name);
    storage(STORE.session, "1");
    startDesk();
  }

  async function resume() {
    try {
      enterDesk(await request("GET", "/auth/session"));
    } catch (e) {
      const ended = e instanceof AuthError && storage(STORE.session) === "1";
      storage(STORE.session, null);
      showSignIn(ended ? t("sessionExpired") : e instanceof AuthError ? "" : describeError(e));
    }
  }

  function startDesk() {
    stopPolling();
    $("signin-view").hidden = true;
    $("desk").hidden = false;
    $("sign-out").hidden = false;
    $("whoami").hidden = false;
    $("review-view").hidden = true;
    state.review.open = false;
    renderWhoami();
    renderReviewToggle();
    renderConversation();
    listsLoop(state.run);
  }

  function renderWhoami() {
    const who = $("whoami");
    who.textContent = t("signedInAs", { agent: state.agent, role: label("roles", state.role) });
    who.dataset.role = state.role;
  }

  // --- polling ---------------------------------------------------------------------------------

  async function refreshLists() {
    const run = state.run;
    const queuePath = "/agent/queue" + (state.skill ? "?skill=" + encodeURIComponent(state.skill) : "");
    const minePath = "/agent/conversations";
    try {
      // The figures cost more to compute than the lists and change slowly: every STATS_POLL_MS; supervisors only.
      const statsDue = supervising() && Date.now() - state.statsAt >= STATS_POLL_MS;
      if (state.auto) await sendPresence(true); // the heartbeat that keeps this agent available
      const [queue, mine, stats, team] = await Promise.all([
        api("GET", queuePath),
        api("GET", minePath),
        statsDue ? api("GET", "/agent/stats?hours=24") : Promise.resolve(state.stats),
        supervising() ? api("GET", "/agent/team") : Promise.resolve([]),
      ]);
      if (run !== state.run) return;
      state.team = team;
      state.queue = queue;
      state.queueAt = Date.now();
      state.mine = mine;
      state.stats = stats;
      if (statsDue) state.statsAt = Date.now();
      renderLists();
      renderStats();
      const status = $("poll-status");
      status.classList.remove("offline");
      status.textContent = t("updated", { t: clock(Date.now() / 1000) });
    } catch (e) {
      if (e instanceof AuthError || run !== state.run) return;
      const status = $("poll-status");
      status.classList.add("offline");
      status.textContent = e instanceof ApiError && e.status === 0 ? t("offline") : describeError(e);
    }
  }

  async function listsLoop(run) {
    if (run !== state.run) return;
    await refreshLists();
    if (run !== state.run) return;
    clearTimeout(state.timers.lists);
    state.timers.lists = setTimeout(() => listsLoop(run), LIST_POLL_MS);
  }

  async function refreshConversation() {
    const id = state.selected;
    const run = state.run;
    if (!id) return;
    try {
      const detail = await api("GET", "/agent/conversations/" + encodeURIComponent(id));
      if (run !== state.run || id !== state.selected) return;
      state.detail = detail;
      renderConversation();
    } catch (e) {
      if (e instanceof AuthError || run !== state.run || id !== state.selected) return;
      showConvError(describeError(e));
    }
  }

  async function convLoop(run, convRun) {
    if (run !== state.run || convRun !== state.convRun) return;
    await refreshConversation();
    if (run !== state.run || convRun !== state.convRun) return;
    clearTimeout(state.timers.conv);
    state.timers.conv = setTimeout(() => convLoop(run, convRun), CONV_POLL_MS);
  }

  function select(id) {
    if (state.selected !== id) {
      state.selected = id;
      state.detail = null;
      state.shownSeqs = new Set();
      $("transcript").replaceChildren();
      $("reply-text").value = "";
      showConvError("");
    }
    renderLists();
    renderConversation();
    state.convRun += 1;
    clearTimeout(state.timers.conv);
    convLoop(state.run, state.convRun);
  }

  // --- lists -----------------------------------------------------------------------------------

  function priorityChip(priority, top) {
    return el("span", {
      cls: "chip priority" + (top ? " top" : ""),
      text: top ? "P" + priority + " · " + t("topPriority") : "P" + priority,
      title: top ? t("topPriority") : t("priority", { p: priority }),
      testid: "priority",
    });
  }

  /** The first-response timer of a handoff; `elapsed` seconds have passed since the server computed it. */
  function slaChip(sla, elapsed) {
    if (!sla) return null;
    const left = sla.seconds_left - (elapsed || 0);
    let kind = sla.state;
    if (kind === "ok" || kind === "due_soon") kind = left <= 0 ? "overdue" : kind;
    const text = t("sla_" + kind, { t: duration(Math.abs(left)) });
    return el("span", { cls: "chip sla " + kind, text, title: t("slaTitle"), testid: "sla", data: { state: kind } });
  }

  // Presence calls go out one after another, so that a heartbeat still in flight can never land after
  // the "off" and make the agent available again; a heartbeat due after the switch-off is not sent.
  let presenceChain = Promise.resolve();

  function sendPresence(available) {
    const next = presenceChain
      .catch(() => {})
      .then(() => {
        if (available !== state.auto) return null; // switched meanwhile: this call is stale
        const body = { available, capacity: CAPACITY };
        if (state.skill) body.skills = [state.skill];
        return api("POST", "/agent/presence", body);
      });
    presenceChain = next;
    return next;
  }

  async function toggleAuto() {
    const want = !state.auto;
    state.auto = want;
    renderAuto();
    try {
      await sendPresence(want);
      storage(STORE.auto, want ? "1" : null);
      refreshLists();
    } catch (e) {
      state.auto = !want;
      renderAuto();
      if (!(e instanceof AuthError)) $("poll-status").textContent = describeError(e);
    }
  }

  function renderAuto() {
    const button = $("auto-assign");
    button.dataset.on = String(state.auto);
    button.setAttribute("aria-pressed", String(state.auto));
    button.textContent = state.auto ? t("autoOn", { n: state.mine.length, c: CAPACITY }) : t("autoOff");
    button.title = t("autoTitle", { c: CAPACITY });
  }

  function renderStats() {
    const s = state.stats;
    const box = $("stats");
    if (!s || !supervising()) {
      box.hidden = true;
      return;
    }
    const none = t("statsNone");
    const fr = s.first_response;
    const csat = s.csat;
    const item = (text, testid, warn) => el("span", { cls: "stat" + (warn ? " warn" : ""), text, testid });
    box.replaceChildren(
      item(t("statsWaiting", { n: s.queue.waiting }), "stat-waiting"),
      item(t("statsOverdue", { n: s.queue.overdue }), "stat-overdue", s.queue.overdue > 0),
      item(t("statsFirst", { t: fr.median_seconds == null ? none : duration(fr.median_seconds) }), "stat-first"),
      item(t("statsWithin", { p: fr.within_target == null ? none : Math.round(fr.within_target * 100) + "%" }), "stat-within"),
      item(t("statsCsat", { avg: csat.average == null ? none : csat.average.toFixed(1), n: csat.responses }), "stat-csat"),
    );
    box.title = t("statsTitle");
    box.hidden = false;
  }

  function vipChip(customer) {
    if (!customer || !customer.vip) return null;
    return el("span", { cls: "chip vip", text: "VIP", testid: "vip", title: "VIP " + (customer.vip_level || "") });
  }

  function listItem(id, testid, top, rows) {
    const li = el("li", {
      cls: "item" + (id === state.selected ? " selected" : "") + (top ? " top" : ""),
      testid,
      data: { conversationId: id },
    });
    const button = el("button", { cls: "item-btn", attrs: { type: "button" } }, rows);
    button.addEventListener("click", () => select(id));
    li.append(button);
    return li;
  }

  function renderLists() {
    const elapsed = (Date.now() - state.queueAt) / 1000;
    const queue = state.queue.map((e) => {
      const li = listItem(e.conversation_id, "queue-item", e.top_priority, [
        el("div", { cls: "row" }, [
          priorityChip(e.priority, e.top_priority),
          vipChip(e.customer),
          el("span", { cls: "name", text: e.customer ? e.customer.name : t("guest"), testid: "name" }),
          el("span", { cls: "waited", text: t("waited", { t: duration(e.waited_seconds + elapsed) }), testid: "waited" }),
        ]),
        el("div", { cls: "row" }, [
          slaChip(e.sla, elapsed),
          el("span", { cls: "chip", text: label("channels", e.channel), testid: "channel", data: { value: e.channel } }),
          el("span", { cls: "chip", text: label("skills", e.skill), testid: "skill", data: { value: e.skill } }),
          el("span", { cls: "chip reason", text: label("reasons", e.reason), testid: "reason", data: { value: e.reason } }),
        ]),
        el("div", { cls: "summary", text: clip(e.summary, 160), title: e.summary, testid: "summary" }),
      ]);
      li.dataset.priority = String(e.priority);
      li.dataset.vip = String(Boolean(e.customer && e.customer.vip));
      return li;
    });
    $("queue-list").replaceChildren(...queue);
    $("queue-count").textContent = String(state.queue.length);
    $("queue-empty").hidden = state.queue.length > 0;

    const mine = state.mine.map((c) => {
      const h = c.handoff;
      return listItem(c.conversation_id, "mine-item", false, [
        el("div", { cls: "row" }, [
          vipChip(c.customer),
          el("span", { cls: "name", text: c.customer ? c.customer.name : t("guest"), testid: "name" }),
          el("span", { cls: "waited", text: t("lastActive", { t: clock(c.updated_at) }) }),
        ]),
        el("div", { cls: "row" }, [
          c.sla && !h.first_response_at ? slaChip(c.sla, elapsed) : null,
          el("span", { cls: "chip", text: label("channels", c.channel), testid: "channel" }),
          h ? el("span", { cls: "chip", text: label("skills", h.skill) }) : null,
          h ? el("span", { cls: "chip reason", text: label("reasons", h.reason) }) : null,
        ]),
      ]);
    });
    $("mine-list").replaceChildren(...mine);
    renderAuto();
    $("mine-count").textContent = String(state.mine.length);
    $("mine-empty").hidden = state.mine.length > 0;
    renderTeam(elapsed);
  }

  /** Supervisors: every colleague with what they hold, each conversation one click away. */
  function renderTeam(elapsed) {
    const panel = $("team-panel");
    panel.hidden = !supervising();
    if (panel.hidden) return;
    const others = state.team.filter((m) => m.agent !== state.agent);
    const items = [];
    for (const m of others) {
      items.push(
        el("li", { cls: "team-member", testid: "team-member", data: { agent: m.agent, role: m.role } }, [
          el("span", { text: m.agent }),
          el("span", { cls: "chip", text: label("roles", m.role) }),
          m.available ? el("span", { cls: "chip", text: t("available") }) : null,
          m.holding.length ? null : el("span", { cls: "muted", text: t("holdsNone") }),
        ]),
      );
      for (const c of m.holding) {
        items.push(
          listItem(c.conversation_id, "team-item", false, [
            el("div", { cls: "row" }, [
              vipChip(c.customer),
              el("span", { cls: "name", text: c.customer ? c.customer.name : t("guest"), testid: "name" }),
              el("span", { cls: "waited", text: t("lastActive", { t: clock(c.updated_at) }) }),
            ]),
            el("div", { cls: "row" }, [
              c.sla && c.handoff && !c.handoff.first_response_at ? slaChip(c.sla, elapsed) : null,
              el("span", { cls: "chip", text: label("channels", c.channel) }),
            ]),
          ]),
        );
      }
    }
    $("team-list").replaceChildren(...items);
    $("team-count").textContent = String(others.length);
  }

  // --- conversation ----------------------------------------------------------------------------

  function showConvError(message) {
    const box = $("conv-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  function messageItem(m) {
    const role = ["customer", "bot", "agent", "system", "note"].includes(m.role) ? m.role : "system";
    const named = (role === "agent" || role === "note") && m.agent_name;
    const who = named ? t("role_" + role) + " · " + m.agent_name : t("role_" + role);
    const meta = el("div", { cls: "meta" }, [
      el("span", { cls: "who", text: who }),
      el("time", { text: clock(m.ts), attrs: { datetime: new Date(m.ts * 1000).toISOString() } }),
    ]);
    if (role === "bot" && m.template) {
      const version = m.template_version != null ? " v" + m.template_version : "";
      meta.append(el("span", { cls: "template", text: m.template + version, testid: "template" }));
    }
    const text = m.display_text !== undefined && m.display_text !== null ? m.display_text : m.text;
    const li = el("li", { cls: "msg " + role, testid: "message", data: { role, seq: m.seq } }, [
      meta,
      el("div", { cls: "bubble", text, testid: "message-text" }),
    ]);
    if (Array.isArray(m.buttons) && m.buttons.length) {
      li.append(el("div", { cls: "buttons" }, m.buttons.map((b) => el("span", { cls: "chip", text: b.title }))));
    }
    return li;
  }

  function renderTranscript(transcript) {
    const list = $("transcript");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const seqs = new Set(transcript.map((m) => m.seq));
    const stale = [...state.shownSeqs].some((s) => !seqs.has(s));
    const first = stale || state.shownSeqs.size === 0;
    if (stale) {
      list.replaceChildren();
      state.shownSeqs = new Set();
    }
    let added = false;
    for (const m of transcript) {
      if (state.shownSeqs.has(m.seq)) continue;
      list.append(messageItem(m));
      state.shownSeqs.add(m.seq);
      added = true;
    }
    if (added && (nearBottom || first)) list.scrollTop = list.scrollHeight;
  }

  function renderHandoff(h, sla) {
    const box = $("handoff");
    if (!h) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    $("handoff-tags").replaceChildren(
      el("span", { cls: "chip reason", text: t("reason") + ": " + label("reasons", h.reason), testid: "handoff-reason" }),
      el("span", { cls: "chip", text: t("skill") + ": " + label("skills", h.skill), testid: "handoff-skill" }),
      priorityChip(h.priority, h.priority >= TOP_PRIORITY),
      slaChip(sla, 0),
    );
    $("handoff-summary").textContent = h.summary ? t("summary") + ": " + h.summary : "";
  }

  function renderCustomer(detail) {
    const conv = detail.conversation;
    const customer = detail.customer;
    const card = $("customer-card");
    const rows = [];
    const kv = (key, value, testid) => {
      rows.push(el("dt", { text: t(key) }), el("dd", { text: value, testid }));
    };
    const head = el("p", { cls: "customer-name", testid: "customer-name" }, [
      el("span", { text: customer ? customer.name : t("guest") }),
      vipChip(customer),
    ]);
    if (customer) kv("customerId", customer.id, "customer-id");
    kv("channel", label("channels", conv.channel), "customer-channel");
    kv("locale", label("locales", conv.locale || (customer && customer.locale) || "zh-CN"), "customer-locale");
    const children = [head];
    if (!customer) children.push(el("p", { cls: "muted", text: t("guestCard") }));
    children.push(el("dl", { cls: "kv" }, rows));
    card.replaceChildren(...children);
    card.dataset.vip = String(Boolean(customer && customer.vip));

    const orders = detail.orders || [];
    $("orders").replaceChildren(
      ...orders.map((o) => {
        const facts = [];
        const fact = (key, value) => {
          if (value === null || value === undefined || value === "") return;
          facts.push(el("dt", { text: t(key) }), el("dd", { text: value }));
        };
        fact("quantity", o.quantity);
        fact("carrier", o.carrier);
        fact("tracking", o.tracking_number);
        fact("amount", o.amount + " " + o.currency);
        fact("purchased", o.purchase_date);
        return el("li", { cls: "order", testid: "order", data: { orderId: o.id, status: o.status } }, [
          el("div", { cls: "row" }, [
            el("span", { cls: "order-id", text: o.id }),
            el("span", { cls: "chip status", text: label("statuses", o.status) }),
          ]),
          el("div", { cls: "product", text: o.product }),
          el("dl", { cls: "kv" }, facts),
        ]);
      }),
    );
    $("orders-count").textContent = String(orders.length);
    const empty = $("orders-empty");
    empty.hidden = orders.length > 0;
    empty.textContent = customer ? t("noOrders") : t("guestOrders");
  }

  function renderConversation() {
    const detail = state.detail;
    $("conv-placeholder").hidden = Boolean(state.selected);
    $("conv-placeholder").textContent = t("pickConversation");
    $("conv-view").hidden = !state.selected;
    $("context").hidden = !state.selected;
    if (!state.selected) return;
    if (!detail) {
      $("conv-title").textContent = t("loading");
      $("conv-sub").textContent = "";
      $("conv-mode").textContent = "";
      $("take").hidden = true;
      $("takeover").hidden = true;
      $("handback").hidden = true;
      $("reassign-bar").hidden = true;
      $("handoff").hidden = true;
      $("customer-card").replaceChildren();
      $("orders").replaceChildren();
      $("reply-text").disabled = true;
      $("reply-send").disabled = true;
      return;
    }
    const conv = detail.conversation;
    const customer = detail.customer;
    const view = $("conv-view");
    view.dataset.conversationId = conv.id;
    view.dataset.mode = conv.mode;
    const title = $("conv-title");
    const titleParts = [el("span", { text: customer ? customer.name : t("guest") }), vipChip(customer)];
    title.replaceChildren(...titleParts.filter(Boolean));
    $("conv-sub").textContent = [label("channels", conv.channel), label("locales", conv.locale || ""), conv.id]
      .filter(Boolean)
      .join(" · ");
    const mode = $("conv-mode");
    mode.dataset.mode = conv.mode;
    if (conv.mode === "agent") mode.textContent = t("modeAgent", { agent: conv.agent || "?" });
    else mode.textContent = t(conv.mode === "waiting" ? "modeWaiting" : "modeBot");
    const heldByOther = conv.mode === "agent" && conv.agent !== state.agent;
    $("take").hidden = conv.mode !== "waiting";
    $("takeover").hidden = !(supervising() && heldByOther);
    $("handback").hidden = conv.mode !== "agent" || (heldByOther && !supervising());
    renderTransfer(conv);
    renderReassign(conv);
    renderHandoff(conv.mode !== "bot" ? conv.handoff : null, detail.sla);
    renderTranscript(detail.transcript || []);
    renderCustomer(detail);

    const mineOrWaiting = conv.mode === "waiting" || (conv.mode === "agent" && conv.agent === state.agent);
    const noting = $("note-mode").checked; // notes can be added in any mode
    const text = $("reply-text");
    text.disabled = (!mineOrWaiting && !noting) || state.busy;
    $("reply-send").disabled = (!mineOrWaiting && !noting) || state.busy;
    if (!state.busy) $("reply-send").textContent = t(noting ? "addNote" : "send");
    $("reply-form").classList.toggle("noting", noting);
    text.placeholder = t(noting ? "notePlaceholder" : "replyPlaceholder");
    $("reply-hint").textContent =
      mineOrWaiting || noting
        ? t(conv.mode === "waiting" && !noting ? "replyHintWaiting" : "replyHint")
        : conv.mode === "bot"
          ? t("replyBot")
          : t("replyOther", { agent: conv.agent || "?" });
  }

  /** Transfer to another skill: for a waiting conversation, or one this agent holds. */
  function renderTransfer(conv) {
    const bar = $("transfer-bar");
    const allowed = conv.mode === "waiting" || (conv.mode === "agent" && conv.agent === state.agent);
    bar.hidden = !allowed || !conv.handoff;
    if (bar.hidden) return;
    const select = $("transfer-skill");
    const current = select.value;
    const options = SKILLS.filter((s) => s !== conv.handoff.skill);
    select.replaceChildren(...options.map((s) => el("option", { text: label("skills", s), attrs: { value: s } })));
    if (options.includes(current)) select.value = current;
    select.setAttribute("aria-label", t("transferTo"));
    $("transfer-reason").placeholder = t("transferReason");
    $("transfer").disabled = state.busy;
  }

  /** Reassign to another agent's account: supervisors, for a waiting or held conversation. */
  function renderReassign(conv) {
    const bar = $("reassign-bar");
    bar.hidden = !supervising() || conv.mode === "bot";
    if (bar.hidden) return;
    $("reassign-agent").placeholder = t("reassignPlaceholder");
    $("reassign-agent").setAttribute("aria-label", t("reassignTo"));
    $("reassign").disabled = state.busy;
  }

  // --- actions ---------------------------------------------------------------------------------

  async function act(run) {
    if (state.busy || !state.selected) return;
    state.busy = true;
    renderConversation();
    const id = state.selected;
    try {
      await run(id);
      if (id === state.selected) showConvError("");
      await Promise.all([refreshConversation(), refreshLists()]);
      return true;
    } catch (e) {
      if (!(e instanceof AuthError) && id === state.selected) showConvError(describeError(e));
      return false;
    } finally {
      state.busy = false;
      if (state.signedIn) renderConversation();
    }
  }

  function take() {
    return act((id) => api("POST", "/agent/conversations/" + encodeURIComponent(id) + "/take"));
  }

  function takeOver() {
    return act((id) => api("POST", "/agent/conversations/" + encodeURIComponent(id) + "/takeover"));
  }

  async function reassign() {
    const agent = $("reassign-agent").value.trim();
    if (!agent) return;
    const ok = await act((id) => api("POST", "/agent/conversations/" + encodeURIComponent(id) + "/reassign", { agent }));
    if (ok) $("reassign-agent").value = "";
  }

  function handBack() {
    return act((id) => api("POST", "/agent/conversations/" + encodeURIComponent(id) + "/handback"));
  }

  async function sendReply() {
    const box = $("reply-text");
    const text = box.value;
    if (!text.trim() || state.busy) return;
    const button = $("reply-send");
    button.textContent = t("sending");
    const noting = $("note-mode").checked;
    const path = "/agent/conversations/{id}/" + (noting ? "notes" : "messages");
    const ok = await act((id) => api("POST", path.replace("{id}", encodeURIComponent(id)), { text }));
    button.textContent = t(noting ? "addNote" : "send");
    if (ok && box.value === text) box.value = "";
    box.focus();
  }

  async function transfer() {
    const skill = $("transfer-skill").value;
    const reason = $("transfer-reason").value;
    if (!skill) return;
    const ok = await act((id) =>
      api("POST", "/agent/conversations/" + encodeURIComponent(id) + "/transfer", { skill, reason }),
    );
    if (ok) $("transfer-reason").value = "";
  }

  // --- review list (supervisors and admins) ---------------------------------------------------

  const REVIEW_REASONS = ["low_confidence", "fallback", "follow_up", "handoff"];
  const REVIEW_PAGE = 50;

  function showReview(open) {
    state.review.open = open;
    $("review-view").hidden = !open;
    $("desk").hidden = open;
    renderReviewToggle();
    if (open) loadReview(false);
  }

  function renderReviewToggle() {
    const toggle = $("review-toggle");
    toggle.hidden = !(state.signedIn && supervising());
    toggle.textContent = t(state.review.open ? "reviewBack" : "reviewToggle");
    toggle.setAttribute("aria-pressed", state.review.open ? "true" : "false");
  }

  async function loadReview(more) {
    const review = state.review;
    const params = new URLSearchParams({ offset: String(more ? review.items.length : 0), limit: String(REVIEW_PAGE) });
    if (review.reason) params.set("reason", review.reason);
    try {
      const [page, intents] = await Promise.all([
        api("GET", "/agent/review?" + params.toString()),
        review.intents.length ? Promise.resolve(review.intents) : api("GET", "/agent/review/intents"),
      ]);
      review.intents = intents;
      review.items = more ? review.items.concat(page.items) : page.items;
      review.total = page.total;
      review.next = page.next_offset;
      review.error = "";
    } catch (e) {
      if (e instanceof AuthError) return;
      review.error = describeError(e);
    }
    renderReview();
  }

  /** Assign an intent or dismiss: the entry leaves the list (also when someone else decided it first: 404). */
  async function decide(item, action, body) {
    const review = state.review;
    try {
      await api("POST", "/agent/review/" + encodeURIComponent(item.id) + "/" + action, body);
      review.error = "";
      const chosen = body && review.intents.find((i) => i.name === body.intent);
      if (chosen) chosen.reviewed += 1;
    } catch (e) {
      if (e instanceof AuthError) return;
      if (!(e instanceof ApiError && e.status === 404)) {
        review.error = describeError(e);
        renderReview();
        return;
      }
    }
    review.items = review.items.filter((i) => i.id !== item.id);
    review.total = Math.max(0, review.total - 1);
    renderReview();
  }

  function reviewEntry(item) {
    const intents = state.review.intents;
    const select = el(
      "select",
      { testid: "review-intent", attrs: { "aria-label": t("reviewIntent") } },
      intents.map((i) => el("option", { text: i.reviewed ? i.name + " (" + i.reviewed + ")" : i.name, attrs: { value: i.name } })),
    );
    select.value = intents.some((i) => i.name === item.intent) ? item.intent : "";
    const assign = el("button", { cls: "primary", text: t("reviewAssign"), testid: "review-assign" });
    assign.addEventListener("click", () => select.value && decide(item, "assign", { intent: select.value }));
    const outOfScope = el("button", { cls: "secondary", text: t("reviewOutOfScope"), testid: "review-out-of-scope" });
    outOfScope.addEventListener("click", () => decide(item, "assign", { intent: "out_of_scope" }));
    const dismiss = el("button", { cls: "secondary", text: t("reviewDismiss"), testid: "review-dismiss" });
    dismiss.addEventListener("click", () => decide(item, "dismiss"));
    const percent = Math.round(Number(item.confidence) * 100) + "%";
    const meta = el("div", { cls: "review-meta" }, [
      el("span", { cls: "tag", text: t("reviewPredicted", { intent: item.intent, p: percent }), testid: "review-predicted" }),
      ...item.reasons.map((r) => el("span", { cls: "tag low", text: label("reviewReasons", r) })),
      el("span", { text: label("channels", item.channel) + (item.locale ? " · " + item.locale : "") }),
      el("span", { text: t("reviewCount", { n: item.count }) }),
      el("span", { text: t("reviewSeen", { t: clock(item.last_at) }) }),
    ]);
    return el("li", { cls: "review-item", testid: "review-item", data: { id: item.id } }, [
      el("div", { cls: "review-text", text: item.text, testid: "review-text" }),
      meta,
      el("div", { cls: "review-actions" }, [select, assign, outOfScope, dismiss]),
    ]);
  }

  function renderReview() {
    const review = state.review;
    $("review-count").textContent = String(review.total);
    $("review-list").replaceChildren(...review.items.map(reviewEntry));
    $("review-empty").hidden = review.items.length > 0;
    $("review-more").hidden = review.next == null;
    const error = $("review-error");
    error.textContent = review.error;
    error.hidden = !review.error;
  }

  // --- language --------------------------------------------------------------------------------

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("title") + " · autoresponder";
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    const toggle = $("lang-toggle");
    toggle.textContent = t("langToggle");
    toggle.title = t("langToggleTitle");
    toggle.setAttribute("aria-label", t("langToggleTitle"));
    const filter = $("skill-filter");
    filter.replaceChildren(
      el("option", { text: t("allSkills"), attrs: { value: "" } }),
      ...SKILLS.map((s) => el("option", { text: label("skills", s), attrs: { value: s } })),
    );
    filter.value = state.skill;
    const reasons = $("review-reason");
    reasons.replaceChildren(
      el("option", { text: t("reviewAll"), attrs: { value: "" } }),
      ...REVIEW_REASONS.map((r) => el("option", { text: label("reviewReasons", r), attrs: { value: r } })),
    );
    reasons.value = state.review.reason;
    renderReviewToggle();
    if (state.signedIn) {
      if (state.review.open) renderReview();
      renderWhoami();
      renderLists();
      renderStats();
      // Rebuild the transcript so that role names and times follow the language.
      state.shownSeqs = new Set();
      $("transcript").replaceChildren();
      renderConversation();
    }
  }

  // --- wiring ----------------------------------------------------------------------------------

  function init() {
    $("signin-form").addEventListener("submit", onSignIn);
    $("sign-out").addEventListener("click", () => signOut(t("signedOut"), true));
    $("take").addEventListener("click", take);
    $("takeover").addEventListener("click", takeOver);
    $("reassign").addEventListener("click", reassign);
    $("handback").addEventListener("click", handBack);
    $("transfer").addEventListener("click", transfer);
    $("auto-assign").addEventListener("click", toggleAuto);
    $("review-toggle").addEventListener("click", () => showReview(!state.review.open));
    $("review-reason").addEventListener("change", (event) => {
      state.review.reason = event.target.value;
      loadReview(false);
    });
    $("review-more").addEventListener("click", () => loadReview(true));
    $("note-mode").addEventListener("change", () => {
      renderConversation();
      $("reply-text").focus();
    });
    $("reply-form").addEventListener("submit", (event) => {
      event.preventDefault();
      sendReply();
    });
    $("reply-text").addEventListener("keydown", (event) => {
      // Enter sends; Shift+Enter is a new line; Enter that confirms an input method's candidate is not a send.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        sendReply();
      }
    });
    $("skill-filter").addEventListener("change", (event) => {
      state.skill = event.target.value;
      storage(STORE.skill, state.skill || null);
      refreshLists();
    });
    $("lang-toggle").addEventListener("click", () => {
      lang = lang === "zh" ? "en" : "zh";
      try {
        localStorage.setItem(LANG_KEY, lang);
      } catch (e) {
        /* storage may be off */
      }
      applyLanguage();
    });
    applyLanguage();
    resume(); // an existing session (a reload) opens the desk without signing in again

  }

  window.AgentConsole = {
    get lang() {
      return lang;
    },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
