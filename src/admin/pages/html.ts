import type { Principal } from '../context.js';

// Server-rendered HTML: every interpolated value is escaped unless it is itself Html, so a partner name or an audit
// field can never become markup. No inline script or style anywhere (the Content-Security-Policy forbids both).

export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(value);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += render(v) + strings[i + 1]!));
  return new Html(out);
}

/** A POST form with the CSRF token; `confirm` asks before submitting (through admin.js). */
export function postForm(action: string, csrf: string, body: Html, opts: { confirm?: string; className?: string } = {}): Html {
  return html`<form method="post" action="${action}" class="${opts.className ?? 'inline'}"${opts.confirm === undefined ? '' : new Html(` data-confirm="${escapeHtml(opts.confirm)}"`)}><input type="hidden" name="_csrf" value="${csrf}">${body}</form>`;
}

export const NAV = [
  ['/', 'Dashboard'],
  ['/partners', 'Partners'],
  ['/bans', 'Bans'],
  ['/events', 'Events'],
  ['/audit', 'Audit'],
  ['/certificates', 'Certificates'],
  ['/account', 'Account'],
] as const;

export function page(opts: { title: string; principal: Principal | null; active?: string; msg?: string | undefined; error?: string | undefined; body: Html }): string {
  const p = opts.principal;
  const nav = p === null || p.mustChangePassword
    ? html``
    : html`<nav>${NAV.map(([href, label]) => html`<a href="${href}"${href === opts.active ? new Html(' aria-current="page"') : ''}>${label}</a>`)}
      <span class="who">${p.name} (${p.role})</span>${postForm('/logout', p.csrf ?? '', html`<button type="submit" class="link">Log out</button>`)}</nav>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · ftpsd admin</title><link rel="stylesheet" href="/assets/admin.css"><script src="/assets/admin.js" defer></script></head>
<body><header><strong>ftpsd</strong> admin ${nav}</header><main>
<h1>${opts.title}</h1>
${opts.msg === undefined || opts.msg === '' ? '' : html`<p class="msg" role="status">${opts.msg}</p>`}
${opts.error === undefined || opts.error === '' ? '' : html`<p class="error" role="alert">${opts.error}</p>`}
${opts.body}
</main></body></html>`.text;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
