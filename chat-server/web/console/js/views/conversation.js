// One conversation: its history (paged back with `before`), live messages, typing both
// ways, read receipts, internal notes (marked, and posted to /notes, never as messages),
// files, the canned-response picker and the lifecycle actions.
import { noticeText } from '../notice.js';
import { api, fileUrl, query } from '../api.js';
import { h, replace, toast, uid, when } from '../dom.js';
import { t, lang } from '../i18n.js';
import { state, upsertConversation, contactName, isLead } from '../state.js';
import { seen } from '../notify.js';
import { renderContact } from './contact.js';

const PAGE = 50;
let view = null;
let socket = null;

/** The socket typing and read frames go out on (set by main.js). */
export function useSocket(s) { socket = s; }

/** The empty state of the main pane. */
export function renderNothingOpen(main) {
  view = null;
  replace(main, h('div', { class: 'nothing' }, h('h2', {}, t('conv.none_title')), h('p', {}, t('conv.none_hint'))));
}

/** Opens conversation `id` in `main` and its contact in `aside`. */
export async function openConversation(id, main, aside) {
  const [conv, page, cursors] = await Promise.all([
    api('GET', `/v1/conversations/${id}`),
    api('GET', `/v1/conversations/${id}/messages?limit=${PAGE}`),
    api('GET', `/v1/conversations/${id}/read`).catch(() => ({ items: [] })),
  ]);
  // Another conversation was opened while these answers were on their way.
  if (state.current !== id) return;
  upsertConversation(conv);
  view = {
    id, main, aside,
    messages: new Map(page.items.map((m) => [m.id, m])),
    more: page.items.length === PAGE,
    customerRead: Math.max(0, ...cursors.items.filter((r) => r.reader.type === 'customer').map((r) => r.seq)),
    mode: 'reply',
    pending: [],
    typingSent: 0,
    // A streaming bot's replies as they are written, by the customer message they
    // answer (`reply_to_seq`); and the ones already ended, so a late piece is dropped.
    streams: new Map(),
    streamsDone: new Set(),
  };
  render();
  renderContact(aside, conv).catch(() => {});
  markRead();
  seen();
}

function conv() { return state.conversations.get(view.id); }

