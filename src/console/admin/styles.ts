/** Styles of the platform team's pages, appended to console.css (one stylesheet, CSP 'self'). */

export const ADMIN_CSS = `
.admin-nav ul{list-style:none;display:flex;flex-wrap:wrap;gap:.3rem .4rem;padding:0;margin:1rem 0 0}
.admin-nav a{display:inline-block;padding:.45rem .8rem;min-height:44px;line-height:1.9;border:1px solid var(--line);border-radius:6px;text-decoration:none}
.admin-nav a[aria-current=page]{background:#1b1b1b;border-color:#1b1b1b;color:#fff}
.pill{display:inline-block;font-size:.8rem;font-weight:600;padding:0 .45rem;border-radius:4px;background:#e8eaed;color:#1b1b1b;vertical-align:middle}
.pill.mode-shadow{background:#fef7e0;color:#5c4300}
.checks{margin:.2rem 0;padding-left:1.2rem}.checks li{margin:.15rem 0}
.table-wrap{overflow-x:auto;margin:.4rem 0 1rem}
table{border-collapse:collapse;width:100%;font-size:.95rem}
th,td{text-align:left;padding:.45rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;background:var(--card)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:.8rem}
.grid .card{margin:0}.grid p{margin:.3rem 0}
pre.diff{white-space:pre-wrap;font-size:.9rem;line-height:1.45;max-height:none;padding:.4rem 0}
pre.diff>span{display:block;padding:0 .6rem 0 2rem;text-indent:-1.4rem}
.d-mark{display:inline-block;width:1.4rem;text-indent:0;font-weight:700}
.d-removed{background:#fce8e6;color:#6e0b0b}.d-added{background:#e6f4ea;color:#0a3d1a}
.d-removed del,.d-added ins{text-decoration:none}
.d-elided{background:#e8eaed;color:#1b1b1b;font-weight:600}.d-elided em{font-style:normal}
.legend span{display:inline-block;padding:.1rem .5rem;margin:0 .4rem .3rem 0;border-radius:4px}
form.accept{margin:1rem 0}
@media (max-width:520px){table.pins thead,table.decided thead{display:none}table.pins tr,table.decided tr{display:block;padding:.5rem 0;border-bottom:1px solid var(--line)}table.pins td,table.decided td{display:inline;border:0;padding:0 .5rem 0 0}table.pins td:last-child{display:block;margin-top:.3rem}table.decided td{display:block}table.decided td[data-label]::before{content:attr(data-label) ": ";font-weight:600}.admin-nav li{flex:1 1 auto}.admin-nav a{display:block;text-align:center}form.accept button{width:100%}}
`;
