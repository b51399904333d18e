// The admin area (admins only; the server refuses everyone else anyway): staff,
// settings, business hours, canned responses, bot tokens and webhooks (webhooks.js).
// Reports have a page of their own (reports.js), open to every agent.
import { api } from '../api.js';
import { h, replace, toast, uid, when } from '../dom.js';
import { t, lang } from '../i18n.js';
import { state } from '../state.js';
import { webhooks } from './webhooks.js';

export const SECTIONS = ['staff', 'settings', 'hours', 'canned', 'bots', 'webhooks'];
const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

export async function renderAdmin(main, section) {
  if (!SECTIONS.includes(section)) section = 'staff';
  const body = h('div', { class: 'admin-body' }, h('p', { class: 'muted' }, t('common.loading')));
  replace(main, h('section', { class: 'admin', 'aria-labelledby': 'admin-title' },
    h('h2', { id: 'admin-title' }, t('admin.title')),
    h('nav', { class: 'admin-tabs', 'aria-label': t('admin.sections') },
      h('ul', {}, SECTIONS.map((s) => h('li', {}, h('a', { href: `#/admin/${s}`, 'aria-current': s === section ? 'page' : null }, t(`admin.${s}`)))))),
    body));
  try {
    await ({ staff, settings, hours, canned, bots, webhooks })[section](body);
  } catch (err) {
    replace(body, h('p', { class: 'error', role: 'alert' }, err.message));
  }
}

/** A labelled field: [label, input]. */
function field(label, input) {
  input.id = input.id || uid('f');
  return h('div', { class: 'field' }, h('label', { for: input.id }, label), input);
}

function check(label, input) {
  input.id = input.id || uid('f');
  return h('div', { class: 'field check' }, input, h('label', { for: input.id }, label));
}

function fail(err) {
  toast(err.field ? `${err.field}: ${err.message}` : err.message, 'error');
}

// ---- staff ---------------------------------------------------------------------------

async function staff(body) {
  const list = (await api('GET', '/v1/agents')).items;
  for (const a of list) state.agents.set(a.id, a);
  const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off' });
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const role = h('select', { name: 'role' }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r }, t(`role.${r}`))));
  const password = h('input', { type: 'password', name: 'password', required: true, minlength: 10, autocomplete: 'new-password' });
  const create = h('form', { class: 'form-grid', 'aria-labelledby': 'new-staff', async onsubmit(e) {
    e.preventDefault();
    try {
      await api('POST', '/v1/agents', { name: name.value, email: email.value, role: role.value, password: password.value });
      toast(t('admin.saved'));
      await staff(body);
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'new-staff' }, t('admin.new_staff')),
  field(t('admin.name'), name), field(t('admin.email'), email), field(t('admin.role'), role), field(t('admin.password'), password),
  h('button', { type: 'submit', class: 'primary' }, t('admin.create')));

  const rows = list.map((a) => {
    const roleSel = h('select', { id: uid('role'), value: a.role, disabled: a.id === state.me.id, onchange: async (e) => {
      try { await api('PATCH', `/v1/agents/${a.id}`, { role: e.target.value }); toast(t('admin.saved')); } catch (err) { fail(err); e.target.value = a.role; }
    } }, ['agent', 'supervisor', 'admin'].map((r) => h('option', { value: r }, t(`role.${r}`))));
    const toggle = h('button', { type: 'button', disabled: a.id === state.me.id, onclick: async () => {
      try { await api('PATCH', `/v1/agents/${a.id}`, { active: !a.active }); await staff(body); } catch (err) { fail(err); }
    } }, a.active ? t('admin.deactivate') : t('admin.activate'));
    return h('tr', { 'data-email': a.email },
      h('td', {}, a.name), h('td', {}, a.email),
      h('td', {}, h('label', { class: 'visually-hidden', for: roleSel.id }, t('admin.role_of', { name: a.name })), roleSel),
      h('td', {}, t(`availability.${a.availability}`)),
      h('td', {}, a.active ? t('admin.active') : t('admin.inactive')),
      h('td', {}, toggle));
  });
  replace(body,
    h('h3', {}, t('admin.staff')),
    h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['admin.name', 'admin.email', 'admin.role', 'admin.availability', 'admin.status', 'admin.change'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, rows)),
    create);
}

