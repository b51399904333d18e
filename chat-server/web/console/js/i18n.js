// All of the console's words live in locales/<lang>.js, one table per language; views
// only ever call t('key'). Arabic sets dir="rtl" on <html>, and the style sheet uses
// logical properties (inline-start/end), so the layout mirrors by itself.
import en from './locales/en.js';
import ar from './locales/ar.js';

export const languages = { en, ar };
let current = pick(localStorage.getItem('console.lang'));

function pick(lang) {
  if (lang && languages[lang]) return lang;
  return (navigator.language || 'en').startsWith('ar') ? 'ar' : 'en';
}

/** The current language code. */
export const lang = () => current;

/** The string for `key`, with `{name}` replaced from `params`; English if missing. With a
 *  numeric `params.count`, the language's plural form of the key comes first
 *  (`key.one`, `key.few`, … by Intl.PluralRules), so "1 rating" is not "1 ratings". */
export function t(key, params) {
  const table = languages[current];
  const form = typeof params?.count === 'number' ? `${key}.${new Intl.PluralRules(current).select(params.count)}` : null;
  const s = (form && table[form]) ?? table[key] ?? (form && en[form]) ?? en[key] ?? key;
  return params ? s.replace(/\{(\w+)\}/g, (_, k) => params[k] ?? '') : s;
}

/** Switches the language (kept across visits) and sets lang/dir on the page. */
export function setLanguage(code) {
  current = pick(code);
  localStorage.setItem('console.lang', current);
  applyLanguage();
}

export function applyLanguage() {
  document.documentElement.lang = current;
  document.documentElement.dir = languages[current].$dir;
}
