// The reports page (#/reports): the desk's figures over a period in a time zone, drawn
// from GET /v1/reports/{overview,series,breakdown,feedback}. Admins and supervisors see
// the whole desk or one agent; an agent sees its own figures (the server decides: an
// agent's report is always its own). Charts are plain SVG built here; colours come from
// classes in console.css, because the page's CSP refuses inline styles.
import { api, query } from '../api.js';
import { h, replace, toast, uid } from '../dom.js';
import { t, lang } from '../i18n.js';
import { state, isLead } from '../state.js';
import { barChart, hbars } from './charts.js';

// The picked period and filters, kept while the console is open.
const picked = { from: '', to: '', tz: '', interval: 'day', by: 'agent', agent: '' };

const SERIES = ['opened', 'closed', 'reopened'];

function isoDay(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function defaults() {
  if (picked.from) return;
  const to = new Date();
  const from = new Date(to);
  from.setDate(from.getDate() - 6);
  picked.from = isoDay(from);
  picked.to = isoDay(to);
  picked.tz = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

function params(extra = {}) {
  return { from: picked.from, to: picked.to, tz: picked.tz, agent_id: isLead() ? picked.agent : '', ...extra };
}

/** A duration in seconds, short and readable ("45 s", "12 min", "3.5 h"). */
export function duration(secs) {
  if (secs == null) return '—';
  const n = (v, d = 0) => v.toLocaleString(lang(), { maximumFractionDigits: d });
  if (secs < 90) return t('unit.secs', { n: n(secs) });
  if (secs < 5400) return t('unit.mins', { n: n(secs / 60) });
  if (secs < 172800) return t('unit.hours', { n: n(secs / 3600, 1) });
  return t('unit.days', { n: n(secs / 86400, 1) });
}

function keyName(by, key) {
  if (key == null) return t(by === 'agent' ? 'reports.no_agent' : 'reports.no_department');
  if (by === 'agent') return state.agents.get(key)?.name || key;
  if (by === 'channel') return t(`channel.${key}`);
  return key;
}

/** Downloads a report as CSV: the API needs the token, so a fetch and an object URL. */
async function download(report, extra, name) {
  try {
    const resp = await api('GET', `/v1/reports/${report}${query(params({ ...extra, format: 'csv' }))}`, undefined, { raw: true });
    const url = URL.createObjectURL(await resp.blob());
    const a = h('a', { href: url, download: `${name}-${picked.from}-${picked.to}.csv`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) { toast(err.message, 'error'); }
}

function csvButton(report, extra, name, label) {
  return h('button', { type: 'button', class: 'csv', 'data-csv': name, onclick: () => download(report, extra, name) }, label);
}

function section(id, title, ...children) {
  return h('section', { class: 'report-part', 'aria-labelledby': id, 'data-part': id }, h('h3', { id }, title), ...children);
}

export async function renderReports(main) {
  defaults();
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  if (!zones.includes('UTC')) zones.unshift('UTC');
  if (!zones.includes(picked.tz)) zones.push(picked.tz);
  const from = h('input', { type: 'date', name: 'from', required: true, value: picked.from });
  const to = h('input', { type: 'date', name: 'to', required: true, value: picked.to });
  const tz = h('select', { name: 'tz', value: picked.tz }, zones.map((z) => h('option', { value: z }, z)));
  const interval = h('select', { name: 'interval', value: picked.interval },
    ['day', 'hour'].map((v) => h('option', { value: v }, t(`reports.interval_${v}`))));
  const agent = isLead()
    ? h('select', { name: 'agent_id', value: picked.agent },
      h('option', { value: '' }, t('reports.whole_desk')),
      [...state.agents.values()].map((a) => h('option', { value: a.id }, a.name)))
    : null;
  const body = h('div', { class: 'report-body', 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'muted' }, t('common.loading')));
  const labelled = (label, input) => { input.id = uid('r'); return h('div', { class: 'field' }, h('label', { for: input.id }, label), input); };
  const form = h('form', { class: 'report-period', 'aria-label': t('reports.period'), onsubmit: (e) => {
    e.preventDefault();
    Object.assign(picked, { from: from.value, to: to.value, tz: tz.value, interval: interval.value, agent: agent ? agent.value : '' });
    draw(body);
  } },
  labelled(t('reports.from'), from), labelled(t('reports.to'), to), labelled(t('reports.tz'), tz),
  labelled(t('reports.interval'), interval), agent ? labelled(t('reports.agent'), agent) : null,
  h('button', { type: 'submit', class: 'primary' }, t('reports.show')));
  replace(main, h('section', { class: 'reports', 'aria-labelledby': 'reports-title' },
    h('h2', { id: 'reports-title' }, isLead() ? t('reports.title') : t('reports.mine')), form, body));
  await draw(body);
}

async function draw(body) {
  body.setAttribute('aria-busy', 'true');
  try {
    const [overview, series, breakdown, feedback] = await Promise.all([
      api('GET', `/v1/reports/overview${query(params())}`),
      api('GET', `/v1/reports/series${query(params({ interval: picked.interval }))}`),
      api('GET', `/v1/reports/breakdown${query(params({ by: picked.by }))}`),
      api('GET', `/v1/reports/feedback${query(params({ limit: 50 }))}`),
    ]);
    replace(body,
      overviewPart(overview.totals),
      seriesPart(series),
      breakdownPart(body, breakdown),
      csatPart(overview.totals.csat, feedback.items));
  } catch (err) {
    replace(body, h('p', { class: 'error', role: 'alert' }, err.field ? `${err.field}: ${err.message}` : err.message));
  }
  body.setAttribute('aria-busy', 'false');
}

function overviewPart(o) {
  const figure = (key, value, detail) => h('div', { class: 'figure', 'data-figure': key },
    h('dt', {}, t(`reports.${key}`)), h('dd', {}, h('span', { class: 'value' }, value), detail ? h('span', { class: 'detail' }, detail) : null));
  const num = (n) => n.toLocaleString(lang());
  return section('reports-overview', t('reports.overview'),
    h('dl', { class: 'figures' },
      figure('opened', num(o.opened)),
      figure('closed', num(o.closed)),
      figure('reopened', num(o.reopened)),
      figure('first_response', duration(o.first_response.median_secs), t('reports.p90', { v: duration(o.first_response.p90_secs), n: num(o.first_response.count), count: o.first_response.count })),
      figure('resolution', duration(o.resolution.median_secs), t('reports.p90', { v: duration(o.resolution.p90_secs), n: num(o.resolution.count), count: o.resolution.count })),
      figure('csat', o.csat.average == null ? '—' : o.csat.average.toLocaleString(lang(), { maximumFractionDigits: 2 }), t('reports.ratings', { n: num(o.csat.count), count: o.csat.count }))),
    csvButton('overview', {}, 'overview', t('reports.csv')));
}

function seriesPart(series) {
  const hourly = series.interval === 'hour';
  // The server's `start` carries the report zone's offset: its digits are local time.
  const label = (p) => {
    const [date, time] = p.start.split('T');
    return hourly ? `${date.slice(5)} ${time.slice(0, 5)}` : date.slice(5);
  };
  // On the axis an hour is just its time, and the day where one begins.
  const tick = (p) => {
    const time = p.start.split('T')[1].slice(0, 5);
    return hourly && time !== '00:00' ? time : label(p).split(' ')[0];
  };
  const points = series.points.map((p) => ({ label: label(p), tick: tick(p), values: SERIES.map((k) => p[k]), start: p.start }));
  const titleId = uid('chart');
  const chart = barChart(points, SERIES.map((k) => t(`reports.${k}`)), titleId);
  const table = h('table', { class: 'grid' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('reports.start')), SERIES.map((k) => h('th', { scope: 'col' }, t(`reports.${k}`))))),
    h('tbody', {}, series.points.map((p) => h('tr', {}, h('th', { scope: 'row' }, label(p)), SERIES.map((k) => h('td', {}, String(p[k])))))));
  return section('reports-series', t(hourly ? 'reports.series_hour' : 'reports.series_day'),
    h('p', { id: titleId, class: 'visually-hidden' }, t('reports.series_alt', { n: points.length })),
    h('div', { class: 'legend', 'aria-hidden': 'true' }, SERIES.map((k, i) => h('span', { class: `key s${i}` }, t(`reports.${k}`)))),
    chart,
    h('details', {}, h('summary', {}, t('reports.as_table')), table),
    csvButton('series', { interval: series.interval }, 'series', t('reports.csv')));
}

function breakdownPart(body, b) {
  const by = h('select', { id: uid('by'), value: b.by, onchange: (e) => { picked.by = e.target.value; draw(body); } },
    ['agent', 'department', 'channel', 'tag'].map((v) => h('option', { value: v }, t(`reports.by_${v}`))));
  const max = Math.max(1, ...b.rows.map((r) => r.opened));
  const rows = b.rows.map((r) => h('tr', { 'data-key': r.key ?? '' },
    h('th', { scope: 'row' }, keyName(b.by, r.key)),
    h('td', { class: 'bar-cell' }, hbars([[r.opened, max]], String(r.opened))),
    h('td', {}, String(r.closed)), h('td', {}, String(r.reopened)),
    h('td', {}, duration(r.first_response.median_secs)), h('td', {}, duration(r.resolution.median_secs)),
    h('td', {}, r.csat.average == null ? '—' : r.csat.average.toLocaleString(lang(), { maximumFractionDigits: 2 }))));
  return section('reports-breakdown', t('reports.breakdown'),
    h('div', { class: 'field inline' }, h('label', { for: by.id }, t('reports.by')), by),
    b.rows.length
      ? h('table', { class: 'grid breakdown' },
        h('thead', {}, h('tr', {}, ['reports.key', 'reports.opened', 'reports.closed', 'reports.reopened', 'reports.first_response', 'reports.resolution', 'reports.csat']
          .map((k) => h('th', { scope: 'col' }, k === 'reports.key' ? t(`reports.by_${b.by}`) : t(k))))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, t('reports.no_rows')),
    csvButton('breakdown', { by: b.by }, `breakdown-${b.by}`, t('reports.csv')));
}

function csatPart(csat, items) {
  const max = Math.max(1, ...csat.distribution);
  const dist = h('table', { class: 'grid csat' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('reports.score')), h('th', { scope: 'col' }, t('reports.ratings_col')))),
    h('tbody', {}, csat.distribution.map((n, i) => h('tr', { 'data-score': i + 1 },
      h('th', { scope: 'row' }, '★'.repeat(i + 1)),
      h('td', { class: 'bar-cell' }, hbars([[n, max]], String(n), `score${i + 1}`))))));
  const list = items.length
    ? h('ul', { class: 'feedback' }, items.map((f) => h('li', { 'data-conversation': f.conversation_id },
      h('span', { class: 'stars', 'aria-label': t('reports.stars', { n: f.score }) }, '★'.repeat(f.score)),
      ' ', h('q', {}, f.feedback),
      h('span', { class: 'muted' }, ' — ', f.agent_id ? keyName('agent', f.agent_id) : t('reports.no_agent'), ', ',
        new Date(f.rated_at).toLocaleString(lang(), { timeZone: picked.tz, dateStyle: 'medium', timeStyle: 'short' })),
      ' ', h('a', { href: `#/c/${f.conversation_id}` }, t('reports.open')))))
    : h('p', { class: 'muted' }, t('reports.no_feedback'));
  return section('reports-csat', t('reports.csat_title'), dist,
    h('h4', {}, t('reports.feedback')), list,
    csvButton('feedback', {}, 'feedback', t('reports.csv')));
}

