// Keyboard shortcuts for the frequent actions, the "?" list of them, and the language
// switch (shared by the login page and the console's header).
import { h, uid } from '../dom.js';
import { t, lang, languages, setLanguage } from '../i18n.js';

export const SHORTCUTS = [
  ['j', 'shortcut.next'], ['k', 'shortcut.previous'], ['r', 'shortcut.reply'], ['n', 'shortcut.note'],
  ['e', 'shortcut.close'], ['c', 'shortcut.claim'], ['/', 'shortcut.search'], ['g i', 'shortcut.inbox'], ['?', 'shortcut.help'], ['Esc', 'shortcut.escape'],
];

/** Installs the key handler; `actions` maps a key to what it does. */
export function installShortcuts(actions) {
  let prefix = '';
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) return;
    const target = e.target;
    const typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
    if (typing) {
      if (e.key === 'Escape') target.blur();
      return;
    }
    if (document.querySelector('dialog[open]')) return;
    const key = prefix ? `${prefix} ${e.key}` : e.key;
    prefix = '';
    if (e.key === 'g') { prefix = 'g'; return; }
    const fn = actions[key];
    if (fn) { e.preventDefault(); fn(); }
  });
}

export function showHelp() {
  const d = h('dialog', { class: 'dialog', 'aria-labelledby': 'help-title' },
    h('h2', { id: 'help-title' }, t('shortcut.title')),
    h('table', { class: 'shortcuts' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, t('shortcut.key')), h('th', { scope: 'col' }, t('shortcut.does')))),
      h('tbody', {}, SHORTCUTS.map(([k, label]) => h('tr', {}, h('td', {}, h('kbd', {}, k)), h('td', {}, t(label)))))),
    h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'primary', onclick: () => d.close() }, t('common.close'))));
  const back = document.activeElement;
  d.addEventListener('close', () => { d.remove(); back?.focus?.(); });
  document.body.append(d);
  d.showModal();
}

/** What to redraw after a language switch (main.js redraws the open screen). */
let onLanguage = () => {};
export function whenLanguageChanges(fn) { onLanguage = fn; }

/** A labelled select of the languages. */

export function languageSwitch() {
  const id = uid('lang');
  const sel = h('select', { id, class: 'lang', value: lang(), onchange: (e) => { setLanguage(e.target.value); onLanguage(); } },
    Object.entries(languages).map(([code, table]) => h('option', { value: code, lang: code }, table.$name)));
  return [h('label', { for: id, class: 'visually-hidden' }, t('common.language')), sel];
}

