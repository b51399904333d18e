// The console's entry point: the shell (header, inbox, main pane, contact panel), the
// hash routes (#/c/<id>, #/reports, #/admin/<section>), the socket's events dispatched to the
// views, and the keyboard shortcuts.
import { api, session, whenUnauthorized } from './api.js';
import { Socket } from './socket.js';
import { h, replace, toast } from './dom.js';
import { t, applyLanguage } from './i18n.js';
import { state, changed, isAdmin } from './state.js';
import * as notify from './notify.js';
import { renderLogin } from './views/login.js';
import { renderInbox, loadInbox, conversationEvent as inboxEvent, messageEvent as inboxMessage, neighbour } from './views/inbox.js';
import * as conversation from './views/conversation.js';
import { renderAdmin } from './views/admin.js';
import { renderReports } from './views/reports.js';
import { installShortcuts, showHelp, languageSwitch, whenLanguageChanges } from './views/shortcuts.js';

const root = document.getElementById('app');
let socket = null;
let main, aside, statusEl, availabilityEl, searchEl;
let connection = 'connecting'; // the socket's last status, kept across re-renders of the shell
// Mentions: "@handle" in a colleague's note. The header counts the unread ones; the list
// opens in a dialog and reading it clears the count.
const mentions = { unread: 0, button: null };

applyLanguage();
notify.updateTitle();
whenUnauthorized(() => signOut(t('login.expired')));
whenLanguageChanges(() => {
  notify.updateTitle();
  if (state.me) { shell(); route(); } else renderLogin(root, start);
});

const saved = session.get();
if (saved) start(saved.agent);
else renderLogin(root, start);

async function start(agent) {
  state.me = agent;
  shell();
  socket = new Socket(session.get().token, {
    event: onEvent,
    typing: conversation.typingEvent,
    botDelta: conversation.botDeltaEvent,
    presence: (f) => {
      const a = state.agents.get(f.agent_id);
      if (a) a.availability = f.availability;
      if (f.agent_id === state.me.id) {
        state.me = { ...state.me, availability: f.availability };
        if (availabilityEl) availabilityEl.value = f.availability;
      }
    },
    resync: () => { loadInbox().catch(() => {}); route(); },
    revoked: () => signOut(t('login.revoked')),
    status: (s) => { connection = s; showStatus(); },
  });
  conversation.useSocket(socket);
  try {
    const [, agents, mentioned] = await Promise.all([loadInbox(), api('GET', '/v1/agents'), api('GET', '/v1/mentions?limit=1')]);
    for (const a of agents.items) state.agents.set(a.id, a);
    mentions.unread = mentioned.unread;
    showMentions();
    performance.mark('inbox-rendered');
    await route();
    // Signed in just now: the form that had the focus is gone; give it to the inbox.
    if (document.activeElement === document.body) (document.querySelector('.conversations a') || main).focus();
  } catch (err) {
    if (err.status !== 401) toast(err.message, 'error');
  }
}

function signOut(message) {
  socket?.close();
  connection = 'connecting';
  socket = null;
  session.clear();
  state.me = null;
  // Nothing of this session stays for the next one in the tab.
  state.conversations.clear();
  state.contacts.clear();
  state.agents.clear();
  state.order = [];
  state.current = null;
  state.unseenAssigned = 0;
  notify.updateTitle();
  renderLogin(root, start);
  if (message) toast(message, 'error');
}

function shell() {
  searchEl = h('input', { type: 'search', id: 'search', value: state.filters.text, placeholder: t('search.placeholder'), autocomplete: 'off' });
  statusEl = h('span', { class: 'conn', role: 'status' });
  showStatus();
  availabilityEl = h('select', { id: 'availability', value: state.me.availability, onchange: async (e) => {
    try {
      const a = await api('PUT', `/v1/agents/${state.me.id}/availability`, { availability: e.target.value });
      state.me = a;
    } catch (err) { toast(err.message, 'error'); e.target.value = state.me.availability; }
  } }, ['online', 'away', 'offline'].map((v) => h('option', { value: v }, t(`availability.${v}`))));
  main = h('main', { id: 'main', class: 'main', tabindex: '-1' });
  aside = h('aside', { id: 'contact', class: 'contact', 'aria-label': t('contact.title') });
  replace(root,
    h('a', { href: '#main', class: 'skip' }, t('common.skip')),
    h('header', { class: 'top' },
      h('h1', { class: 'brand' }, h('a', { href: '#/' }, t('app.title'))),
      h('form', { role: 'search', class: 'search', onsubmit: (e) => {
        e.preventDefault();
        state.filters.text = searchEl.value.trim();
        shellInbox();
        loadInbox().catch((err) => toast(err.message, 'error'));
      } }, h('label', { for: 'search', class: 'visually-hidden' }, t('search.label')), searchEl,
      h('button', { type: 'submit' }, t('search.submit'))),
      statusEl,
      h('label', { for: 'availability' }, t('availability.label')), availabilityEl,
      languageSwitch(),
      h('a', { href: '#/reports', class: 'button' }, t('reports.link')),
      isAdmin() ? h('a', { href: '#/admin/staff', class: 'button' }, t('admin.title')) : null,
      mentionsButton(),
      h('button', { type: 'button', 'aria-label': t('shortcut.title'), onclick: showHelp }, '?'),
      h('span', { class: 'me' }, state.me.name),
      h('button', { type: 'button', onclick: () => signOut() }, t('login.logout'))),
    h('div', { class: 'layout' }, h('div', { id: 'inbox-slot', class: 'inbox-slot' }, renderInbox()), main, aside));
}


