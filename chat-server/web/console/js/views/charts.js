// Small SVG charts without a library: grouped bars for a series and a horizontal bar for
// a table cell. Only attributes and classes are set (the CSP refuses inline styles), and
// every chart has its figures in a table next to it, so a screen reader needs no picture.
const NS = 'http://www.w3.org/2000/svg';

/** An SVG element: svg('rect', {x: 1, class: 'a'}, ...children); strings become text. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v != null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) {
    if (c == null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A round upper bound for the axis (1, 2, 5 × 10^n) at or above `max`. */
function niceMax(max) {
  if (max <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
}

/**
 * Grouped bars: `points` = [{label, tick?, values: [a, b, c]}] (`tick` is the axis text), one bar per value, series i
 * coloured by class `s<i>`. Each bar has a <title> (the tooltip) naming its series and
 * value; `labelledBy` names the element describing the chart.
 */
export function barChart(points, names, labelledBy) {
  const W = 720, H = 240, left = 36, bottom = 34, top = 10;
  const max = niceMax(Math.max(0, ...points.flatMap((p) => p.values)));
  const plotH = H - bottom - top;
  const slot = (W - left - 8) / Math.max(1, points.length);
  const bar = Math.max(1, Math.min(18, (slot - 4) / names.length));
  const y = (v) => top + plotH - (v / max) * plotH;
  const ticks = [0, max / 2, max];
  // Fewer labels than bars when there are many (hourly): every n-th.
  const every = Math.ceil(points.length / 12);
  const rtl = document.documentElement.dir === 'rtl';
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': labelledBy, preserveAspectRatio: 'xMinYMin meet' },
    ticks.map((v) => [
      svg('line', { class: 'grid-line', x1: left, x2: W - 4, y1: y(v), y2: y(v) }),
      svg('text', { class: 'tick', x: left - 4, y: y(v) + 4, 'text-anchor': 'end' }, Number.isInteger(v) ? v : v.toFixed(1)),
    ]),
    points.map((p, i) => {
      // Time runs right to left in Arabic, as the text does.
      const slotIndex = rtl ? points.length - 1 - i : i;
      const x0 = left + slotIndex * slot + (slot - bar * names.length) / 2;
      return svg('g', { class: 'point', 'data-start': p.start },
        p.values.map((v, s) => svg('rect', {
          class: `bar s${s}`, x: x0 + s * bar, y: y(v), width: Math.max(1, bar - 1), height: Math.max(0, top + plotH - y(v)), 'data-series': s, 'data-value': v,
        }, svg('title', {}, `${p.label} · ${names[s]}: ${v}`))),
        i % every === 0 ? svg('text', { class: 'tick', x: x0 + (bar * names.length) / 2, y: H - bottom + 16, 'text-anchor': 'middle' }, p.tick ?? p.label) : null);
    }));
  return chart;
}

/** A one-line horizontal bar for a table cell: `bars` = [[value, max]]; `text` beside it. */
export function hbars(bars, text, extraClass = '') {
  const W = 160, H = 14;
  return [
    svg('svg', { class: `hbar ${extraClass}`.trim(), viewBox: `0 0 ${W} ${H}`, width: W, height: H, 'aria-hidden': 'true', focusable: 'false' },
      svg('rect', { class: 'track', x: 0, y: 0, width: W, height: H, rx: 3 }),
      bars.map(([v, max]) => svg('rect', { class: 'fill', x: 0, y: 0, width: max ? (v / max) * W : 0, height: H, rx: 3, 'data-value': v }))),
    ' ', text,
  ];
}
