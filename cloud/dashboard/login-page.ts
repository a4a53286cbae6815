import { CSRF_FIELD } from './csrf.js';
import { html } from './html.js';
import { page } from './layout.js';

/**
 * The login form. Before a session exists the form is tied to the browser that loaded it by a
 * short-lived cookie whose value the form echoes (`_csrf`), so another site cannot log a browser in
 * under its own account.
 */
export function loginPage(opts: { token: string; next: string; message?: string; name?: string }): string {
  return page(
    null,
    'Operator login',
    html`<form class="login" method="post" action="/dashboard/login">
  ${opts.message ? html`<p class="flash bad" role="alert">${opts.message}</p>` : ''}
  <input type="hidden" name="${CSRF_FIELD}" value="${opts.token}">
  <input type="hidden" name="next" value="${opts.next}">
  <label for="name">Operator</label>
  <input id="name" name="name" type="text" autocomplete="username" required autofocus value="${opts.name ?? ''}">
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Log in</button>
</form>`,
  );
}
