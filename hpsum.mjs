import { readFileSync, readdirSync } from 'node:fs';
const f = readdirSync('/tmp/ab/hp')[0];
const p = JSON.parse(readFileSync('/tmp/ab/hp/' + f, 'utf8'));
const bySite = new Map();
const walk = (n, stack) => {
  const fr = n.callFrame; const name = `${fr.functionName || '(anon)'} ${fr.url.replace(/.*node_modules\//, '').replace(/.*\/dist\//, '')}:${fr.lineNumber}`;
  const st = [...stack, name];
  const self = (n.selfSize ?? 0);
  if (self) { const k = st.slice(-3).join(' < '); bySite.set(k, (bySite.get(k) ?? 0) + self); }
  for (const c of n.children ?? []) walk(c, st);
};
walk(p.head, []);
for (const [k, v] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((v / 1024).toFixed(0).padStart(7), 'KB', k);
