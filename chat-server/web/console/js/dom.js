// Building elements without a framework: h('button', {class: 'x', onclick}, 'text').
// Text always goes in as text nodes, so nothing a customer writes becomes markup.

/** Creates an element; `on*` attributes become listeners, `value`/`checked` properties. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  let value;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  // A select's value can only be set once its options are in.
  if (value !== undefined) el.value = value;
  return el;
}

/** Appends children: strings become text, arrays are flattened, null is skipped. */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A short-lived message in the polite live region (errors use `alert`). */
export function toast(text, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('p', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : null }, text);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

/** The time of day, or the date for older times, in the console's language. */
export function when(iso, lang) {
  if (!iso) return '';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString(lang, { hour: '2-digit', minute: '2-digit' })
    : d.toLocaleDateString(lang, { month: 'short', day: 'numeric' });
}

let ids = 0;
/** A fresh element id (for label/aria references). */
export const uid = (prefix = 'u') => `${prefix}-${++ids}`;