// ---- settings ------------------------------------------------------------------------

const NUMBERS = ['default_capacity', 'edit_window_secs', 'requeue_after_secs', 'close_inactive_after_secs', 'average_handle_secs', 'upload_max_bytes', 'upload_max_files'];
const FLAGS = ['bot_enabled', 'allow_reopen', 'auto_assign'];

async function settings(body) {
  const s = await api('GET', '/v1/settings');
  const welcome = h('textarea', { name: 'welcome_message', rows: 2 }, s.welcome_message || '');
  const flags = FLAGS.map((k) => [k, h('input', { type: 'checkbox', name: k, checked: s[k] })]);
  const numbers = NUMBERS.map((k) => [k, h('input', { type: 'number', name: k, min: 0, value: s[k] ?? '' })]);
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'settings-title', async onsubmit(e) {
    e.preventDefault();
    const patch = {};
    const w = welcome.value.trim() || null;
    if (w !== (s.welcome_message || null)) patch.welcome_message = w;
    for (const [k, input] of flags) if (input.checked !== s[k]) patch[k] = input.checked;
    for (const [k, input] of numbers) {
      const v = input.value === '' ? null : Number(input.value);
      if (v !== (s[k] ?? null)) patch[k] = v;
    }
    try {
      await api('PATCH', '/v1/settings', patch);
      toast(t('admin.saved'));
      await settings(body);
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'settings-title' }, t('admin.settings')),
  field(t('setting.welcome_message'), welcome),
  flags.map(([k, input]) => check(t(`setting.${k}`), input)),
  numbers.map(([k, input]) => field(t(`setting.${k}`), input)),
  h('button', { type: 'submit', class: 'primary' }, t('admin.save')));
  replace(body, form);
}

// ---- business hours ------------------------------------------------------------------

function rangesText(ranges) {
  return (ranges || []).map((r) => `${r.from}-${r.to}`).join(', ');
}

function parseRanges(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const [from, to] = s.split('-').map((x) => x.trim());
    return { from, to };
  });
}

