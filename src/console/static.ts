/**
 * The console's static files: one stylesheet and one small script, served by
 * Warden so the CSP can allow `'self'` only. The script is progressive
 * enhancement: without it every form still works; with it the list of
 * pending approvals refreshes itself when the server says it changed (SSE).
 */

import { ADMIN_CSS } from './admin/styles.js';

export const CONSOLE_CSS =
  `
:root{--fg:#1b1b1b;--muted:#4a4a4a;--line:#d0d0d0;--bg:#fff;--card:#f7f7f8;--ok:#0a6b2d;--no:#a11;--link:#0b57d0}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:var(--fg);background:var(--bg)}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:.5rem;padding:.6rem 1rem;border-bottom:1px solid var(--line)}
header .brand{font-size:1.2rem;font-weight:700;margin:0}header .brand a{color:var(--fg);text-decoration:none}
nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.25rem;margin:0;padding:0;width:100%}
header nav{flex-basis:100%}
nav a{display:inline-block;padding:.45rem .75rem;min-height:44px;line-height:1.8;border-radius:6px;text-decoration:none}
nav a[aria-current=page]{background:#e8f0fe;color:#0842a0;font-weight:600}
h1{font-size:1.4rem;margin:1.2rem 0 .4rem}
.who{margin:0;color:var(--muted)}a{color:var(--link)}
main{max-width:52rem;margin:0 auto;padding:0 1rem 3rem}
h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
.count{display:inline-block;min-width:1.6rem;padding:0 .4rem;border-radius:1rem;background:#333;color:#fff;text-align:center;font-size:.9rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:.8rem 1rem;margin:0 0 .8rem}
.card h3{margin:0 0 .4rem;font-size:1.05rem}
dl{display:grid;grid-template-columns:8.5rem 1fr;gap:.2rem .8rem;margin:.4rem 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
pre{background:#fff;border:1px solid var(--line);padding:.6rem;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;max-height:20rem;margin:.4rem 0}
code{overflow-wrap:anywhere}
.code{font-family:monospace;letter-spacing:.15rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.6rem}
.actions form{margin:0}
button{font:inherit;padding:.5rem 1rem;min-height:44px;border-radius:6px;border:1px solid #333;background:#fff;color:var(--fg);cursor:pointer}
button:focus-visible,select:focus-visible,input:focus-visible,a:focus-visible,summary:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}
.approve,.approve-grant{background:var(--ok);border-color:var(--ok);color:#fff}.deny{background:var(--no);border-color:var(--no);color:#fff}
select{font:inherit;padding:.4rem;min-height:44px}
.list{list-style:none;padding:0;margin:0}
.list .card{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:center;gap:.6rem}
.meta{color:var(--muted);font-size:.92rem}
.status{font-size:.85rem;padding:0 .4rem;border-radius:4px;background:#e6f4ea;color:#0a4f22}
.status-expired,.status-needs-re-linking{background:#fce8e6;color:#8a1111}
.notice{background:#e8f0fe;border-left:4px solid var(--link);padding:.5rem .8rem;margin-top:1rem}
.empty{color:var(--muted)}
.filters{display:flex;flex-wrap:wrap;gap:.6rem 1rem;align-items:flex-end;margin:.8rem 0 1rem}
.filters label{display:block;font-weight:600}
.filters input{font:inherit;padding:.4rem;min-height:44px;border:1px solid #767676;border-radius:4px}
.filters select{border:1px solid #767676;border-radius:4px}
.filter-actions{display:flex;gap:.8rem;align-items:center}
.activity-head{display:flex;flex-wrap:wrap;gap:.4rem .6rem;align-items:baseline;width:100%}
.activity dl.facts{display:flex;flex-wrap:wrap;gap:.1rem 1.1rem;width:100%;margin:.3rem 0 0;font-size:.95rem}.facts>div{display:flex;gap:.35rem}.facts dt{font-weight:400;color:var(--muted)}.facts dd{font-weight:600}.activity .meta{font-weight:400}
.outcome{font-size:.85rem;font-weight:600;padding:0 .45rem;border-radius:4px}
.outcome-allow{background:#e6f4ea;color:#0a4f22}.outcome-deny,.outcome-error{background:#fce8e6;color:#8a1111}.outcome-pending{background:#fef7e0;color:#6b4a00}
.pager{display:flex;gap:1rem;margin:1rem 0}.pager a{min-height:44px;display:inline-block;padding:.5rem 0}
.budget h2,.connection h2{font-size:1.05rem;margin:0;display:inline}
.budget-body{width:100%}
meter{width:100%;height:1.2rem}
.status-not-linked{background:#f1f3f4;color:#3c4043}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:520px){nav ul{gap:0}nav a{padding:.45rem .5rem;font-size:.95rem}.filters>div:first-child{flex-basis:100%}.filters input{width:100%}.list .actions{flex-direction:row}dl{grid-template-columns:1fr}dt{margin-top:.3rem}.actions{flex-direction:column;align-items:stretch}.actions button,.actions select{width:100%}.for-a-while label{display:block}}
` + ADMIN_CSS;

export const CONSOLE_JS = `'use strict';
(function () {
  var url = document.body.getAttribute('data-events');
  if (!url || !window.EventSource || !window.fetch) return;
  var es = new EventSource(url);
  var busy = false;
  var stale = false;
  // Never replace the list under someone's hands: not while a form in it has the keyboard focus, nor while
  // the pointer is over it (a request arriving on top would slide under the button about to be clicked).
  function held() {
    var active = document.activeElement;
    var list = document.getElementById('pending');
    return Boolean((active && active.closest && active.closest('#pending form')) || (list && list.matches(':hover')));
  }
  // A change that had to wait is shown once the pointer and the focus have left the list.
  function later() {
    if (stale && !held()) refresh();
  }
  document.addEventListener('mouseover', later);
  document.addEventListener('focusin', later);
  es.addEventListener('pending', refresh);
  function refresh() {
    if (busy || held()) {
      stale = true;
      return;
    }
    stale = false;
    busy = true;
    fetch(location.pathname, { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        // The pointer may have come over the list while the page was fetched.
        if (held()) {
          stale = true;
          return;
        }
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('pending');
        var count = doc.getElementById('pending-count');
        if (next) document.getElementById('pending').replaceWith(next);
        if (count) document.getElementById('pending-count').textContent = count.textContent;
      })
      .finally(function () { busy = false; });
  }
})();
`;