function render() {
  const c = conv();
  // The scrolling log holds a list; role=log on the list itself would hide its items' list semantics.
  view.log = h('div', { class: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': t('conv.messages'), tabindex: '0' });
  view.typing = h('p', { class: 'typing', 'aria-live': 'polite' });
  view.header = h('header', { class: 'conv-head' });
  view.headerKey = null;
  replace(view.main, h('section', { class: 'conversation', 'aria-labelledby': 'conv-title', 'data-id': c.id },
    view.header, view.log, view.typing, composer()));
  renderHeader();
  renderMessages(true);
}

// ---- header and actions --------------------------------------------------------------

function renderHeader() {
  const c = conv();
  const me = state.me;
  const mine = c.assigned_agent_id === me.id;
  const open = c.mode === 'agent' || c.mode === 'paused';
  const assignee = c.assigned_agent_id ? (state.agents.get(c.assigned_agent_id)?.name || '…') : t('conv.unassigned');
  // Every event of the conversation comes here (a read cursor moving, a message counted),
  // and most change nothing the header shows. Redrawing it anyway would replace a button
  // between the press and the release of a click, which then never fires, and would throw
  // away a tag being typed: the header is drawn again only when what it shows changed.
  const key = JSON.stringify([c.mode, c.assigned_agent_id, assignee, c.snooze, c.priority, c.tags, c.channel,
    contactName(c.contact_id, t('contact.visitor')), me.id, me.role, lang()]);
  if (key === view.headerKey) return;
  view.headerKey = key;
  const action = (name, fn, show = true) => show
    ? h('button', { type: 'button', 'data-action': name, onclick: () => run(fn) }, t(`action.${name}`))
    : null;
  const priority = h('select', { id: uid('prio'), value: c.priority || 'medium', onchange: (e) => run(() => patch({ priority: e.target.value })) },
    ['low', 'medium', 'high', 'urgent'].map((p) => h('option', { value: p }, t(`priority.${p}`))));
  const tagInput = h('input', { id: uid('tag'), type: 'text', placeholder: t('conv.add_tag'), onkeydown: (e) => {
    if (e.key === 'Enter' && e.target.value.trim()) { e.preventDefault(); run(() => patch({ add_tags: [e.target.value.trim()] })); }
  } });
  replace(view.header,
    h('div', { class: 'title-row' },
      h('h2', { id: 'conv-title' }, contactName(c.contact_id, t('contact.visitor'))),
      h('span', { class: `badge mode-${c.mode}` }, t(`mode.${c.mode}`)),
      h('span', { class: 'muted' }, t(`channel.${c.channel}`), ' · ', t('conv.assigned_to', { name: assignee })),
      c.snooze ? h('span', { class: 'badge snoozed' }, c.snooze.until ? t('conv.snoozed_until', { when: when(c.snooze.until, lang()) }) : t('conv.snoozed_reply')) : null),
    h('div', { class: 'actions', role: 'toolbar', 'aria-label': t('conv.actions') },
      action('claim', () => { state.claiming.add(c.id); return api('POST', `/v1/conversations/${c.id}/claim`); }, c.mode === 'queued'),
      action('assign', () => pickAgent('assign'), isLead() && c.mode !== 'closed' && c.mode !== 'archived'),
      action('transfer', () => pickAgent('transfer'), open && (mine || isLead())),
      action('snooze', snoozeDialog, open && c.assigned_agent_id && !c.snooze),
      action('unsnooze', () => api('DELETE', `/v1/conversations/${c.id}/snooze`), Boolean(c.snooze)),
      action('close', () => api('POST', `/v1/conversations/${c.id}/close`, {}), c.mode !== 'closed' && c.mode !== 'archived'),
      action('reopen', () => api('POST', `/v1/conversations/${c.id}/reopen`), c.mode === 'closed'),
      h('label', { for: priority.id }, t('conv.priority')), priority),
    h('div', { class: 'tags' },
      h('ul', { class: 'tag-list', 'aria-label': t('conv.tags') }, (c.tags || []).map((tag) => h('li', { class: 'tag' }, tag,
        h('button', { type: 'button', class: 'tag-remove', 'aria-label': t('conv.remove_tag', { tag }), onclick: () => run(() => patch({ remove_tags: [tag] })) }, '×')))),
      h('label', { class: 'visually-hidden', for: tagInput.id }, t('conv.add_tag')), tagInput));
}

async function run(fn) {
  try {
    const answer = await fn();
    if (answer && answer.id === view?.id && answer.mode) { upsertConversation(answer); renderHeader(); }
  } catch (err) {
    toast(err.message, 'error');
  }
}

const patch = (body) => api('PATCH', `/v1/conversations/${view.id}`, body);

function dialog(title, body, onSubmit) {
  const d = h('dialog', { class: 'dialog', 'aria-labelledby': 'dialog-title' });
  const form = h('form', { method: 'dialog', async onsubmit(e) {
    e.preventDefault();
    try { await onSubmit(new FormData(form)); d.close(); } catch (err) { toast(err.message, 'error'); }
  } },
  h('h2', { id: 'dialog-title' }, title), body,
  h('div', { class: 'dialog-buttons' },
    h('button', { type: 'button', onclick: () => d.close() }, t('common.cancel')),
    h('button', { type: 'submit', class: 'primary' }, t('common.ok'))));
  d.append(form);
  const back = document.activeElement;
  d.addEventListener('close', () => { d.remove(); back?.focus?.(); });
  document.body.append(d);
  d.showModal();
  return d;
}

function pickAgent(kind) {
  const c = conv();
  const agentSel = h('select', { id: uid('agent'), name: 'agent_id' },
    kind === 'transfer' ? h('option', { value: '' }, t('conv.no_agent')) : null,
    [...state.agents.values()].filter((a) => a.active && a.id !== c.assigned_agent_id)
      .map((a) => h('option', { value: a.id }, `${a.name} (${t(`availability.${a.availability}`)})`)));
  const dept = h('input', { id: uid('dept'), name: 'department', type: 'text' });
  const reason = h('input', { id: uid('reason'), name: 'reason', type: 'text' });
  const fields = [h('label', { for: agentSel.id }, t('conv.agent')), agentSel];
  if (kind === 'transfer') fields.push(h('label', { for: dept.id }, t('conv.department')), dept, h('label', { for: reason.id }, t('conv.reason')), reason);
  dialog(t(`action.${kind}`), h('div', { class: 'fields' }, fields), async (data) => {
    const body = {};
    for (const [k, v] of data) if (v) body[k] = v;
    await run(() => api('POST', `/v1/conversations/${c.id}/${kind}`, body));
  });
}

function snoozeDialog() {
  const sel = h('select', { id: uid('snooze'), name: 'until' },
    h('option', { value: 'reply' }, t('snooze.reply')),
    h('option', { value: '1h' }, t('snooze.hour')),
    h('option', { value: 'tomorrow' }, t('snooze.tomorrow')));
  dialog(t('action.snooze'), h('div', { class: 'fields' }, h('label', { for: sel.id }, t('snooze.until')), sel), async (data) => {
    const choice = data.get('until');
    let until = null;
    if (choice === '1h') until = new Date(Date.now() + 3600e3).toISOString();
    if (choice === 'tomorrow') { const d = new Date(); d.setDate(d.getDate() + 1); d.setHours(9, 0, 0, 0); until = d.toISOString(); }
    await run(() => api('POST', `/v1/conversations/${view.id}/snooze`, { until }));
  });
}

// ---- messages ------------------------------------------------------------------------

function sorted() { return [...view.messages.values()].sort((a, b) => a.seq - b.seq); }

function renderMessages(toBottom) {
  const log = view.log;
  const atBottom = toBottom || log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const list = sorted();
  replace(log, h('ol', { class: 'message-list' },
    view.more ? h('li', { class: 'older' }, h('button', { type: 'button', onclick: older }, t('conv.older'))) : null,
    list.map(message),
    [...view.streams.values()].map(streaming)));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function streaming(pieces) {
  return h('li', { class: 'msg bot streaming', 'aria-busy': 'true' },
    h('div', { class: 'meta' }, h('span', { class: 'sender' }, t('sender.bot'))),
    h('p', { class: 'body', dir: 'auto' }, pieces.join('')));
}

function senderName(m) {
  const s = m.sender;
  if (s.type === 'agent') return (s.id && state.agents.get(s.id)?.name) || s.name || t('sender.agent');
  if (s.type === 'customer') return contactName(conv().contact_id, t('contact.visitor'));
  return t(`sender.${s.type}`);
}

function message(m) {
  if (m.kind === 'event') return h('li', { class: 'msg event', 'data-seq': m.seq, 'data-notice': m.metadata?.notice }, h('bdi', {}, noticeText(m)), ' · ', h('time', { datetime: m.created_at }, when(m.created_at, lang())));
  const note = m.kind === 'note';
  const own = m.sender.type === 'agent';
  const receipt = own && !note ? h('span', { class: 'receipt' }, m.seq <= view.customerRead ? t('conv.seen') : t('conv.sent')) : null;
  return h('li', { class: `msg ${m.sender.type}${note ? ' note' : ''}`, 'data-seq': m.seq, 'data-kind': m.kind },
    h('div', { class: 'meta' },
      note ? h('strong', { class: 'note-label' }, t('conv.note_label')) : null,
      h('span', { class: 'sender' }, senderName(m)),
      h('time', { datetime: m.created_at }, when(m.created_at, lang())),
      m.edited_at ? h('span', {}, t('conv.edited')) : null,
      receipt),
    // dir=auto: a customer's Latin text reads left-to-right inside the Arabic console, and back.
    m.deleted_at ? h('p', { class: 'body deleted' }, t('conv.deleted')) : h('p', { class: 'body', dir: 'auto' }, m.body),
    (m.attachments || []).length ? h('ul', { class: 'files', 'aria-label': t('conv.files') }, m.attachments.map((a) => attachment(m, a))) : null);
}

function attachment(m, a) {
  const download = h('button', { type: 'button', class: 'link file', 'data-key': a.key, onclick: () => saveFile(m.conversation_id, a) },
    t('conv.download', { name: a.name }), ` (${size(a.size)})`);
  let thumb = null;
  if (/^image\/(png|jpeg|gif|webp)$/.test(a.content_type)) {
    thumb = h('img', { class: 'thumb', alt: a.name });
    // The preview arrives after the list is drawn: keep a log that was at its end there.
    const log = view.log;
    thumb.onload = () => { if (log.scrollHeight - log.scrollTop - log.clientHeight < thumb.height + 60) log.scrollTop = log.scrollHeight; };
    fileUrl(m.conversation_id, `${a.key}.thumb.png`).then((url) => { thumb.src = url; }).catch(() => thumb.remove());
  }
  return h('li', {}, thumb, download);
}

function size(n) {
  return n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`;
}

async function saveFile(conversationId, a) {
  try {
    const url = await fileUrl(conversationId, a.key);
    const link = h('a', { href: url, download: a.name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) { toast(err.message, 'error'); }
}

async function older() {
  const first = sorted()[0];
  const page = await api('GET', `/v1/conversations/${view.id}/messages${query({ before: first?.seq, limit: PAGE })}`);
  for (const m of page.items) view.messages.set(m.id, m);
  view.more = page.items.length === PAGE;
  const log = view.log;
  const fromBottom = log.scrollHeight - log.scrollTop;
  renderMessages(false);
  log.scrollTop = log.scrollHeight - fromBottom;
}

/** Tells the server (and so the customer) what the agent has seen. */
function markRead() {
  const c = conv();
  const last = sorted().at(-1);
  if (!last || document.hidden) return;
  if ((c.agent_read_seq || 0) >= last.seq) return;
  c.agent_read_seq = last.seq;
  api('POST', `/v1/conversations/${c.id}/read`, { seq: last.seq }).catch(() => {});
}

// ---- live ----------------------------------------------------------------------------

/** message_created / message_updated for any conversation. */
export function messageEvent(m) {
  if (!view || m.conversation_id !== view.id) return;
  const fresh = !view.messages.has(m.id);
  view.messages.set(m.id, m);
  if (m.sender.type === 'customer') showTyping(null);
  // The stored reply answers the oldest stream still shown.
  if (fresh && m.sender.type === 'bot') {
    const [first] = view.streams.keys();
    if (first !== undefined) endStream(first);
  }
  renderMessages(false);
  markRead();
}

/**
 * A streaming bot's piece (`bot_delta`) for the open conversation: the pieces grow one
 * bubble, which the stored bot message replaces when it arrives (the two travel separate
 * paths, so either may come first); a handoff or a failure drops it.
 */
export function botDeltaEvent(f) {
  if (!view || f.conversation_id !== view.id || view.streamsDone.has(f.reply_to_seq)) return;
  let pieces = view.streams.get(f.reply_to_seq);
  if (!pieces && !f.end && f.text) {
    pieces = [];
    view.streams.set(f.reply_to_seq, pieces);
  }
  if (pieces && f.text) pieces[f.index] = f.text;
  // The end of a reply whose stored message came first (it travelled faster): nothing
  // else would remove the stream.
  const stored = f.end === 'reply' && [...view.messages.values()].some((m) => m.sender.type === 'bot' && m.seq > f.reply_to_seq);
  if ((f.end && f.end !== 'reply') || stored) endStream(f.reply_to_seq);
  renderMessages(false);
}

function endStream(key) {
  view.streams.delete(key);
  view.streamsDone.add(key);
}

export function conversationEvent(c) {
  if (view && c.id === view.id) renderHeader();
}

export function readEvent(cursor) {
  if (!view || cursor.conversation_id !== view.id || cursor.reader.type !== 'customer') return;
  view.customerRead = Math.max(view.customerRead, cursor.seq);
  renderMessages(false);
}

export function typingEvent(f) {
  if (!view || f.conversation_id !== view.id) return;
  if (f.sender.type === 'agent' && f.sender.id === state.me.id) return;
  showTyping(f.typing ? f.sender : null);
}

function showTyping(sender) {
  clearTimeout(view.typingTimer);
  if (!sender) { view.typing.textContent = ''; return; }
  const name = sender.type === 'customer' ? contactName(conv().contact_id, t('contact.visitor')) : sender.name || t(`sender.${sender.type}`);
  view.typing.textContent = t('conv.typing', { name });
  view.typingTimer = setTimeout(() => { view.typing.textContent = ''; }, 6000);
}

// ---- composer ------------------------------------------------------------------------

function composer() {
  const text = h('textarea', { id: 'composer-text', rows: 3, 'aria-label': t('composer.reply_label'),
    'aria-autocomplete': 'list', 'aria-controls': 'canned-list' });
  const picker = h('ul', { id: 'canned-list', class: 'canned', role: 'listbox', 'aria-label': t('composer.canned'), hidden: true });
  const files = h('input', { id: uid('files'), type: 'file', multiple: true, class: 'visually-hidden' });
  const chips = h('ul', { class: 'pending', 'aria-label': t('composer.attached') });
  const replyTab = h('button', { type: 'button', class: 'tab', 'data-mode': 'reply', 'aria-pressed': 'true' }, t('composer.reply'));
  const noteTab = h('button', { type: 'button', class: 'tab', 'data-mode': 'note', 'aria-pressed': 'false' }, t('composer.note'));
  const form = h('form', { class: 'composer', 'aria-label': t('composer.label') });
  view.composer = { text, form, setMode };

  function setMode(mode) {
    view.mode = mode;
    replyTab.setAttribute('aria-pressed', String(mode === 'reply'));
    noteTab.setAttribute('aria-pressed', String(mode === 'note'));
    form.classList.toggle('as-note', mode === 'note');
    text.setAttribute('aria-label', t(mode === 'note' ? 'composer.note_label' : 'composer.reply_label'));
    text.placeholder = t(mode === 'note' ? 'composer.note_placeholder' : 'composer.reply_placeholder');
    // A file goes up for a message or for a note (staff only); switching drops the other kind.
    view.pending = [];
    renderChips();
  }
  replyTab.onclick = () => { setMode('reply'); text.focus(); };
  noteTab.onclick = () => { setMode('note'); text.focus(); };

  function renderChips() {
    replace(chips, view.pending.map((a, i) => h('li', { class: 'chip' }, a.name,
      h('button', { type: 'button', 'aria-label': t('composer.remove_file', { name: a.name }), onclick: () => { view.pending.splice(i, 1); renderChips(); } }, '×'))));
  }

  files.onchange = async () => {
    if (!files.files.length) return;
    const data = new FormData();
    for (const f of files.files) data.append('file', f, f.name);
    files.value = '';
    try {
      const purpose = view.mode === 'note' ? '?purpose=note' : '';
      const answer = await api('POST', `/v1/conversations/${view.id}/files${purpose}`, data);
      view.pending.push(...answer.items);
      renderChips();
    } catch (err) { toast(err.message, 'error'); }
  };

  // The canned-response picker: "/" then a shortcut's first letters.
  let options = [];
  let active = -1;
  const closePicker = () => { picker.hidden = true; options = []; active = -1; text.removeAttribute('aria-activedescendant'); };
  const highlight = (i) => {
    active = i;
    for (const [j, li] of [...picker.children].entries()) li.setAttribute('aria-selected', String(j === i));
    if (i >= 0) text.setAttribute('aria-activedescendant', `canned-${i}`);
  };
  const choose = (i) => {
    const c = options[i];
    if (!c) return;
    text.value = c.preview ?? c.body;
    closePicker();
    text.focus();
  };
  let pickerSeq = 0;
  async function updatePicker() {
    const m = /^\/([\p{L}\p{N}_-]*)$/u.exec(text.value);
    if (!m) { closePicker(); return; }
    const seq = ++pickerSeq;
    const answer = await api('GET', `/v1/canned-responses${query({ q: m[1], conversation_id: view.id, limit: 8 })}`).catch(() => ({ items: [] }));
    if (seq !== pickerSeq) return;
    options = answer.items;
    if (!options.length) { closePicker(); return; }
    replace(picker, options.map((c, i) => h('li', { id: `canned-${i}`, role: 'option', 'aria-selected': 'false', onmousedown: (e) => { e.preventDefault(); choose(i); } },
      h('strong', {}, `/${c.shortcut}`), ' ', c.title, h('span', { class: 'preview' }, c.preview ?? c.body))));
    picker.hidden = false;
    highlight(0);
  }

  text.addEventListener('input', () => { updatePicker(); typing(); });
  text.addEventListener('keydown', (e) => {
    if (!picker.hidden && options.length) {
      if (e.key === 'ArrowDown') { e.preventDefault(); highlight((active + 1) % options.length); return; }
      if (e.key === 'ArrowUp') { e.preventDefault(); highlight((active - 1 + options.length) % options.length); return; }
      if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); choose(active); return; }
      if (e.key === 'Escape') { e.preventDefault(); closePicker(); return; }
    }
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); }
  });
  text.addEventListener('blur', () => setTimeout(closePicker, 100));

  form.onsubmit = async (e) => {
    e.preventDefault();
    const body = text.value.trim();
    if (!body && !view.pending.length) return;
    const attachments = view.pending;
    try {
      let m;
      if (view.mode === 'note') {
        m = await api('POST', `/v1/conversations/${view.id}/notes`, { body, attachments });
      } else {
        m = (await api('POST', `/v1/conversations/${view.id}/messages`, { body, attachments, client_message_id: crypto.randomUUID() })).message;
      }
      text.value = '';
      view.pending = [];
      renderChips();
      stopTyping();
      messageEvent(m);
    } catch (err) { toast(err.message, 'error'); }
  };

  setMode('reply');
  return h('div', { class: 'composer-wrap' },
    h('div', { class: 'tabs', role: 'group', 'aria-label': t('composer.kind') }, replyTab, noteTab),
    append(form, picker, text, chips,
      h('div', { class: 'composer-buttons' },
        h('label', { for: files.id, class: 'button' }, t('composer.attach')), files,
        h('span', { class: 'hint' }, t('composer.hint')),
        h('button', { type: 'submit', class: 'primary' }, t('composer.send')))));
}

function append(el, ...children) { el.append(...children); return el; }

function typing() {
  if (view.mode !== 'reply') return;
  const now = Date.now();
  if (now - view.typingSent > 3000) {
    view.typingSent = now;
    socket?.send({ type: 'typing', conversation_id: view.id, typing: true });
  }
  clearTimeout(view.typingStop);
  view.typingStop = setTimeout(stopTyping, 4000);
}

function stopTyping() {
  clearTimeout(view.typingStop);
  if (!view.typingSent) return;
  view.typingSent = 0;
  socket?.send({ type: 'typing', conversation_id: view.id, typing: false });
}

/** r and n: focus the composer as a reply or a note. */
export function focusComposer(mode) {
  if (!view) return false;
  view.composer.setMode(mode);
  view.composer.text.focus();
  return true;
}

/** e: close the open conversation. */
export function closeOpen() {
  if (!view) return;
  const c = conv();
  if (c.mode === 'closed' || c.mode === 'archived') return;
  run(() => api('POST', `/v1/conversations/${c.id}/close`, {}));
}

export const openId = () => view?.id;
export function refreshOpen() { if (view) { renderHeader(); renderMessages(false); } }
