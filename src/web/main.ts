/**
 * The dashboard: log in, then one view per hash route (#/hospital, #/live, #/drills, #/capacity,
 * #/security, #/audit). The views a role may open follow the API's roles: a viewer sees status
 * only, a vendor its own systems (the API filters them), auditors read everything, operators and
 * admins also act. The API enforces all of it; the dashboard only avoids offering what would fail.
 */
import { api, ApiFailure, setToken, token, type Me } from './api.ts';
import { announce, clear, h } from './dom.ts';
import { lang, setLang, t, type Key, type Lang } from './i18n.ts';
import { renderHospital } from './views/hospital.ts';
import { renderLive } from './views/live.ts';
import { renderDrills } from './views/drills.ts';
import { renderCapacity } from './views/capacity.ts';
import { renderSecurity } from './views/security.ts';
import { renderAudit } from './views/audit.ts';

import type { ViewContext } from './context.ts';

type Cleanup = () => void;
type View = (context: ViewContext) => Promise<Cleanup | void> | Cleanup | void;

const READERS = new Set(['admin', 'operator', 'auditor']);
const VIEWS: readonly { id: string; label: Key; render: View; allowed: (role: string) => boolean }[] = [
  { id: 'hospital', label: 'nav.hospital', render: renderHospital, allowed: () => true },
  { id: 'live', label: 'nav.live', render: renderLive, allowed: (role) => role !== 'viewer' },
  { id: 'drills', label: 'nav.drills', render: renderDrills, allowed: (role) => READERS.has(role) },
  { id: 'capacity', label: 'nav.capacity', render: renderCapacity, allowed: (role) => READERS.has(role) },
  { id: 'security', label: 'nav.security', render: renderSecurity, allowed: (role) => READERS.has(role) },
  { id: 'audit', label: 'nav.audit', render: renderAudit, allowed: (role) => READERS.has(role) },
];

const top = document.getElementById('top')!;
const main = document.getElementById('main')!;
let me: Me | null = null;
let cleanup: Cleanup | null = null;

function route(): { id: string; rest: string } {
  const [, id = 'hospital', ...rest] = location.hash.replace(/^#/, '').split('/');
  return { id: id === '' ? 'hospital' : id, rest: rest.join('/') };
}

function languageSelect(): HTMLElement {
  const select = h(
    'select',
    { id: 'lang', 'aria-label': t('language'), onchange: (event: Event) => {
      setLang((event.target as HTMLSelectElement).value as Lang);
      void render();
    } },
    h('option', { value: 'ja', selected: lang() === 'ja' }, '日本語'),
    h('option', { value: 'en', selected: lang() === 'en' }, 'English'),
  );
  return h('span', {}, h('label', { for: 'lang', class: 'visually-hidden' }, t('language')), select);
}

function renderTop(current: string): void {
  clear(top);
  top.appendChild(h('span', { class: 'brand', lang: 'ja' }, 'Tomaranai · 止まらない'));
  if (me !== null) {
    const allowed = VIEWS.filter((view) => view.allowed(me!.role));
    top.appendChild(
      h('nav', { 'aria-label': t('nav.label') }, h('ul', {}, allowed.map((view) => h('li', {}, h('a', { href: `#/${view.id}`, 'aria-current': view.id === current ? 'page' : null, 'data-view': view.id }, t(view.label)))))),
    );
  }
  top.appendChild(languageSelect());
  if (me !== null) {
    top.appendChild(h('span', { class: 'who' }, `${t('signedInAs')}: ${me.username} (${me.role})`));
    top.appendChild(h('button', { class: 'secondary', type: 'button', id: 'logout', onclick: () => void logout() }, t('logout')));
  }
}

async function logout(): Promise<void> {
  try {
    await api('/tokens/current', { method: 'DELETE' });
  } catch {
    // The token may have expired already; forgetting it is what matters.
  }
  setToken(null);
  me = null;
  location.hash = '#/hospital';
  await render();
}

async function finishOpenIdLogin(): Promise<void> {
  const query = new URLSearchParams(location.hash.slice(location.hash.indexOf('?') + 1));
  // The code leaves the address bar (and history) before anything else.
  history.replaceState(null, '', `${location.pathname}#/hospital`);
  const code = query.get('handoff');
  if (code === null) return renderLogin(`${t('login.failed')} (${query.get('error') ?? 'TMR_API_OIDC_FAILED'})`);
  try {
    const session = await api<{ token: string }>('/oidc/handoff', { method: 'POST', body: { code } });
    setToken(session.token);
    me = null;
  } catch (failure) {
    return renderLogin(`${t('login.failed')}${failure instanceof ApiFailure ? ` (${failure.code})` : ''}`);
  }
  return render();
}

function renderLogin(message: string | null): void {
  renderTop('');
  clear(main);
  const error = h('p', { class: 'error', role: 'alert', id: 'login-error' }, message ?? '');
  const form = h(
    'form',
    { class: 'login', id: 'login', onsubmit: (event: Event) => {
      event.preventDefault();
      const data = new FormData(event.target as HTMLFormElement);
      void (async () => {
        try {
          const session = await api<{ token: string }>('/sessions', { method: 'POST', body: { username: String(data.get('username')), password: String(data.get('password')) } });
          setToken(session.token);
          await render();
        } catch (failure) {
          error.textContent = `${t('login.failed')}${failure instanceof ApiFailure ? ` (${failure.code})` : ''}`;
        }
      })();
    } },
    h('h1', {}, t('login.title')),
    h('div', {}, h('label', { for: 'username' }, t('login.username')), h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true })),
    h('div', {}, h('label', { for: 'password' }, t('login.password')), h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, t('login.submit')),
    error,
  );
  main.appendChild(form);
  // The hospital's single sign-on, when the service has an OpenID provider configured.
  void api<{ oidc: boolean }>('/auth/methods')
    .then((methods) => {
      if (methods.oidc && form.isConnected) form.appendChild(h('p', {}, h('a', { href: '/api/v1/oidc/login', id: 'oidc-login', class: 'button secondary' }, t('login.oidc'))));
    })
    .catch(() => undefined);
  (form.querySelector('#username') as HTMLInputElement).focus();
}

let renderCount = 0;
async function render(): Promise<void> {
  const generation = ++renderCount;
  cleanup?.();
  cleanup = null;
  document.documentElement.lang = lang();
  // Back from the hospital's OpenID provider: redeem the one-time code (or say why not).
  if (location.hash.startsWith('#/oidc?')) return finishOpenIdLogin();
  if (token() === null) return renderLogin(null);
  if (me === null) {
    try {
      me = await api<Me>('/me');
    } catch {
      setToken(null);
      return renderLogin(null);
    }
  }
  const { id, rest } = route();
  const allowed = VIEWS.filter((view) => view.allowed(me!.role));
  const view = allowed.find((candidate) => candidate.id === id) ?? allowed[0]!;
  renderTop(view.id);
  clear(main);
  document.title = `${t(view.label)} — Tomaranai`;
  const done = await view.render({ me, main, rest });
  if (generation !== renderCount) {
    if (done) done();
    return;
  }
  cleanup = done ?? null;
  announce(t(view.label));
}

window.addEventListener('hashchange', () => {
  void render().then(() => main.focus());
});
void render();
