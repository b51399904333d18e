// The admin area's webhooks section: register an endpoint (its signing secret is shown
// once, at registration), change its URL and events, pause or resume it, delete it, and
// read its delivery log (state, attempts, last status or error) with manual redelivery.
import { api, query } from '../api.js';
import { h, replace, toast, uid } from '../dom.js';
import { t, lang } from '../i18n.js';

// Mirrors chat-core's WEBHOOK_EVENT_KINDS; the server refuses any other kind.
const KINDS = ['conversation_created', 'conversation_updated', 'conversation_deleted', 'message_created', 'message_updated',
  'read_updated', 'agent_updated', 'contact_merged', 'settings_updated', 'webhook_paused'];

const stamp = (iso) => (iso ? new Date(iso).toLocaleString(lang(), { dateStyle: 'short', timeStyle: 'medium' }) : '—');

function fail(err) {
  toast(err.field ? `${err.field}: ${err.message}` : err.message, 'error');
}

/** Checkboxes for the event kinds; none ticked means every kind. */
function kindPicker(selected, legendText) {
  const boxes = KINDS.map((k) => {
    const id = uid('kind');
    return [k, h('input', { type: 'checkbox', id, name: 'events', value: k, checked: selected.includes(k) }), id];
  });
  const el = h('fieldset', { class: 'kinds' }, h('legend', {}, legendText),
    boxes.map(([k, box, id]) => h('span', { class: 'field check' }, box, h('label', { for: id }, h('code', {}, k)))));
  return { el, value: () => boxes.filter(([, box]) => box.checked).map(([k]) => k) };
}

