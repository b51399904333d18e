// The inbox: the queue and the agent's conversations, filtered (mode, mine, tag, channel,
// text), with the server's counts per mode. Live events update it at once; a reload a
// moment later brings the server's order and counts.
import { api, query } from '../api.js';
import { h, replace, uid, when } from '../dom.js';
import { t, lang } from '../i18n.js';
import { state, changed, on, upsertConversation, contactName } from '../state.js';
import { noticeText } from '../notice.js';

const MODES = ['', 'queued', 'agent', 'paused', 'bot', 'closed'];
const CHANNELS = ['', 'web', 'whatsapp', 'telegram', 'email', 'sms', 'api', 'other'];
let listEl, tabsEl, moreEl, reloadTimer;

/** The inbox column (a navigation landmark). */
export function renderInbox() {
  tabsEl = h('div', { class: 'modes', role: 'group', 'aria-label': t('inbox.modes') });
  listEl = h('ul', { class: 'conversations', id: 'conversation-list', 'aria-label': t('inbox.list') });
  moreEl = h('button', { type: 'button', class: 'more', hidden: true, onclick: loadMore }, t('inbox.more'));
  const f = state.filters;
  const mine = h('input', { type: 'checkbox', id: uid('mine'), checked: f.mine, onchange: (e) => { f.mine = e.target.checked; loadInbox(); } });
  const channel = h('select', { id: uid('channel'), value: f.channel, onchange: (e) => { f.channel = e.target.value; loadInbox(); } },
    CHANNELS.map((c) => h('option', { value: c }, c ? t(`channel.${c}`) : t('inbox.any_channel'))));
  const tag = h('input', { type: 'text', id: uid('tag'), value: f.tag, placeholder: t('inbox.tag_placeholder'),
    onchange: (e) => { f.tag = e.target.value.trim(); loadInbox(); } });
  const searching = f.text
    ? h('p', { class: 'searching' }, t('inbox.results', { text: f.text }), ' ',
      h('button', { type: 'button', class: 'link', onclick: () => { f.text = ''; changed('search'); loadInbox(); } }, t('inbox.clear_search')))
    : null;
  const nav = h('nav', { class: 'inbox', 'aria-label': t('inbox.title') },
    h('h2', { class: 'visually-hidden' }, t('inbox.title')),
    tabsEl,
    h('div', { class: 'filters' },
      h('label', { class: 'check', for: mine.id }, mine, t('inbox.mine')),
      h('label', { class: 'visually-hidden', for: channel.id }, t('inbox.channel')), channel,
      h('label', { class: 'visually-hidden', for: tag.id }, t('inbox.tag')), tag),
    searching,
    listEl, moreEl);
  renderTabs();
  renderList();
  return nav;
}

// A search counts each mode up to this many and then stops (`counts_capped` in the
// answer): a count at the cap means that many or more, so it reads "1000+".
const COUNT_CAP = 1000;

/** A tab's count as text: "1000+" for a count the server stopped at. */
function countLabel(n, capped) {
  return capped && n >= COUNT_CAP ? `${n}+` : String(n);
}

function renderTabs() {
  if (!tabsEl) return;
  const total = Object.values(state.counts).reduce((a, b) => a + b, 0);
  const capped = state.countsCapped;
  replace(tabsEl, MODES.map((m) => h('button', {
    type: 'button',
    class: 'mode-tab',
    'aria-pressed': String(state.filters.mode === m),
    'data-mode': m || 'all',
    onclick: () => { state.filters.mode = m; loadInbox(); },
  }, m ? t(`mode.${m}`) : t('inbox.all'), ' ', h('span', { class: 'count' }, m ? countLabel(state.counts[m] || 0, capped) : (capped ? `${total}+` : String(total))))));
}

function renderList() {
  if (!listEl) return;
  const items = state.order.map((id) => state.conversations.get(id)).filter(Boolean);
  if (!items.length) {
    replace(listEl, h('li', { class: 'empty' }, t('inbox.empty')));
  } else {
    replace(listEl, items.map(item));
  }
  moreEl.hidden = !state.nextCursor;
}

function item(c) {
  const unread = c.unread_for_agent || 0;
  const last = c.last_message;
  return h('li', { 'data-id': c.id, 'data-mode': c.mode },
    h('a', { href: `#/c/${c.id}`, class: 'conv', 'aria-current': state.current === c.id ? 'true' : null },
      h('span', { class: 'who' }, contactName(c.contact_id, t('contact.visitor'))),
      h('span', { class: `badge mode-${c.mode}` }, t(`mode.${c.mode}`)),
      c.priority === 'high' || c.priority === 'urgent' ? h('span', { class: `badge prio-${c.priority}` }, t(`priority.${c.priority}`)) : null,
      h('time', { datetime: c.last_message_at || c.created_at }, when(c.last_message_at || c.created_at, lang())),
      snippet(c, last),
      unread ? h('span', { class: 'unread', 'aria-label': t('inbox.unread', { n: unread }) }, String(unread)) : null));
}

