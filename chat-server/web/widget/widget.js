/*
 * The chat-engine website widget: one <script> tag adds a launcher and a chat window to any
 * page, inside a shadow root so the page's CSS cannot reach it (nor ours the page).
 *
 *   <script src="https://desk.example/widget.js" data-tenant="…" data-color="#0b5fff"
 *           data-greeting="Hi!" data-position="right" data-locale="en" async></script>
 *
 * data-server    the chat server (default: where this script came from)
 * data-tenant    tenant id (default: the server's default tenant)
 * data-color     accent colour (any CSS colour)
 * data-greeting  first line the visitor sees (default: the desk's welcome message)
 * data-title     the window's title
 * data-position  right (default) or left
 * data-locale    en or ar (default: the page's lang)
 * data-identity-email, data-identity-timestamp, data-identity-signature
 *                a signed identity for a logged-in customer (HMAC-SHA256 of
 *                "email:timestamp" under the server's --identity-secret; sign anew per page)
 *
 * It speaks the server's public API: GET /v1/widget, POST /v1/conversations, the /v1
 * conversation routes with the visitor token, and the resumable socket /v1/ws (PROTOCOL.md).
 * Plain JavaScript with no build step: this file is what ships.
 */
(() => {
  'use strict';

  // ---------------------------------------------------------------------------------------
  // Strings: every text the visitor reads, one table per language.
  // ---------------------------------------------------------------------------------------
  const STRINGS = {
    en: {
      dir: 'ltr',
      title: 'Chat with us',
      subtitle: 'We usually reply in a few minutes',
      openChat: 'Open chat',
      closeChat: 'Close chat',
      greeting: 'Hi! How can we help you today?',
      prechatIntro: 'Tell us who you are and we will get right to it.',
      name: 'Name',
      email: 'E-mail',
      message: 'Message',
      startChat: 'Start chat',
      offlineTitle: 'We are away right now',
      offlineIntro: 'Leave your e-mail and a message, and we will answer as soon as we are back.',
      nextOpening: 'We open again on {time}.',
      offlineSend: 'Send message',
      offlineSent: 'Thank you! We will answer you at {email}.',
      send: 'Send',
      composer: 'Write a message',
      attach: 'Attach a file',
      human: 'Talk to a human',
      queuePosition: 'You are number {n} in the queue.',
      queueWait: 'Estimated wait: about {m} min.',
      queueWaitUnknown: 'An agent will be with you as soon as one is free.',
      typing: '{name} is typing…',
      you: 'You',
      agent: 'Agent',
      bot: 'Assistant',
      system: 'Notice',
      'notice.queued': 'Waiting for an agent', 'notice.queued_reason': 'Waiting for an agent ({reason})',
      'notice.bot': 'The assistant is answering again', 'notice.paused': 'Conversation paused', 'notice.closed': 'Conversation closed',
      'notice.reopened': 'Conversation reopened', 'notice.unassigned': 'Waiting for an agent',
      'notice.assigned': '{name} joined the conversation', 'notice.requeued': 'Waiting for another agent',
      'notice.closed_idle': 'Conversation closed after {minutes} minutes without a reply',
      'notice.transferred': 'Transferred from {from} to {to}',
      'party.previous_agent': 'the previous agent', 'party.queue': 'the queue', 'party.team': 'another team',
      said: '{who}:',
      pending: 'Sending…',
      waitingNetwork: 'Not sent yet: waiting for the network',
      sent: 'Sent',
      read: 'Read',
      closed: 'This conversation has been closed.',
      rateQuestion: 'How was your conversation?',
      star: '{n} out of 5',
      feedback: 'Anything to add? (optional)',
      sendRating: 'Send rating',
      ratingThanks: 'Thank you for your feedback!',
      newChat: 'Start a new conversation',
      offlineNet: 'You are offline. What you write is kept and sent when the connection returns.',
      reconnecting: 'Reconnecting…',
      error: 'Something went wrong. Please try again.',
      uploadFailed: 'The file could not be sent: {reason}',
      download: 'Download {name}',
      image: 'Image: {name}',
      messages: 'Messages', history: 'Conversation history',
      required: 'Please fill in this field.',
      badEmail: 'Please enter a valid e-mail address.',
      endChat: 'End conversation',
    },
    ar: {
      dir: 'rtl',
      title: 'تحدث معنا',
      subtitle: 'نرد عادةً خلال دقائق',
      openChat: 'افتح المحادثة',
      closeChat: 'أغلق المحادثة',
      greeting: 'مرحبًا! كيف يمكننا مساعدتك اليوم؟',
      prechatIntro: 'عرّفنا بنفسك وسنبدأ فورًا.',
      name: 'الاسم',
      email: 'البريد الإلكتروني',
      message: 'الرسالة',
      startChat: 'ابدأ المحادثة',
      offlineTitle: 'نحن غير متاحين الآن',
      offlineIntro: 'اترك بريدك الإلكتروني ورسالتك وسنرد عليك فور عودتنا.',
      nextOpening: 'نعود في {time}.',
      offlineSend: 'أرسل الرسالة',
      offlineSent: 'شكرًا لك! سنرد عليك على {email}.',
      send: 'إرسال',
      composer: 'اكتب رسالة',
      attach: 'أرفق ملفًا',
      human: 'تحدث إلى موظف',
      queuePosition: 'ترتيبك في قائمة الانتظار: {n}.',
      queueWait: 'مدة الانتظار المتوقعة: نحو {m} دقيقة.',
      queueWaitUnknown: 'سينضم إليك موظف حالما يتفرغ أحدهم.',
      typing: '{name} يكتب…',
      you: 'أنت',
      agent: 'الموظف',
      bot: 'المساعد',
      system: 'تنبيه',
      'notice.queued': 'بانتظار موظف', 'notice.queued_reason': 'بانتظار موظف ({reason})',
      'notice.bot': 'المساعد يجيب مجددًا', 'notice.paused': 'المحادثة متوقفة', 'notice.closed': 'أُغلقت المحادثة',
      'notice.reopened': 'أُعيد فتح المحادثة', 'notice.unassigned': 'بانتظار موظف',
      'notice.assigned': 'انضم {name} إلى المحادثة', 'notice.requeued': 'بانتظار موظف آخر',
      'notice.closed_idle': 'أُغلقت المحادثة بعد {minutes} دقيقة دون رد',
      'notice.transferred': 'نُقلت من {from} إلى {to}',
      'party.previous_agent': 'الموظف السابق', 'party.queue': 'قائمة الانتظار', 'party.team': 'فريق آخر',
      said: '{who}:',
      pending: 'جارٍ الإرسال…',
      waitingNetwork: 'لم تُرسل بعد: في انتظار الاتصال',
      sent: 'أُرسلت',
      read: 'قُرئت',
      closed: 'أُغلقت هذه المحادثة.',
      rateQuestion: 'كيف كانت محادثتك؟',
      star: '{n} من 5',
      feedback: 'هل تود إضافة شيء؟ (اختياري)',
      sendRating: 'أرسل التقييم',
      ratingThanks: 'شكرًا لك على رأيك!',
      newChat: 'ابدأ محادثة جديدة',
      offlineNet: 'أنت غير متصل. ما تكتبه محفوظ وسيُرسل عند عودة الاتصال.',
      reconnecting: 'جارٍ إعادة الاتصال…',
      error: 'حدث خطأ ما. حاول مرة أخرى.',
      uploadFailed: 'تعذر إرسال الملف: {reason}',
      download: 'تنزيل {name}',
      image: 'صورة: {name}',
      messages: 'الرسائل', history: 'سجل المحادثة',
      required: 'يرجى ملء هذا الحقل.',
      badEmail: 'يرجى إدخال بريد إلكتروني صحيح.',
      endChat: 'إنهاء المحادثة',
    },
  };

  const script = document.currentScript
    || document.querySelector('script[src$="/widget.js"],script[src*="/widget.js?"]');
  if (!script || window.__chatDeskWidget) return;

  // ---------------------------------------------------------------------------------------
  // Configuration from the tag's data- attributes.
  // ---------------------------------------------------------------------------------------
  const data = script.dataset;
  const server = (data.server || new URL(script.src, location.href).origin).replace(/\/+$/, '');
  const tenant = data.tenant || '';
  const pageLang = (data.locale || document.documentElement.lang || navigator.language || 'en').toLowerCase();
  const locale = STRINGS[pageLang.split('-')[0]] ? pageLang.split('-')[0] : 'en';
  const S = STRINGS[locale];
  const position = data.position === 'left' ? 'left' : 'right';
  const accent = data.color && CSS.supports('color', data.color) ? data.color : '#0b57d0';
  const identity = data.identityEmail && data.identitySignature
    ? { email: data.identityEmail, timestamp: Number(data.identityTimestamp), signature: data.identitySignature }
    : null;
  const storageKey = `chatdesk:${server}|${tenant || 'default'}`;

  const t = (key, vars) => (S[key] || STRINGS.en[key] || key)
    .replace(/\{(\w+)\}/g, (_, k) => (vars && k in vars ? String(vars[k]) : ''));

  // ---------------------------------------------------------------------------------------
  // What survives a reload: the visitor token, the conversation, the socket's cursor and
  // the messages not yet accepted by the server (each with its client_message_id, so a
  // message sent twice is stored once).
  // ---------------------------------------------------------------------------------------
  const store = {
    load() {
      try { return JSON.parse(localStorage.getItem(storageKey)) || {}; } catch { return {}; }
    },
    save() {
      try {
        localStorage.setItem(storageKey, JSON.stringify({
          token: state.token, conversationId: state.conversationId, cursor: state.cursor,
          outbox: state.outbox, identityEmail: state.identityEmail, offlineEmail: state.offlineEmail,
          rated: state.rated,
        }));
      } catch { /* storage full or blocked: the conversation still works until the page goes */ }
    },
  };
  const saved = store.load();
  const state = {
    token: saved.token || null,
    conversationId: saved.conversationId || null,
    cursor: saved.cursor || 0,
    outbox: Array.isArray(saved.outbox) ? saved.outbox : [],
    identityEmail: saved.identityEmail || null,
    offlineEmail: saved.offlineEmail || null,
    rated: saved.rated || null,
    conversation: null,
    desk: null,
    messages: new Map(),
    agentReadSeq: 0,
    myReadSeq: 0,
    queue: null,
    open: false,
    unread: 0,
    online: navigator.onLine,
    view: 'chat',
  };
  // A streaming bot's replies being written (see botDelta): reply_to_seq -> {el, bubble,
  // pieces}, and the keys already ended, whose late pieces are dropped.
  const streams = new Map();
  const streamsDone = new Set();
  // A stored conversation of another signed-in customer is not this one's.
  if (identity && state.identityEmail && state.identityEmail !== identity.email) reset(false);

  // ---------------------------------------------------------------------------------------
  // DOM helpers. Text always goes in as text: nothing a visitor or agent writes is HTML.
  // ---------------------------------------------------------------------------------------
  let uid = 0;
  const nextId = (p) => `cw-${p}-${++uid}`;
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v == null) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) if (c != null && c !== false) el.append(c);
    return el;
  }
  const svg = (path) => {
    const el = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    el.setAttribute('viewBox', '0 0 24 24');
    el.setAttribute('aria-hidden', 'true');
    el.setAttribute('focusable', 'false');
    const p = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    p.setAttribute('d', path);
    el.append(p);
    return el;
  };
  const ICON = {
    chat: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z',
    close: 'M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6z',
    send: 'M3 20.5 21 12 3 3.5v6.6l12 1.9-12 1.9z',
    clip: 'M16.5 6.5v10a4.5 4.5 0 0 1-9 0V5a3 3 0 0 1 6 0v10.5a1.5 1.5 0 0 1-3 0V6.5H9V15.5a3 3 0 0 0 6 0V5a4.5 4.5 0 0 0-9 0v11.5a6 6 0 0 0 12 0v-10z',
  };

  // The text colour on the accent: black or white, whichever contrasts more (WCAG).
  function onAccent(color) {
    const probe = document.createElement('span');
    probe.style.color = color;
    document.body.append(probe);
    const rgb = getComputedStyle(probe).color.match(/[\d.]+/g).slice(0, 3).map(Number);
    probe.remove();
    const lum = rgb.map((c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; });
    const L = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (L + 0.05) / 0.05 > 1.05 / (L + 0.05) ? '#000000' : '#ffffff';
  }

  // ---------------------------------------------------------------------------------------
  // Styles: a constructed stylesheet, which a page's strict CSP (style-src 'self') admits
  // where a <style> element would not.
  // ---------------------------------------------------------------------------------------
  const CSS_TEXT = `
:host { all: initial; }
* { box-sizing: border-box; }
.root { position: fixed; bottom: 20px; z-index: 2147483000; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", Arial, sans-serif; color: #1b1b1f; }
.root.right { right: 20px; } .root.left { left: 20px; }
button, input, textarea { font: inherit; color: inherit; }
:focus-visible { outline: 3px solid #1b1b1f; outline-offset: 2px; box-shadow: 0 0 0 5px #fff; }
.launcher { width: 60px; height: 60px; border-radius: 50%; border: 0; background: var(--accent); color: var(--on-accent); cursor: pointer; box-shadow: 0 4px 16px rgba(0,0,0,.25); display: grid; place-items: center; position: relative; }
.launcher svg { width: 28px; height: 28px; fill: currentColor; }
.badge[hidden] { display: none; }
.badge { position: absolute; top: -4px; inset-inline-end: -4px; min-width: 22px; height: 22px; padding: 0 6px; border-radius: 11px; background: #b3261e; color: #fff; font-size: 12px; font-weight: 700; display: grid; place-items: center; }
.panel { position: absolute; bottom: 76px; width: 370px; max-width: calc(100vw - 40px); height: 580px; max-height: calc(100vh - 110px); background: #fff; border-radius: 14px; box-shadow: 0 12px 40px rgba(0,0,0,.28); display: flex; flex-direction: column; overflow: hidden; }
.right .panel { right: 0; } .left .panel { left: 0; }
.panel[hidden] { display: none; }
header { background: var(--accent); color: var(--on-accent); padding: 14px 16px; display: flex; align-items: center; gap: 12px; }
header .titles { flex: 1; min-width: 0; }
header h2 { margin: 0; font-size: 17px; font-weight: 700; }
header p { margin: 2px 0 0; font-size: 13px; }
.icon-btn { background: transparent; border: 0; color: inherit; width: 36px; height: 36px; border-radius: 8px; cursor: pointer; display: grid; place-items: center; }
.icon-btn svg { width: 22px; height: 22px; fill: currentColor; }
.icon-btn:hover { background: rgba(127,127,127,.2); }
.banner { padding: 8px 16px; font-size: 13px; background: #fff4ce; color: #3d2e00; border-bottom: 1px solid #e8d9a0; }
.banner[hidden] { display: none; }
.body { flex: 1; overflow-y: auto; padding: 14px 14px 6px; display: flex; flex-direction: column; gap: 8px; background: #f6f7f9; }
.log { display: flex; flex-direction: column; gap: 8px; }
.msg { max-width: 82%; display: flex; flex-direction: column; gap: 2px; }
.msg .who { font-size: 12px; color: #49454f; padding-inline: 4px; }
.bubble { padding: 8px 12px; border-radius: 14px; white-space: pre-wrap; overflow-wrap: anywhere; background: #fff; border: 1px solid #dcdde3; }
.msg.mine { align-self: flex-end; align-items: flex-end; }
.msg.mine .bubble { background: var(--accent); color: var(--on-accent); border-color: transparent; border-end-end-radius: 4px; }
.msg.theirs { align-self: flex-start; }
.msg.theirs .bubble { border-end-start-radius: 4px; }
.msg.streaming .bubble::after { content: "▍"; color: #6b6e78; }
.msg.event { align-self: center; max-width: 92%; text-align: center; }
.msg.event .bubble { background: transparent; border: 0; color: #49454f; font-size: 13px; padding: 2px 8px; }
.status { font-size: 12px; color: #49454f; padding-inline: 4px; }
.status.waiting { color: #8c1d18; }
.files { display: flex; flex-direction: column; align-items: flex-start; gap: 4px; margin-top: 4px; }
.msg.mine .files { align-items: flex-end; }
.file { display: inline-flex; align-items: center; gap: 6px; background: #fff; color: #0b3d91; border: 1px solid #c4c7d0; border-radius: 8px; padding: 6px 10px; cursor: pointer; text-align: start; text-decoration: underline; }
.file.image { padding: 2px; text-decoration: none; }
.file img { display: block; max-width: 220px; max-height: 180px; border-radius: 6px; }
.typing { font-size: 13px; color: #49454f; min-height: 1.2em; padding: 0 18px 4px; background: #f6f7f9; }
.actions { display: flex; justify-content: center; padding: 4px 14px 8px; background: #f6f7f9; }
.actions[hidden] { display: none; }
.secondary { background: #fff; color: #0b3d91; border: 1px solid #0b3d91; border-radius: 18px; padding: 6px 14px; cursor: pointer; font-weight: 600; }
.secondary:hover { background: #eef3fd; }
.composer { display: flex; align-items: flex-end; gap: 6px; padding: 10px; border-top: 1px solid #dcdde3; background: #fff; }
.composer[hidden] { display: none; }
.composer textarea { flex: 1; resize: none; border: 1px solid #8e9099; border-radius: 10px; padding: 8px 10px; min-height: 40px; max-height: 120px; }
.composer .icon-btn { color: #3b3f4a; }
.composer .send { background: var(--accent); color: var(--on-accent); }
.composer .send:hover { background: var(--accent); filter: brightness(.92); }
form.card { display: flex; flex-direction: column; gap: 10px; background: #fff; border: 1px solid #dcdde3; border-radius: 12px; padding: 14px; }
form.card p { margin: 0; }
form.card h3 { margin: 0; font-size: 16px; }
.sent { margin: 0; padding: 12px 14px; background: #e7f4ea; color: #0d3a1b; border: 1px solid #a8d5b4; border-radius: 12px; }
.file svg { width: 16px; height: 16px; fill: currentColor; flex: none; }
.root[dir="rtl"] .send svg { transform: scaleX(-1); }
label { display: flex; flex-direction: column; gap: 4px; font-size: 14px; font-weight: 600; }
label input, label textarea { font-weight: 400; border: 1px solid #8e9099; border-radius: 8px; padding: 8px 10px; }
label textarea { min-height: 80px; resize: vertical; }
.error { color: #8c1d18; font-size: 13px; min-height: 0; margin: 0; }
.error:empty { display: none; }
.primary { background: var(--accent); color: var(--on-accent); border: 0; border-radius: 10px; padding: 10px 14px; font-weight: 700; cursor: pointer; }
fieldset { border: 0; margin: 0; padding: 0; }
legend { font-weight: 700; margin-bottom: 6px; padding: 0; }
.stars { display: flex; gap: 4px; flex-direction: row; }
.stars label { flex-direction: row; font-weight: 400; cursor: pointer; position: relative; }
.stars input { position: absolute; inset: 0; opacity: 0; width: 100%; height: 100%; margin: 0; cursor: pointer; }
.stars span { font-size: 28px; line-height: 1; color: #767676; }
.stars label.on span { color: #8a5a00; }
.stars input:focus-visible + span { outline: 3px solid #1b1b1f; outline-offset: 2px; border-radius: 4px; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
@media (max-width: 480px) { .panel { width: calc(100vw - 24px); height: calc(100vh - 100px); } }
`;

  // ---------------------------------------------------------------------------------------
  // The widget's DOM.
  // ---------------------------------------------------------------------------------------
  const host = h('div', { id: 'chatdesk-widget', 'data-chatdesk': '' });
  const shadow = host.attachShadow({ mode: 'open' });
  if ('adoptedStyleSheets' in shadow) {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS_TEXT);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    shadow.append(h('style', { text: CSS_TEXT }));
  }
  const panelId = nextId('panel');
  const titleId = nextId('title');
  const ui = {};
  ui.badge = h('span', { class: 'badge', hidden: true, 'aria-hidden': 'true' });
  ui.launcher = h('button', {
    class: 'launcher', type: 'button', 'aria-label': t('openChat'), 'aria-expanded': 'false',
    'aria-controls': panelId, onclick: () => (state.open ? close(true) : openWidget()),
  }, svg(ICON.chat), ui.badge);
  ui.subtitle = h('p', { text: t('subtitle') });
  ui.banner = h('div', { class: 'banner', role: 'status', hidden: true });
  ui.log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-label': t('messages') });
  ui.forms = h('div');
  // Focusable, so a keyboard can scroll the history even when no message holds a button.
  ui.body = h('div', { class: 'body', tabindex: '0', role: 'region', 'aria-label': t('history') }, ui.forms, ui.log);
  ui.typing = h('div', { class: 'typing', role: 'status' });
  ui.human = h('button', { class: 'secondary', type: 'button', text: t('human'), onclick: handoff });
  ui.actions = h('div', { class: 'actions', hidden: true }, ui.human);
  const composerId = nextId('composer');
  ui.input = h('textarea', { id: composerId, rows: '1', maxlength: '10000', placeholder: t('composer') });
  ui.file = h('input', { type: 'file', class: 'sr', tabindex: '-1', 'aria-hidden': 'true', multiple: true });
  ui.attach = h('button', { class: 'icon-btn', type: 'button', 'aria-label': t('attach'), onclick: () => ui.file.click() }, svg(ICON.clip));
  ui.send = h('button', { class: 'icon-btn send', type: 'submit', 'aria-label': t('send') }, svg(ICON.send));
  ui.composer = h('form', { class: 'composer', onsubmit: onSend },
    h('label', { class: 'sr', for: composerId, text: t('composer') }), ui.attach, ui.file, ui.input, ui.send);
  ui.panel = h('section', {
    class: 'panel', id: panelId, role: 'dialog', 'aria-labelledby': titleId, hidden: true,
    onkeydown: (e) => { if (e.key === 'Escape') { e.preventDefault(); close(true); } },
  },
  h('header', {},
    h('div', { class: 'titles' }, h('h2', { id: titleId, text: data.title || t('title') }), ui.subtitle),
    h('button', { class: 'icon-btn', type: 'button', 'aria-label': t('closeChat'), onclick: () => close(true) }, svg(ICON.close))),
  ui.banner, ui.body, ui.typing, ui.actions, ui.composer);
  ui.root = h('div', { class: `root ${position}`, dir: S.dir, lang: locale }, ui.panel, ui.launcher);
  shadow.append(ui.root);

  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); onSend(e); }
  });
  ui.input.addEventListener('input', () => { typingChanged(true); autosize(); });
  ui.file.addEventListener('change', () => { const files = [...ui.file.files]; ui.file.value = ''; if (files.length) upload(files); });

  function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = `${Math.min(ui.input.scrollHeight + 2, 120)}px`;
  }

  function mount() {
    host.style.setProperty('--accent', accent);
    document.body.append(host);
    ui.root.style.setProperty('--accent', accent);
    ui.root.style.setProperty('--on-accent', onAccent(accent));
    window.__chatDeskWidget = api;
    start();
  }

  // ---------------------------------------------------------------------------------------
  // HTTP.
  // ---------------------------------------------------------------------------------------
  class HttpError extends Error {
    constructor(status, body) {
      super((body && body.error && body.error.message) || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }
  async function http(method, path, body, opts = {}) {
    const headers = {};
    if (state.token && !opts.anonymous) headers.authorization = `Bearer ${state.token}`;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) { headers['content-type'] = 'application/json'; payload = JSON.stringify(body); }
    const r = await fetch(server + path, { method, headers, body: payload, credentials: 'omit', cache: 'no-store' });
    if (opts.blob) { if (!r.ok) throw new HttpError(r.status); return r.blob(); }
    const text = await r.text();
    const json = text ? JSON.parse(text) : null;
    if (!r.ok) throw new HttpError(r.status, json);
    return json;
  }
  const conv = (suffix = '') => `/v1/conversations/${state.conversationId}${suffix}`;
  // A request that did not reach the server (offline, dropped) is retried later; an answer
  // the server gave is final, except when it asks us to come back.
  const retryable = (e) => !(e instanceof HttpError) || e.status === 429 || e.status >= 500;

  // ---------------------------------------------------------------------------------------
  // Start: a stored conversation resumes at once (its outbox goes out as soon as the
  // network allows); a new visitor sees a form or the greeting when opening the window.
  // ---------------------------------------------------------------------------------------
  async function start() {
    renderOutbox();
    if (state.conversationId) {
      connect();
    }
    try {
      const q = tenant ? `?tenant_id=${encodeURIComponent(tenant)}` : '';
      state.desk = await http('GET', `/v1/widget${q}`, undefined, { anonymous: true });
    } catch { state.desk = { open: true, prechat_form: false }; }
    renderView();
  }

  function renderView() {
    ui.forms.replaceChildren();
    if (state.offlineEmail && state.conversationId) {
      ui.forms.append(h('p', { class: 'card sent', role: 'status', tabindex: '-1', text: t('offlineSent', { email: state.offlineEmail }) }));
    }
    const c = state.conversation;
    const ended = c && (c.mode === 'closed' || c.mode === 'archived');
    if (!state.conversationId) {
      if (state.desk && state.desk.open === false) return showOffline();
      if (state.desk && state.desk.prechat_form && !identity) return showPrechat();
      showGreeting();
    }
    ui.composer.hidden = !!ended;
    ui.actions.hidden = !(c && c.mode === 'bot' && !ended);
    if (ended) showRating();
    updateBanner();
  }

  function showGreeting() {
    if (ui.log.querySelector('.greeting')) return;
    const text = data.greeting || (state.desk && state.desk.welcome_message) || t('greeting');
    ui.log.prepend(h('div', { class: 'msg theirs greeting' },
      h('span', { class: 'who', text: t('bot') }), h('div', { class: 'bubble', text })));
    ui.composer.hidden = false;
  }

  function field(label, attrs) {
    const id = nextId('f');
    const errId = `${id}-err`;
    const input = h(attrs.multiline ? 'textarea' : 'input', {
      id, name: attrs.name, type: attrs.multiline ? null : attrs.type || 'text', required: attrs.required,
      autocomplete: attrs.autocomplete, 'aria-describedby': errId,
    });
    const err = h('p', { class: 'error', id: errId });
    return { input, err, el: h('div', {}, h('label', { for: id }, label, input), err) };
  }
  const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
  function check(f, { email } = {}) {
    const v = f.input.value.trim();
    let msg = '';
    if (f.input.required && !v) msg = t('required');
    else if (email && v && !EMAIL.test(v)) msg = t('badEmail');
    f.err.textContent = msg;
    f.input.setAttribute('aria-invalid', msg ? 'true' : 'false');
    return msg ? f.input : null;
  }

  function showPrechat() {
    ui.composer.hidden = true;
    ui.actions.hidden = true;
    const name = field(t('name'), { name: 'name', required: true, autocomplete: 'name' });
    const email = field(t('email'), { name: 'email', type: 'email', required: true, autocomplete: 'email' });
    const error = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'card prechat', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const bad = [check(name), check(email, { email: true })].find(Boolean);
      if (bad) return bad.focus();
      try {
        await openConversation({ name: name.input.value.trim(), email: email.input.value.trim() });
        ui.forms.replaceChildren();
        showGreeting();
        renderView();
        ui.input.focus();
      } catch (err) { error.textContent = err instanceof HttpError ? err.message : t('error'); }
    } }, h('p', { text: t('prechatIntro') }), name.el, email.el, error,
    h('button', { class: 'primary', type: 'submit', text: t('startChat') }));
    ui.forms.append(form);
  }

  function showOffline() {
    ui.composer.hidden = true;
    ui.actions.hidden = true;
    const desk = state.desk;
    const intro = [h('p', { text: desk.offline_message || t('offlineIntro') })];
    if (desk.next_opening) {
      const when = new Intl.DateTimeFormat(locale, { dateStyle: 'full', timeStyle: 'short' }).format(new Date(desk.next_opening));
      intro.push(h('p', { text: t('nextOpening', { time: when }) }));
    }
    const email = field(t('email'), { name: 'email', type: 'email', required: true, autocomplete: 'email' });
    const message = field(t('message'), { name: 'message', required: true, multiline: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'card offline', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      const bad = [check(email, { email: true }), check(message)].find(Boolean);
      if (bad) return bad.focus();
      try {
        const address = email.input.value.trim();
        await openConversation({ email: address }, message.input.value.trim());
        renderView();
        ui.forms.firstChild.focus();
      } catch (err) { error.textContent = err instanceof HttpError ? err.message : t('error'); }
    } }, h('h3', { text: t('offlineTitle') }), intro, email.el, message.el, error,
    h('button', { class: 'primary', type: 'submit', text: t('offlineSend') }));
    ui.forms.append(form);
  }

  function showRating() {
    if (state.rated || (state.conversation && state.conversation.rating)) {
      ui.forms.replaceChildren(h('div', { class: 'card done' },
        h('p', { role: 'status', text: state.rated ? t('ratingThanks') : t('closed') }),
        h('button', { class: 'primary', type: 'button', text: t('newChat'), onclick: () => { reset(true); } })));
      ui.body.append(ui.forms);
      return;
    }
    let score = 0;
    const labels = [];
    const stars = h('div', { class: 'stars' });
    for (let n = 1; n <= 5; n += 1) {
      const input = h('input', { type: 'radio', name: 'score', value: String(n), 'aria-label': t('star', { n }) });
      const label = h('label', {}, input, h('span', { 'aria-hidden': 'true', text: '★' }));
      input.addEventListener('change', () => { score = n; labels.forEach((l, i) => l.classList.toggle('on', i < n)); });
      labels.push(label);
      stars.append(label);
    }
    const feedback = field(t('feedback'), { name: 'feedback', multiline: true });
    const error = h('p', { class: 'error', role: 'alert' });
    const form = h('form', { class: 'card rating', novalidate: true, onsubmit: async (e) => {
      e.preventDefault();
      if (!score) { error.textContent = t('required'); stars.querySelector('input').focus(); return; }
      try {
        const body = { score };
        const text = feedback.input.value.trim();
        if (text) body.feedback = text;
        state.conversation = await http('POST', conv('/rating'), body);
        state.rated = score;
        store.save();
        showRating();
        ui.forms.querySelector('button').focus();
      } catch (err) { error.textContent = err instanceof HttpError ? err.message : t('error'); }
    } }, h('p', { role: 'status', text: t('closed') }),
    h('fieldset', {}, h('legend', { text: t('rateQuestion') }), stars), feedback.el, error,
    h('button', { class: 'primary', type: 'submit', text: t('sendRating') }));
    ui.forms.replaceChildren(form);
    // Below the history: the rating is the last thing in the conversation.
    ui.body.append(ui.forms);
  }

  function updateBanner() {
    const c = state.conversation;
    let text = '';
    if (!state.online) text = t('offlineNet');
    else if (c && c.mode === 'queued' && state.queue && state.queue.position) {
      text = t('queuePosition', { n: state.queue.position });
      const secs = state.queue.estimated_wait_secs;
      text += ` ${secs == null ? t('queueWaitUnknown') : t('queueWait', { m: Math.max(1, Math.round(secs / 60)) })}`;
    } else if (c && c.mode === 'queued') text = t('queueWaitUnknown');
    ui.banner.textContent = text;
    ui.banner.hidden = !text;
  }

  // ---------------------------------------------------------------------------------------
  // The conversation.
  // ---------------------------------------------------------------------------------------
  async function openConversation(contact, firstMessage) {
    const body = {};
    if (tenant) body.tenant_id = tenant;
    if (contact) body.contact = contact;
    if (firstMessage) body.first_message = firstMessage;
    if (identity) body.identity = identity;
    const opened = await http('POST', '/v1/conversations', body, { anonymous: true });
    state.token = opened.visitor_token;
    state.conversationId = opened.conversation.id;
    state.identityEmail = identity ? identity.email : null;
    state.cursor = 0;
    state.rated = null;
    state.offlineEmail = opened.offline && contact ? contact.email : null;
    store.save();
    // The desk's own welcome message replaces the greeting shown before.
    const greeting = ui.log.querySelector('.greeting');
    if (greeting && opened.messages.some((m) => m.body === greeting.querySelector('.bubble').textContent)) greeting.remove();
    setConversation(opened.conversation);
    opened.messages.forEach(addMessage);
    connect();
    return opened;
  }

  function setConversation(c) {
    if (!c || (state.conversationId && c.id !== state.conversationId)) return;
    const before = state.conversation;
    if (before && before.version > c.version) return;
    state.conversation = c;
    if (c.mode === 'queued' && (!before || before.mode !== 'queued')) refreshQueue();
    if (c.mode !== 'queued') state.queue = null;
    if (before && before.mode !== c.mode) renderView();
    else if (!before) renderView();
    else updateBanner();
  }

  async function refreshQueue() {
    try {
      state.queue = await http('GET', conv('/queue'));
      updateBanner();
    } catch { /* the socket's queue_position frames will tell */ }
  }

  async function handoff() {
    if (!state.conversationId) return;
    ui.human.disabled = true;
    try {
      setConversation(await http('POST', conv('/handoff'), {}));
    } catch (e) {
      ui.banner.textContent = e instanceof HttpError ? e.message : t('error');
      ui.banner.hidden = false;
    } finally { ui.human.disabled = false; }
  }

  // Messages in order of their sequence; each id once, whatever route it came by.
  function addMessage(m) {
    if (!m || m.conversation_id !== state.conversationId || m.kind === 'note') return;
    const known = state.messages.get(m.id);
    if (known && known.m.seq === m.seq && (known.m.edited_at || null) === (m.edited_at || null)
      && (known.m.deleted_at || null) === (m.deleted_at || null)) return;
    const el = renderMessage(m);
    if (known) known.el.replaceWith(el);
    else {
      const after = [...state.messages.values()].filter((x) => x.m.seq < m.seq).sort((a, b) => b.m.seq - a.m.seq)[0];
      const next = [...state.messages.values()].filter((x) => x.m.seq > m.seq).sort((a, b) => a.m.seq - b.m.seq)[0];
      if (next) next.el.before(el);
      else if (after) after.el.after(el);
      else { const firstPending = ui.log.querySelector('.pending'); if (firstPending) firstPending.before(el); else ui.log.append(el); }
    }
    state.messages.set(m.id, { m, el });
    if (m.client_message_id) {
      const pending = ui.log.querySelector(`[data-cid="${CSS.escape(m.client_message_id)}"]`);
      if (pending) pending.remove();
    }
    if (!known && m.sender.type === 'bot') botReplied();
    if (!known && m.sender.type !== 'customer') {
      hideTyping(m.sender);
      if (!state.open || document.hidden) { state.unread += 1; updateBadge(); }
      markRead();
    }
    scrollDown();
  }

  // A streaming bot's reply as it is written: `bot_delta` pieces keyed by the customer
  // message answered, appended in index order into one growing bubble. The stored bot
  // message replaces it when it arrives (its event and the end marker travel separate
  // paths, so either may come first); a handoff or a failure drops it.
  function botDelta(f) {
    const key = f.reply_to_seq;
    if (streamsDone.has(key)) return;
    let s = streams.get(key);
    if (!s && !f.end && f.text) {
      const bubble = h('div', { class: 'bubble', dir: 'auto' });
      const el = h('div', { class: 'msg theirs streaming', 'data-sender': 'bot', 'aria-busy': 'true' },
        h('span', { class: 'who', text: t('bot') }), bubble);
      s = { el, bubble, pieces: [] };
      streams.set(key, s);
      const firstPending = ui.log.querySelector('.pending');
      if (firstPending) firstPending.before(el); else ui.log.append(el);
      hideTyping({ type: 'bot' });
    }
    if (s && f.text) {
      s.pieces[f.index] = f.text;
      s.bubble.textContent = s.pieces.join('');
      scrollDown();
    }
    if (f.end && f.end !== 'reply') endStream(key);
  }
  function endStream(key) {
    const s = streams.get(key);
    if (s) s.el.remove();
    streams.delete(key);
    streamsDone.add(key);
  }
  // The stored reply answers the oldest stream still shown.
  function botReplied() {
    const [first] = streams.keys();
    if (first !== undefined) endStream(first);
  }

  // The desk's notices in the visitor's language, from the metadata the engine puts on
  // them (`notice` and its parameters); the stored English body otherwise.
  function noticeText(m) {
    const md = m.metadata || {};
    const kind = md.notice;
    if (!kind) return m.body;
    const party = (side) => (md[`notice.${side}`] === 'agent' ? md[`notice.${side}_name`] || '' : t(`party.${md[`notice.${side}`]}`));
    const key = kind === 'queued' && md['notice.reason'] ? 'notice.queued_reason' : `notice.${kind}`;
    const text = t(key, {
      name: md['notice.name'], reason: md['notice.reason'], minutes: md['notice.minutes'],
      from: kind === 'transferred' ? party('from') : '', to: kind === 'transferred' ? party('to') : '',
    });
    return text === key ? m.body : text;
  }

  function whoLabel(sender) {
    if (sender.type === 'customer') return t('you');
    if (sender.type === 'bot') return t('bot');
    if (sender.type === 'system') return t('system');
    return sender.name || t('agent');
  }

  function renderMessage(m) {
    const mine = m.sender.type === 'customer';
    if (m.kind === 'event' || m.sender.type === 'system') {
      return h('div', { class: 'msg event', 'data-seq': String(m.seq), 'data-notice': (m.metadata && m.metadata.notice) || null },
        h('div', { class: 'bubble', dir: 'auto', text: noticeText(m) }));
    }
    const files = (m.attachments || []).map((a) => renderFile(a));
    const body = m.deleted_at ? '—' : m.body;
    const el = h('div', { class: `msg ${mine ? 'mine' : 'theirs'}`, 'data-seq': String(m.seq), 'data-sender': m.sender.type },
      h('span', { class: mine ? 'who sr' : 'who', text: mine ? t('said', { who: t('you') }) : whoLabel(m.sender) }),
      body ? h('div', { class: 'bubble', dir: 'auto', text: body }) : null,
      files.length ? h('div', { class: 'files' }, files) : null);
    if (mine) {
      el.append(h('span', { class: 'status', text: m.seq <= state.agentReadSeq ? t('read') : t('sent') }));
    }
    return el;
  }

  function renderFile(a) {
    const url = conv(`/files/${a.key.split('/').map(encodeURIComponent).join('/')}`);
    const image = /^image\/(png|jpeg|gif|webp)$/.test(a.content_type);
    const btn = h('button', {
      class: `file${image ? ' image' : ''}`, type: 'button',
      'aria-label': image ? t('image', { name: a.name }) : t('download', { name: a.name }),
      onclick: () => download(url, a.name),
    });
    if (image) {
      const img = h('img', { alt: '' });
      btn.append(img);
      // Keeps the newest message in view once the picture has its height.
      img.addEventListener('load', () => { if (ui.body.scrollHeight - ui.body.scrollTop - ui.body.clientHeight < img.height + 80) scrollDown(); });
      http('GET', `${url}.thumb.png`, undefined, { blob: true })
        .then((b) => { img.src = URL.createObjectURL(b); })
        .catch(() => { btn.classList.remove('image'); btn.replaceChildren(svg(ICON.clip), a.name); });
    } else {
      btn.append(svg(ICON.clip), `${a.name} (${formatSize(a.size)})`);
    }
    return btn;
  }
  const formatSize = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${Math.round(n / 1024)} KB` : `${(n / 1048576).toFixed(1)} MB`);

  // Files need the visitor token, which an <a href> cannot carry: fetched, then saved.
  async function download(url, name) {
    try {
      const blob = await http('GET', url, undefined, { blob: true });
      const href = URL.createObjectURL(blob);
      const a = h('a', { href, download: name });
      ui.root.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60000);
    } catch { ui.banner.textContent = t('error'); ui.banner.hidden = false; }
  }

  function scrollDown() { ui.body.scrollTop = ui.body.scrollHeight; }

  function updateReceipts() {
    for (const { m, el } of state.messages.values()) {
      const s = el.querySelector('.status');
      if (s && m.sender.type === 'customer' && !s.classList.contains('waiting')) s.textContent = m.seq <= state.agentReadSeq ? t('read') : t('sent');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sending: every message goes through the outbox in localStorage first, with its
  // client_message_id; it leaves the outbox when the server has it. A reload, a dropped
  // request or a retry after the network returns sends the same id: stored once.
  // ---------------------------------------------------------------------------------------
  function onSend(e) {
    e.preventDefault();
    const body = ui.input.value.trim();
    if (!body) return;
    ui.input.value = '';
    autosize();
    typingChanged(false);
    enqueue(body, []);
  }

  function enqueue(body, attachments) {
    const item = { cid: `w-${crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`}`, body, attachments };
    state.outbox.push(item);
    store.save();
    renderPending(item);
    flush();
  }

  function renderPending(item) {
    const el = h('div', { class: 'msg mine pending', 'data-cid': item.cid },
      h('span', { class: 'who sr', text: t('said', { who: t('you') }) }),
      item.body ? h('div', { class: 'bubble', dir: 'auto', text: item.body }) : null,
      item.attachments.length ? h('div', { class: 'files' }, item.attachments.map((a) => h('span', { class: 'file' }, svg(ICON.clip), a.name))) : null,
      h('span', { class: `status${state.online ? '' : ' waiting'}`, text: state.online ? t('pending') : t('waitingNetwork') }));
    ui.log.append(el);
    scrollDown();
  }
  function renderOutbox() {
    for (const item of state.outbox) if (!ui.log.querySelector(`[data-cid="${CSS.escape(item.cid)}"]`)) renderPending(item);
  }
  function markPendingWaiting(waiting) {
    for (const s of ui.log.querySelectorAll('.pending .status')) {
      s.textContent = waiting ? t('waitingNetwork') : t('pending');
      s.classList.toggle('waiting', waiting);
    }
  }

  let flushing = null;
  let flushTimer = null;
  function flush() {
    if (!flushing) flushing = flushOutbox().finally(() => { flushing = null; });
    return flushing;
  }
  async function flushOutbox() {
    while (state.outbox.length) {
      const item = state.outbox[0];
      try {
        if (!state.conversationId) await openConversation(null);
        const r = await http('POST', conv('/messages'), { body: item.body, attachments: item.attachments, client_message_id: item.cid });
        state.outbox.shift();
        store.save();
        addMessage(r.message);
        (r.replies || []).forEach(addMessage);
        setConversation(r.conversation);
      } catch (e) {
        if (retryable(e)) {
          // Tried again when the socket is back, or soon if the network seems up.
          markPendingWaiting(true);
          clearTimeout(flushTimer);
          if (state.online) flushTimer = setTimeout(flush, 3000);
          return;
        }
        // Refused for good (too long, closed conversation ...): say so, keep the text.
        state.outbox.shift();
        store.save();
        const el = ui.log.querySelector(`[data-cid="${CSS.escape(item.cid)}"] .status`);
        if (el) { el.textContent = e.message; el.classList.add('waiting'); el.parentElement.classList.remove('pending'); }
      }
    }
  }

  async function upload(files) {
    try {
      if (!state.conversationId) await openConversation(null);
      const form = new FormData();
      for (const f of files) form.append('file', f, f.name);
      const r = await http('POST', conv('/files'), form);
      enqueue('', r.items);
    } catch (e) {
      ui.banner.textContent = t('uploadFailed', { reason: e instanceof HttpError ? e.message : t('offlineNet') });
      ui.banner.hidden = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // The socket: subscribe from the stored cursor (the server replays what was missed, each
  // event once), reconnect with backoff, and fetch over HTTP whatever the socket could not
  // replay (a new conversation, a cursor too old). Events at or below the cursor are
  // dropped, messages are keyed by id: nothing shows twice.
  // ---------------------------------------------------------------------------------------
  let ws = null;
  let attempts = 0;
  let retryTimer = null;
  let pingTimer = null;
  let lastFrame = 0;

  function connect() {
    if (ws || !state.token || !state.conversationId) return;
    clearTimeout(retryTimer);
    const url = `${server.replace(/^http/, 'ws')}/v1/ws`;
    const sock = new WebSocket(url, ['chat.v1', state.token]);
    ws = sock;
    sock.onopen = () => {
      lastFrame = Date.now();
      const sub = { type: 'subscribe', id: 'sub', conversation_id: state.conversationId };
      if (state.cursor) sub.since = state.cursor;
      sock.send(JSON.stringify(sub));
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        // A socket that stopped answering (a network that died quietly) is replaced.
        if (Date.now() - lastFrame > 45000) sock.close();
        else if (sock.readyState === 1) sock.send(JSON.stringify({ type: 'ping' }));
      }, 20000);
    };
    sock.onmessage = (e) => { lastFrame = Date.now(); onFrame(JSON.parse(e.data)); };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      clearInterval(pingTimer);
      if (e.code === 4001) { expired(); return; }
      if (e.code === 4009) state.cursor = 0;
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    if (!state.token || !state.online) return;
    const delay = Math.min(15000, 500 * 2 ** attempts) * (0.75 + Math.random() / 2);
    attempts += 1;
    retryTimer = setTimeout(connect, delay);
  }

  // The visitor token expired or was revoked: this conversation cannot be followed.
  function expired() { reset(true); }

  function onFrame(f) {
    switch (f.type) {
      case 'subscribed':
        attempts = 0;
        if (f.cursor > state.cursor) { state.cursor = f.cursor; store.save(); }
        sync();
        flush();
        break;
      case 'resync_required':
        if (f.cursor > state.cursor) { state.cursor = f.cursor; store.save(); }
        sync();
        break;
      case 'event':
        if (f.seq <= state.cursor) return;
        state.cursor = f.seq;
        store.save();
        onEvent(f);
        break;
      case 'typing':
        if (f.conversation_id === state.conversationId && f.sender && f.sender.type !== 'customer') {
          if (f.typing === false) hideTyping(f.sender); else showTyping(f.sender);
        }
        break;
      case 'bot_delta':
        if (f.conversation_id === state.conversationId) botDelta(f);
        break;
      case 'queue_position':
        if (f.conversation_id === state.conversationId) {
          state.queue = { position: f.position, estimated_wait_secs: f.estimated_wait_secs };
          updateBanner();
        }
        break;
      default:
    }
  }

  function onEvent(f) {
    const d = f.data || {};
    switch (f.event) {
      case 'message_created':
      case 'message_updated':
        addMessage(d.message);
        break;
      case 'conversation_created':
      case 'conversation_updated': {
        setConversation(d.conversation);
        break;
      }
      case 'read_updated': {
        const cur = d.cursor || d.read || d;
        if (cur.reader && cur.reader.type !== 'customer' && cur.seq > state.agentReadSeq) {
          state.agentReadSeq = cur.seq;
          updateReceipts();
        }
        break;
      }
      case 'conversation_deleted':
        reset(true);
        break;
      default:
    }
  }

  // Whatever the socket could not replay: the conversation, the messages after the newest
  // we hold, the agents' read cursors.
  let syncing = null;
  let syncedSeq = 0;
  function sync() {
    if (!syncing) syncing = doSync().finally(() => { syncing = null; });
    return syncing;
  }
  async function doSync() {
    if (!state.conversationId) return;
    try {
      const c = await http('GET', conv());
      setConversation(c);
      // From the newest message read over HTTP, not the newest shown: a message posted
      // just now must not hide the history before it.
      for (let page = 0; page < 20; page += 1) {
        const list = await http('GET', conv(`/messages?after=${syncedSeq}&limit=100`));
        list.items.forEach(addMessage);
        if (list.items.length) syncedSeq = list.items[list.items.length - 1].seq;
        if (list.items.length < 100) break;
      }
      const reads = await http('GET', conv('/read'));
      for (const r of reads.items || []) {
        if (r.reader && r.reader.type !== 'customer' && r.seq > state.agentReadSeq) state.agentReadSeq = r.seq;
      }
      updateReceipts();
      markRead();
    } catch (e) {
      if (e instanceof HttpError && (e.status === 401 || e.status === 404)) expired();
    }
  }

  // Read receipts: the visitor has read what is on screen while the window is open.
  let readTimer = null;
  function markRead() {
    if (!readTimer) readTimer = setTimeout(() => { readTimer = null; sendRead(); }, 200);
  }
  function sendRead() {
    if (!state.open || document.hidden || !state.conversationId) return;
    const top = Math.max(0, ...[...state.messages.values()].filter((x) => x.m.sender.type !== 'customer').map((x) => x.m.seq));
    if (top <= state.myReadSeq) return;
    state.myReadSeq = top;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify({ type: 'read', conversation_id: state.conversationId, seq: top }));
    else http('POST', conv('/read'), { seq: top }).catch(() => { state.myReadSeq = 0; });
  }

  // Typing, both ways.
  let typingSentAt = 0;
  let typingStop = null;
  function typingChanged(active) {
    if (!ws || ws.readyState !== 1 || !state.conversationId) return;
    clearTimeout(typingStop);
    const send = (typing) => ws && ws.readyState === 1 && ws.send(JSON.stringify({ type: 'typing', conversation_id: state.conversationId, typing }));
    if (!active) { if (typingSentAt) send(false); typingSentAt = 0; return; }
    if (Date.now() - typingSentAt > 3000) { typingSentAt = Date.now(); send(true); }
    typingStop = setTimeout(() => { typingSentAt = 0; send(false); }, 4000);
  }
  let typingHide = null;
  function showTyping(sender) {
    ui.typing.textContent = t('typing', { name: whoLabel(sender) });
    clearTimeout(typingHide);
    // An agent whose typing=false never arrives (a dropped socket) is not typing forever.
    typingHide = setTimeout(() => { ui.typing.textContent = ''; }, 8000);
  }
  function hideTyping() { clearTimeout(typingHide); ui.typing.textContent = ''; }

  // ---------------------------------------------------------------------------------------
  // Opening and closing the window; the network; starting over.
  // ---------------------------------------------------------------------------------------
  function openWidget() {
    state.open = true;
    ui.panel.hidden = false;
    ui.launcher.setAttribute('aria-expanded', 'true');
    ui.launcher.setAttribute('aria-label', t('closeChat'));
    state.unread = 0;
    updateBadge();
    if (state.conversationId) connect();
    scrollDown();
    markRead();
    const first = ui.forms.querySelector('input, textarea, button');
    (first && !ui.forms.hidden ? first : ui.composer.hidden ? ui.panel.querySelector('button') : ui.input).focus();
  }
  function close(returnFocus) {
    state.open = false;
    ui.panel.hidden = true;
    ui.launcher.setAttribute('aria-expanded', 'false');
    ui.launcher.setAttribute('aria-label', t('openChat'));
    if (returnFocus) ui.launcher.focus();
  }
  function updateBadge() {
    ui.badge.textContent = state.unread > 9 ? '9+' : String(state.unread);
    ui.badge.hidden = !state.unread;
  }

  function reset(render) {
    if (ws) { const s = ws; ws = null; s.close(); }
    clearTimeout(retryTimer);
    Object.assign(state, {
      token: null, conversationId: null, cursor: 0, outbox: [], identityEmail: null, offlineEmail: null,
      rated: null, conversation: null, agentReadSeq: 0, myReadSeq: 0, queue: null,
    });
    state.messages = new Map();
    streams.clear();
    streamsDone.clear();
    syncedSeq = 0;
    store.save();
    if (!render) return;
    ui.log.replaceChildren();
    ui.body.replaceChildren(ui.forms, ui.log);
    renderView();
    const first = ui.forms.querySelector('input, textarea') || ui.input;
    if (state.open) first.focus();
  }

  window.addEventListener('online', () => {
    state.online = true;
    attempts = 0;
    markPendingWaiting(false);
    updateBanner();
    if (state.conversationId) connect(); else flush();
  });
  window.addEventListener('offline', () => {
    state.online = false;
    updateBanner();
    markPendingWaiting(true);
    // Nothing can pass; a fresh socket with a cursor is what resumes when the network does.
    if (ws) { const s = ws; ws = null; clearInterval(pingTimer); s.close(); }
  });
  document.addEventListener('visibilitychange', markRead);
  // A small API for the page: open or close the window from its own buttons.
  const api = { open: openWidget, close: () => close(false), locale, server };

  if (document.body) mount();
  else document.addEventListener('DOMContentLoaded', mount, { once: true });
})();