function mentionsButton() {
  mentions.button = h('button', { type: 'button', class: 'mentions', onclick: openMentions });
  showMentions();
  return mentions.button;
}

function showMentions() {
  if (!mentions.button) return;
  replace(mentions.button, '@ ', h('span', { class: 'count' }, String(mentions.unread)));
  mentions.button.setAttribute('aria-label', t('mentions.label', { n: mentions.unread }));
  mentions.button.classList.toggle('unread', mentions.unread > 0);
}

async function openMentions() {
  try {
    const list = await api('GET', '/v1/mentions?limit=50');
    const d = h('dialog', { class: 'dialog', 'aria-labelledby': 'mentions-title' },
      h('h2', { id: 'mentions-title' }, t('mentions.title')),
      list.items.length
        ? h('ul', { class: 'mention-list' }, list.items.map((m) => h('li', { class: m.read_at ? '' : 'unread' },
          h('a', { href: `#/c/${m.conversation_id}`, onclick: () => d.close() },
            t('mentions.item', { name: state.agents.get(m.by)?.name || t('sender.agent') }), ' · ', new Date(m.at).toLocaleString()))))
        : h('p', {}, t('mentions.none')),
      h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'primary', onclick: () => d.close() }, t('common.close'))));
    const back = document.activeElement;
    d.addEventListener('close', () => { d.remove(); if (!location.hash.startsWith('#/c/')) back?.focus?.(); });
    document.body.append(d);
    d.showModal();
    if (list.unread) {
      await api('POST', '/v1/mentions/read');
      mentions.unread = 0;
      showMentions();
    }
  } catch (err) { toast(err.message, 'error'); }
}

function showStatus() {
  statusEl.textContent = t(connection === 'online' ? 'status.live' : 'status.connecting');
  statusEl.dataset.state = connection;
}

function shellInbox() {
  replace(document.getElementById('inbox-slot'), renderInbox());
}

window.addEventListener('hashchange', route);
window.addEventListener('focus', () => notify.seen());

async function route() {
  if (!state.me) return;
  const hash = location.hash;
  const conv = /^#\/c\/([0-9a-f-]{36})$/.exec(hash);
  const admin = /^#\/admin\/?(\w*)$/.exec(hash);
  aside.hidden = !conv;
  state.current = conv ? conv[1] : null;
  changed('current');
  try {
    if (conv) {
      await conversation.openConversation(conv[1], main, aside);
    } else if (hash === '#/reports') {
      await renderReports(main);
    } else if (admin && isAdmin()) {
      await renderAdmin(main, admin[1]);
    } else {
      conversation.renderNothingOpen(main);
    }
  } catch (err) {
    if (err.status !== 401) toast(err.message, 'error');
  }
}

function onEvent(f) {
  const d = f.data;
  switch (d.type) {
    case 'conversation_created':
    case 'conversation_updated': {
      const c = d.conversation;
      inboxEvent(c);
      conversation.conversationEvent(c);
      const change = d.change || {};
      if ((change.change === 'assigned' || change.change === 'transferred') && c.assigned_agent_id === state.me.id
          && change.to === state.me.id && !state.claiming.delete(c.id)) {
        notify.assigned();
        toast(t('notify.assigned'));
      }
      break;
    }
    case 'conversation_deleted':
      state.order = state.order.filter((id) => id !== f.conversation_id);
      loadInbox().catch(() => {});
      break;
    case 'message_created':
    case 'message_updated':
      conversation.messageEvent(d.message);
      if (d.type === 'message_created') inboxMessage(d.message);
      break;
    case 'read_updated':
      conversation.readEvent(d.cursor);
      break;
    case 'agent_updated':
      state.agents.set(d.agent.id, d.agent);
      if (d.agent.id === state.me.id) {
        state.me = { ...state.me, ...d.agent };
        if (availabilityEl) availabilityEl.value = d.agent.availability;
      }
      break;
    case 'mentioned':
      mentions.unread += 1;
      showMentions();
      notify.beep();
      toast(t('notify.mentioned'));
      break;
    default:
      break;
  }
}

installShortcuts({
  j: () => go(neighbour(1)),
  k: () => go(neighbour(-1)),
  r: () => conversation.focusComposer('reply'),
  n: () => conversation.focusComposer('note'),
  e: () => conversation.closeOpen(),
  c: () => document.querySelector('[data-action="claim"]')?.click(),
  '/': () => searchEl?.focus(),
  '?': showHelp,
  'g i': () => { location.hash = '#/'; },
});

function go(id) {
  if (id) location.hash = `#/c/${id}`;
}