async function hours(body) {
  const s = await api('GET', '/v1/settings');
  const bh = s.business_hours;
  const enabled = h('input', { type: 'checkbox', name: 'enabled', checked: Boolean(bh) });
  const zone = h('input', { type: 'text', name: 'time_zone', value: bh?.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' });
  const days = DAYS.map((d) => [d, h('input', { type: 'text', name: d, value: rangesText(bh?.weekly?.[d]), placeholder: '09:00-17:00', 'aria-describedby': 'ranges-hint' })]);
  const holidays = h('input', { type: 'text', name: 'holidays', value: (bh?.holidays || []).join(', '), placeholder: '2026-12-25' });
  const offline = h('textarea', { name: 'offline_message', rows: 2 }, bh?.offline_message || '');
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'hours-title', async onsubmit(e) {
    e.preventDefault();
    let value = null;
    if (enabled.checked) {
      value = { time_zone: zone.value.trim(), weekly: {}, holidays: holidays.value.split(',').map((x) => x.trim()).filter(Boolean), offline_message: offline.value.trim() || null };
      for (const [d, input] of days) value.weekly[d] = parseRanges(input.value);
    }
    try {
      await api('PATCH', '/v1/settings', { business_hours: value });
      toast(t('admin.saved'));
      await hours(body);
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'hours-title' }, t('admin.hours')),
  check(t('hours.enabled'), enabled),
  field(t('hours.zone'), zone),
  h('p', { id: 'ranges-hint', class: 'muted' }, t('hours.hint')),
  days.map(([d, input]) => field(t(`day.${d}`), input)),
  field(t('hours.holidays'), holidays),
  field(t('hours.offline_message'), offline),
  h('button', { type: 'submit', class: 'primary' }, t('admin.save')));
  replace(body, form);
}

// ---- canned responses ----------------------------------------------------------------

async function canned(body) {
  const list = (await api('GET', '/v1/canned-responses?limit=200')).items;
  const shortcut = h('input', { type: 'text', name: 'shortcut', required: true, autocomplete: 'off' });
  const title = h('input', { type: 'text', name: 'title', required: true, autocomplete: 'off' });
  const text = h('textarea', { name: 'body', rows: 3, required: true, 'aria-describedby': 'placeholders-hint' });
  const shared = h('input', { type: 'checkbox', name: 'shared', checked: true });
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'new-canned', async onsubmit(e) {
    e.preventDefault();
    try {
      await api('POST', '/v1/canned-responses', { shortcut: shortcut.value, title: title.value, body: text.value, shared: shared.checked });
      toast(t('admin.saved'));
      await canned(body);
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'new-canned' }, t('canned.new')),
  field(t('canned.shortcut'), shortcut), field(t('canned.title'), title), field(t('canned.body'), text),
  h('p', { id: 'placeholders-hint', class: 'muted' }, t('canned.hint')),
  check(t('canned.shared'), shared),
  h('button', { type: 'submit', class: 'primary' }, t('admin.create')));
  replace(body,
    h('h3', {}, t('admin.canned')),
    list.length ? h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['canned.shortcut', 'canned.title', 'canned.body', 'canned.owner', 'admin.change'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, list.map((c) => h('tr', { 'data-shortcut': c.shortcut },
        h('td', {}, h('code', {}, `/${c.shortcut}`)), h('td', {}, c.title), h('td', { class: 'pre' }, c.body),
        h('td', {}, c.owner_id ? t('canned.personal') : t('canned.shared_label')),
        h('td', {}, h('button', { type: 'button', 'aria-label': t('canned.delete', { shortcut: c.shortcut }), onclick: async () => {
          try { await api('DELETE', `/v1/canned-responses/${c.id}`); await canned(body); } catch (err) { fail(err); }
        } }, t('common.delete')))))))
      : h('p', { class: 'muted' }, t('canned.none')),
    form);
}

// ---- bot tokens ----------------------------------------------------------------------

async function bots(body, issued) {
  const list = (await api('GET', '/v1/bot-tokens')).items;
  const name = h('input', { type: 'text', name: 'name', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'new-bot', async onsubmit(e) {
    e.preventDefault();
    try {
      const answer = await api('POST', '/v1/bot-tokens', { name: name.value });
      await bots(body, answer);
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'new-bot' }, t('bots.new')), field(t('admin.name'), name),
  h('button', { type: 'submit', class: 'primary' }, t('admin.create')));
  replace(body,
    h('h3', {}, t('admin.bots')),
    issued ? h('div', { class: 'issued', role: 'status' }, h('p', {}, t('bots.shown_once', { name: issued.name })), h('code', { class: 'token' }, issued.token)) : null,
    list.length ? h('table', { class: 'grid' },
      h('thead', {}, h('tr', {}, ['admin.name', 'bots.created', 'bots.last_used', 'admin.change'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, list.map((b) => h('tr', {},
        h('td', {}, b.name), h('td', {}, when(b.created_at, lang())), h('td', {}, b.last_used_at ? when(b.last_used_at, lang()) : t('bots.never')),
        h('td', {}, h('button', { type: 'button', 'aria-label': t('bots.revoke_named', { name: b.name }), onclick: async () => {
          try { await api('DELETE', `/v1/bot-tokens/${b.id}`); await bots(body); } catch (err) { fail(err); }
        } }, t('bots.revoke')))))))
      : h('p', { class: 'muted' }, t('bots.none')),
    form);
}
