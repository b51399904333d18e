// The sign-in form: POST /v1/auth/login, then the session lives in sessionStorage.
import { api, session } from '../api.js';
import { h, replace, uid } from '../dom.js';
import { t } from '../i18n.js';
import { languageSwitch } from './shortcuts.js';

export function renderLogin(root, onSignedIn) {
  const email = h('input', { id: uid('email'), type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { id: uid('pw'), type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, t('login.submit'));
  const form = h('form', {
    class: 'login-card',
    'aria-labelledby': 'login-title',
    async onsubmit(e) {
      e.preventDefault();
      error.textContent = '';
      submit.disabled = true;
      performance.mark('login-submit');
      try {
        const answer = await api('POST', '/v1/auth/login', { email: email.value, password: password.value });
        session.set({ token: answer.access_token, agent: answer.agent });
        onSignedIn(answer.agent);
      } catch (err) {
        error.textContent = err.status === 401 ? t('login.bad') : err.message;
        submit.disabled = false;
        password.focus();
      }
    },
  },
  h('h1', { id: 'login-title' }, t('login.title')),
  h('label', { for: email.id }, t('login.email')), email,
  h('label', { for: password.id }, t('login.password')), password,
  error, submit);
  replace(root, h('main', { class: 'login' }, form, h('div', { class: 'login-lang' }, languageSwitch())));
  email.focus();
}