// Search snippets come with the answer: each result carries `hits` (its newest matching
// messages, each with a plain-text snippet and the matched words as [start, end) offsets
// in Unicode scalar values), so the list shows the line that matched without reading any
// history. A result found by its title or contact alone has no hits: it shows its last
// message as usual. Kept beside the conversations: a live update of one replaces the
// conversation, not what the search found in it.
const hits = new Map();

function keepHits(items) {
  for (const c of items) if (c.hits?.length) hits.set(c.id, c.hits);
}

function snippet(c, last) {
  const hit = state.filters.text && hits.get(c.id)?.[0];
  // A desk notice's preview carries the notice's metadata: written in the reader's
  // language like the notice in the conversation, not as the stored English.
  if (!hit) return h('span', { class: 'snippet', dir: 'auto' }, last ? noticeText(last) : t('inbox.no_messages'));
  // Offsets count scalar values, JavaScript strings count UTF-16 units: index by code point.
  const chars = Array.from(hit.snippet.text);
  const parts = [];
  let at = 0;
  for (const [start, end] of hit.snippet.highlights || []) {
    if (start < at || end <= start || end > chars.length) continue;
    parts.push(chars.slice(at, start).join(''), h('mark', {}, chars.slice(start, end).join('')));
    at = end;
  }
  parts.push(chars.slice(at).join(''));
  return h('span', { class: 'snippet', dir: 'auto' },
    hit.kind === 'note' ? h('strong', { class: 'note-label' }, t('conv.note_label'), ' ') : null, ...parts);
}

function params(cursor) {
  const f = state.filters;
  return query({ mode: f.mode, assigned: f.mine ? 'me' : '', tag: f.tag, channel: f.channel, text: f.text, limit: 50, cursor });
}

/** Reloads the list and counts for the current filters. */
export async function loadInbox() {
  clearTimeout(reloadTimer);
  const page = await api('GET', `/v1/conversations${params()}`);
  hits.clear();
  keepHits(page.items);
  state.order = page.items.map((c) => upsertConversation(c).id);
  state.counts = page.counts || {};
  state.countsCapped = Boolean(page.counts_capped);
  state.nextCursor = page.next_cursor;
  renderTabs();
  renderList();
  changed('inbox');
  loadContacts(page.items);
}

async function loadMore() {
  const page = await api('GET', `/v1/conversations${params(state.nextCursor)}`);
  keepHits(page.items);
  state.order.push(...page.items.map((c) => upsertConversation(c).id));
  state.nextCursor = page.next_cursor;
  renderList();
  loadContacts(page.items);
}

/** Names for the list: each unknown contact once, a few at a time, after the first paint. */
export async function loadContacts(conversations) {
  const missing = [...new Set(conversations.map((c) => c.contact_id))].filter((id) => id && !state.contacts.has(id));
  for (let i = 0; i < missing.length; i += 8) {
    await Promise.all(missing.slice(i, i + 8).map(async (id) => {
      try { state.contacts.set(id, await api('GET', `/v1/contacts/${id}`)); } catch { /* gone: keep the placeholder */ }
    }));
    renderList();
  }
}

function matches(c) {
  const f = state.filters;
  if (f.mode && c.mode !== f.mode) return false;
  if (f.mine && c.assigned_agent_id !== state.me.id) return false;
  if (f.tag && !(c.tags || []).includes(f.tag)) return false;
  if (f.channel && c.channel !== f.channel) return false;
  return true;
}

/** A live conversation event: show it now, then let the server confirm counts and order. */
export function conversationEvent(c) {
  upsertConversation(c);
  const at = state.order.indexOf(c.id);
  if (matches(c)) {
    if (at > 0) state.order.splice(at, 1);
    if (at !== 0) state.order.unshift(c.id);
  } else if (at >= 0) {
    state.order.splice(at, 1);
  }
  renderList();
  loadContacts([c]);
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => loadInbox().catch(() => {}), 400);
}

/** The id `step` places away from the open one in the list (j/k). */
export function neighbour(step) {
  const i = state.order.indexOf(state.current);
  const next = i < 0 ? (step > 0 ? 0 : state.order.length - 1) : i + step;
  return state.order[Math.max(0, Math.min(state.order.length - 1, next))];
}

on('current', () => {
  if (!listEl) return;
  for (const a of listEl.querySelectorAll('a.conv')) {
    if (a.getAttribute('href') === `#/c/${state.current}`) a.setAttribute('aria-current', 'true');
    else a.removeAttribute('aria-current');
  }
});

/** A new message: its conversation's preview, unread count and place in the list. */
export function messageEvent(m) {
  const c = state.conversations.get(m.conversation_id);
  if (!c || m.kind === 'note' || (c.last_seq || 0) >= m.seq) return;
  c.last_seq = m.seq;
  const notice = Object.fromEntries(Object.entries(m.metadata || {}).filter(([k]) => k === 'notice' || k.startsWith('notice.')));
  c.last_message = { sender: m.sender, body: m.body, at: m.created_at, metadata: m.sender.type === 'system' ? notice : {} };
  c.last_message_at = m.created_at;
  if (m.sender.type === 'customer' && state.current !== c.id) c.unread_for_agent = (c.unread_for_agent || 0) + 1;
  const at = state.order.indexOf(c.id);
  if (at > 0) { state.order.splice(at, 1); state.order.unshift(c.id); }
  renderList();
}
