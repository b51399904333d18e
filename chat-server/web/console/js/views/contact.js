// The contact panel: who the customer is, the attributes the desk keeps on them, and
// their earlier conversations (the ones this agent may read).
import { api } from '../api.js';
import { h, replace, when } from '../dom.js';
import { t, lang } from '../i18n.js';
import { state } from '../state.js';

export async function renderContact(aside, conv) {
  replace(aside, h('h2', {}, t('contact.title')), h('p', { class: 'muted' }, t('common.loading')));
  const [contact, history] = await Promise.all([
    api('GET', `/v1/contacts/${conv.contact_id}`),
    api('GET', `/v1/contacts/${conv.contact_id}/conversations`).catch(() => ({ items: [] })),
  ]);
  state.contacts.set(contact.id, contact);
  const row = (label, value) => value ? [h('dt', {}, label), h('dd', {}, value)] : null;
  const attributes = Object.entries(contact.metadata || {});
  const earlier = history.items.filter((c) => c.id !== conv.id);
  replace(aside,
    h('h2', {}, t('contact.title')),
    h('dl', { class: 'facts' },
      row(t('contact.name'), contact.name || t('contact.visitor')),
      row(t('contact.email'), contact.email && (contact.email_verified ? contact.email : `${contact.email} (${t('contact.unverified')})`)),
      row(t('contact.phone'), contact.phone),
      row(t('contact.address'), contact.address),
      row(t('contact.since'), when(contact.created_at, lang()))),
    h('h3', {}, t('contact.attributes')),
    attributes.length
      ? h('dl', { class: 'facts' }, attributes.map(([k, v]) => row(k, typeof v === 'string' ? v : JSON.stringify(v))))
      : h('p', { class: 'muted' }, t('contact.no_attributes')),
    h('h3', {}, t('contact.earlier')),
    earlier.length
      ? h('ul', { class: 'earlier' }, earlier.map((c) => h('li', {},
        h('a', { href: `#/c/${c.id}` }, when(c.created_at, lang()), ' · ', t(`mode.${c.mode}`), ' · ', c.last_message?.body || t('inbox.no_messages')))))
      : h('p', { class: 'muted' }, t('contact.no_earlier')));
}