export async function webhooks(body, { issued, open } = {}) {
  const list = (await api('GET', '/v1/webhooks')).items;
  const url = h('input', { type: 'url', name: 'url', required: true, autocomplete: 'off', placeholder: 'https://example.com/hooks/chat' });
  const kinds = kindPicker([], t('webhooks.events_hint'));
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'new-webhook', async onsubmit(e) {
    e.preventDefault();
    try {
      const created = await api('POST', '/v1/webhooks', { url: url.value.trim(), events: kinds.value() });
      await webhooks(body, { issued: created, open: created.id });
    } catch (err) { fail(err); }
  } },
  h('h3', { id: 'new-webhook' }, t('webhooks.new')),
  h('div', { class: 'field' }, h('label', { for: (url.id = uid('url')) }, t('webhooks.url')), url),
  kinds.el,
  h('button', { type: 'submit', class: 'primary' }, t('webhooks.register')));
  const log = h('div', { class: 'deliveries' });
  const reload = (opts) => webhooks(body, opts).catch(fail);
  const rows = list.map((w) => h('tr', { 'data-webhook': w.id, 'data-url': w.url },
    h('td', { class: 'token' }, w.url),
    h('td', {}, w.events.length ? w.events.map((k) => h('code', { class: 'kind' }, k)) : t('webhooks.all_events')),
    h('td', {}, h('span', { class: `state-${w.state}` }, t(`webhooks.state_${w.state}`)),
      w.failing_since ? h('span', { class: 'muted' }, ' ', t('webhooks.failing_since', { when: stamp(w.failing_since) })) : null),
    h('td', { class: 'actions' },
      h('button', { type: 'button', 'aria-label': t('webhooks.log_of', { url: w.url }), onclick: () => showLog(log, w) }, t('webhooks.log')),
      h('button', { type: 'button', 'aria-label': t('webhooks.edit_of', { url: w.url }), onclick: () => edit(w, reload) }, t('webhooks.edit')),
      h('button', { type: 'button', 'aria-label': t(w.state === 'active' ? 'webhooks.pause_of' : 'webhooks.resume_of', { url: w.url }), onclick: async () => {
        try { await api('PATCH', `/v1/webhooks/${w.id}`, { state: w.state === 'active' ? 'paused' : 'active' }); toast(t('admin.saved')); reload({ open: w.id }); } catch (err) { fail(err); }
      } }, t(w.state === 'active' ? 'webhooks.pause' : 'webhooks.resume')),
      h('button', { type: 'button', 'aria-label': t('webhooks.delete_of', { url: w.url }), onclick: async () => {
        if (!window.confirm(t('webhooks.confirm_delete', { url: w.url }))) return;
        try { await api('DELETE', `/v1/webhooks/${w.id}`); toast(t('webhooks.deleted')); reload(); } catch (err) { fail(err); }
      } }, t('common.delete')))));
  replace(body,
    h('h3', {}, t('admin.webhooks')),
    issued ? h('div', { class: 'issued', role: 'status' },
      h('p', {}, t('webhooks.secret_once', { url: issued.url })), h('code', { class: 'token secret' }, issued.secret),
      h('p', { class: 'muted' }, t('webhooks.signature_hint'))) : null,
    list.length ? h('table', { class: 'grid webhooks' },
      h('thead', {}, h('tr', {}, ['webhooks.url', 'webhooks.events', 'admin.status', 'admin.change'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, rows))
      : h('p', { class: 'muted' }, t('webhooks.none')),
    log, form);
  const shown = list.find((w) => w.id === open);
  if (shown) await showLog(log, shown);
}

function edit(w, reload) {
  const url = h('input', { type: 'url', id: uid('url'), required: true, value: w.url });
  const kinds = kindPicker(w.events, t('webhooks.events_hint'));
  const d = h('dialog', { class: 'dialog', 'aria-labelledby': 'edit-webhook' },
    h('form', { class: 'form-grid', method: 'dialog', async onsubmit(e) {
      e.preventDefault();
      try {
        await api('PATCH', `/v1/webhooks/${w.id}`, { url: url.value.trim(), events: kinds.value() });
        d.close();
        toast(t('admin.saved'));
        reload({ open: w.id });
      } catch (err) { fail(err); }
    } },
    h('h2', { id: 'edit-webhook' }, t('webhooks.edit_title')),
    h('div', { class: 'field' }, h('label', { for: url.id }, t('webhooks.url')), url),
    kinds.el,
    h('div', { class: 'dialog-buttons' },
      h('button', { type: 'button', onclick: () => d.close() }, t('common.cancel')),
      h('button', { type: 'submit', class: 'primary' }, t('admin.save')))));
  const back = document.activeElement;
  d.addEventListener('close', () => { d.remove(); back?.focus?.(); });
  document.body.append(d);
  d.showModal();
}

async function showLog(box, w, before, older = []) {
  try {
    const page = (await api('GET', `/v1/webhooks/${w.id}/deliveries${query({ before, limit: 50 })}`)).items;
    const items = [...older, ...page];
    const titleId = uid('log');
    replace(box, h('section', { class: 'delivery-log', 'aria-labelledby': titleId, 'data-webhook': w.id },
      h('h3', { id: titleId }, t('webhooks.log_title', { url: w.url })),
      h('button', { type: 'button', onclick: () => showLog(box, w) }, t('webhooks.refresh')),
      items.length ? h('table', { class: 'grid' },
        h('thead', {}, h('tr', {}, ['webhooks.event', 'webhooks.delivery_state', 'webhooks.attempts', 'webhooks.last', 'webhooks.created', 'admin.change']
          .map((k) => h('th', { scope: 'col' }, t(k))))),
        h('tbody', {}, items.map((d) => h('tr', { 'data-seq': d.seq, 'data-state': d.state },
          h('td', {}, h('code', {}, d.type), h('br'), h('span', { class: 'muted' }, d.event_id)),
          h('td', {}, h('span', { class: `state-${d.state}` }, t(`webhooks.delivery_${d.state}`)),
            d.state === 'pending' && d.next_attempt_at ? h('span', { class: 'muted' }, h('br'), t('webhooks.next', { when: stamp(d.next_attempt_at) })) : null,
            d.delivered_at ? h('span', { class: 'muted' }, h('br'), stamp(d.delivered_at)) : null),
          h('td', { class: 'attempts' }, String(d.attempts)),
          h('td', { class: 'last' }, d.last_status != null ? `HTTP ${d.last_status}` : '', d.last_error && d.last_error !== `HTTP ${d.last_status}` ? h('span', { class: 'error-text' }, ' ', d.last_error) : '',
            d.response_ms != null ? h('span', { class: 'muted' }, ` (${d.response_ms} ms)`) : ''),
          h('td', {}, stamp(d.created_at)),
          h('td', {}, h('button', { type: 'button', 'aria-label': t('webhooks.redeliver_of', { seq: d.seq }), onclick: async () => {
            try { await api('POST', `/v1/webhooks/${w.id}/deliveries/${d.seq}/redeliver`); toast(t('webhooks.redelivering')); showLog(box, w); } catch (err) { fail(err); }
          } }, t('webhooks.redeliver')))))))
        : h('p', { class: 'muted' }, t('webhooks.no_deliveries')),
      page.length === 50 ? h('button', { type: 'button', onclick: () => showLog(box, w, page.at(-1).seq, items) }, t('webhooks.older')) : null));
  } catch (err) { fail(err); }
}
