// The web admin's only stylesheet and script, served by the server itself (no CDN, no build step). The script is
// progressive: every page works without it; with it, live parts refresh themselves and destructive buttons ask first.

export const ADMIN_CSS = `
:root { --fg: #1d2430; --muted: #5b6574; --line: #d8dde5; --accent: #1f5fbf; --bad: #b42318; --ok: #067647; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: #f6f7f9; }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
nav { display: flex; flex-wrap: wrap; align-items: center; gap: .9rem; }
nav a { color: var(--accent); text-decoration: none; }
nav a[aria-current="page"] { font-weight: 600; text-decoration: underline; }
.who { color: var(--muted); margin-left: 1rem; }
main { padding: 1rem 1.2rem 3rem; max-width: 1200px; }
h1 { font-size: 1.4rem; margin: .4rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.6rem 0 .6rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.msg { background: #e7f6ec; border: 1px solid #a6dfb7; padding: .5rem .8rem; }
.error { background: #fdecea; border: 1px solid #f3b8b1; padding: .5rem .8rem; color: var(--bad); white-space: pre-wrap; }
.secret { font-family: ui-monospace, monospace; background: #fff7d6; padding: .15rem .4rem; border: 1px solid #e8d48b; }
form.inline { display: inline; }
form.stack { display: grid; gap: .55rem; max-width: 640px; background: #fff; padding: 1rem; border: 1px solid var(--line); }
form.stack label { display: grid; gap: .2rem; font-weight: 600; }
form.stack label span { font-weight: 400; color: var(--muted); font-size: .9em; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: 1rem; }
form.filters label { display: grid; font-size: .9em; }
input, select, textarea { font: inherit; padding: .3rem .45rem; border: 1px solid #b8c0cc; border-radius: 3px; }
textarea { font-family: ui-monospace, monospace; min-height: 18rem; width: 100%; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 3px; cursor: pointer; }
button.danger { background: var(--bad); border-color: var(--bad); }
button.link { background: none; border: none; color: var(--accent); padding: 0; }
.progress { display: inline-block; width: 8rem; height: .7rem; background: #e3e7ee; vertical-align: middle; }
.progress > span { display: block; height: 100%; background: var(--ok); }
.muted { color: var(--muted); }
code, pre { font-family: ui-monospace, monospace; }
#audit td:last-child code { font-size: .8em; overflow-wrap: anywhere; }
pre { background: #fff; border: 1px solid var(--line); padding: .6rem; overflow: auto; }
${Array.from({ length: 11 }, (_, i) => `.progress > span.w${i * 10} { width: ${i * 10}%; }`).join('\n')}
`;

export const ADMIN_JS = `'use strict';
// Parts marked data-live="URL" are replaced every data-interval milliseconds by the HTML that URL returns.
for (const el of document.querySelectorAll('[data-live]')) {
  const every = Number(el.getAttribute('data-interval') || 2000);
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      const res = await fetch(el.getAttribute('data-live'), { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (res.redirected || res.status === 401) location.reload();
      else if (res.ok) el.innerHTML = await res.text();
    } catch {
      // offline for a moment: try again at the next tick
    } finally {
      busy = false;
    }
  }, every);
}
// Forms marked data-confirm="QUESTION" ask before they are sent (kick, delete, unban).
document.addEventListener('submit', (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.getAttribute('data-confirm') : null;
  if (question !== null && !window.confirm(question)) event.preventDefault();
});
`;
