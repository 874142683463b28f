/**
 * @module The dashboard's stylesheet, inlined into the page (no external fonts or files): system
 * fonts, one set of colour variables for light and one for dark (prefers-color-scheme), cards
 * and tables that reflow on narrow screens.
 */

/** The dashboard CSS. */
export const DASHBOARD_CSS = `
:root {
  color-scheme: light dark;
  --bg: #f4f6f9; --surface: #ffffff; --text: #17202c; --muted: #5a6677; --border: #dfe4ea;
  --accent: #1d5fd6; --accent-soft: #e9f0fd; --ok: #16794a; --warn: #a85a00; --bad: #b4232a;
  --bad-soft: #fdecec; --warn-soft: #fff5e6; --info-soft: #eaf2fd; --added: #fff7d6;
  --shadow: 0 1px 2px rgb(16 24 40 / 6%), 0 1px 3px rgb(16 24 40 / 8%);
  --mono: ui-monospace, "SFMono-Regular", "Cascadia Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --surface: #151b23; --text: #e4e8ee; --muted: #9aa5b4; --border: #29323d;
    --accent: #6ea8fe; --accent-soft: #16243a; --ok: #4cc38a; --warn: #f0a640; --bad: #ff7b80;
    --bad-soft: #3a1719; --warn-soft: #35260f; --info-soft: #14233a; --added: #3a3413;
    --shadow: none;
  }
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif;
  font-variant-numeric: tabular-nums;
}
.mono { font-family: var(--mono); font-size: 0.93em; }
.muted { color: var(--muted); }
[hidden] { display: none !important; }

header.top {
  display: flex; align-items: center; justify-content: space-between; gap: 1rem;
  padding: 0.8rem clamp(1rem, 3vw, 2rem); background: var(--surface); border-bottom: 1px solid var(--border);
  position: sticky; top: 0; z-index: 1;
}
.brand { display: flex; align-items: center; gap: 0.6rem; font-weight: 650; font-size: 1.1rem; }
.brand svg { width: 26px; height: 26px; color: var(--accent); }
.brand .muted { font-weight: 400; font-size: 0.95rem; }
.live { display: flex; align-items: center; gap: 0.45rem; font-size: 0.88rem; color: var(--muted); white-space: nowrap; }
.live .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); }
.live.on .dot { background: var(--ok); box-shadow: 0 0 0 3px color-mix(in srgb, var(--ok) 22%, transparent); }
.live.off { color: var(--bad); font-weight: 600; }
.live.off .dot { background: var(--bad); }

main { max-width: 1200px; margin: 0 auto; padding: 1.25rem clamp(1rem, 3vw, 2rem) 2rem; }
section { margin-top: 1.75rem; }
h2 { font-size: 1.05rem; margin: 0 0 0.7rem; display: flex; align-items: baseline; gap: 0.6rem; }
h2 .muted { font-weight: 400; font-size: 0.9rem; }
h3 { font-size: 0.95rem; margin: 1.2rem 0 0.5rem; }
.count { color: var(--muted); font-weight: 400; }

#banners { display: grid; gap: 0.6rem; }
.banner {
  display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; padding: 0.75rem 1rem; border-radius: 8px;
  border: 1px solid; border-left-width: 5px;
}
.banner .detail { flex-basis: 100%; font-family: var(--mono); font-size: 0.82rem; color: var(--muted); overflow-wrap: anywhere; }
.banner .detail:empty { display: none; }
.banner.error { background: var(--bad-soft); border-color: var(--bad); }
.banner.error strong { color: var(--bad); }
.banner.warn { background: var(--warn-soft); border-color: var(--warn); }
.banner.info { background: var(--info-soft); border-color: var(--accent); }

.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 0.8rem; }
#summary { margin-top: 1rem; }
.card {
  background: var(--surface); border: 1px solid var(--border); border-radius: 10px; padding: 0.85rem 1rem;
  box-shadow: var(--shadow); min-width: 0;
}
.card h2, .card h3 {
  margin: 0 0 0.3rem; font-size: 0.75rem; font-weight: 600; letter-spacing: 0.06em; text-transform: uppercase; color: var(--muted);
}
.card p { margin: 0; overflow-wrap: break-word; }
.card .big { font-size: 1.2rem; font-weight: 620; }
.card .muted { font-size: 0.85rem; }
.ok { color: var(--ok); }
.bad { color: var(--bad); }

.table-wrap { overflow-x: auto; background: var(--surface); border: 1px solid var(--border); border-radius: 10px; box-shadow: var(--shadow); }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 0.6rem 1rem; border-bottom: 1px solid var(--border); vertical-align: top; }
tbody tr:last-child > * { border-bottom: 0; }
thead th {
  font-size: 0.75rem; font-weight: 600; letter-spacing: 0.06em; text-transform: uppercase; color: var(--muted);
  background: color-mix(in srgb, var(--bg) 60%, var(--surface)); white-space: nowrap;
}
tbody th { font-weight: 500; }
#hosts tbody tr { transition: background-color 1.5s ease; }
#hosts tr.self { background: var(--accent-soft); }
#hosts tr.self > th { box-shadow: inset 4px 0 0 var(--accent); }
#hosts tr.added { background: var(--added); transition: none; }
.badge {
  display: none; margin-left: 0.5rem; padding: 0.05rem 0.45rem; border-radius: 999px; font-size: 0.72rem; font-weight: 600;
  background: var(--accent); color: var(--surface); vertical-align: 0.1em;
}
tr.self .self-badge { display: inline-block; }
.pill { display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; border: 1px solid var(--border); font-size: 0.85rem; }
.sub { color: var(--muted); font-size: 0.82rem; }
.sub:empty { display: none; }
td.data { color: var(--muted); max-width: 22rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
td.expiry { white-space: nowrap; }
/* An address or CIDR is one word: never "10.244.0.0/1" on one line and "6" on the next. */
.cidr { white-space: nowrap; overflow-wrap: normal; word-break: keep-all; }
.big.cidr { font-size: clamp(1.05rem, 2.4vw, 1.6rem); }
.counter .note { font-size: 0.78rem; margin-top: 0.3rem; }
.expiry.reserved { color: var(--accent); font-weight: 600; }
.expiry.soon { color: var(--warn); font-weight: 600; }
.expiry.expired { color: var(--bad); font-weight: 600; }
.empty { padding: 1rem; margin: 0; }

.counter .big { font-size: 1.2rem; }
.spark { display: block; width: 100%; height: 28px; margin-top: 0.45rem; }
.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; }
.spark polygon { fill: var(--accent); opacity: 0.12; stroke: none; }
.spark line { stroke: var(--border); stroke-width: 1; vector-effect: non-scaling-stroke; }
#traffic { margin-bottom: 0.8rem; }

.facts {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 0.1rem 1rem; margin: 0;
  background: var(--surface); border: 1px solid var(--border); border-radius: 10px; padding: 0.75rem 1rem; box-shadow: var(--shadow);
}
.facts div { padding: 0.3rem 0; min-width: 0; }
.facts dt { font-size: 0.75rem; color: var(--muted); text-transform: uppercase; letter-spacing: 0.05em; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.data-table td { white-space: nowrap; }
.note { padding: 0.6rem 0.9rem; border-radius: 8px; }
.note.warn { background: var(--warn-soft); border: 1px solid var(--warn); }

body.stale main > section { opacity: 0.55; transition: opacity 0.3s; }
footer { max-width: 1200px; margin: 0 auto; padding: 0 clamp(1rem, 3vw, 2rem) 2rem; color: var(--muted); font-size: 0.82rem; }
a { color: var(--accent); }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
/* Hosts table: below 960 px the backend data column goes, so the table never scrolls sideways. */
@media (max-width: 960px) {
  th, td { padding: 0.55rem 0.7rem; }
  #hosts .data { display: none; }
}
@media (max-width: 640px) {
  th, td { padding: 0.5rem 0.6rem; }
  thead th { white-space: normal; }
  .data, .backend, .tagline { display: none; }
}
@media (prefers-reduced-motion: reduce) {
  * { transition: none !important; }
}

.mesh { list-style: none; margin: 0; padding: 0; display: grid; gap: 0.5rem; grid-template-columns: repeat(auto-fill, minmax(11.5rem, 1fr)); align-items: start; }
.mesh-note { margin: -0.4rem 0 0.6rem; font-size: 0.88rem; }
.mesh li {
  background: var(--surface); border: 1px solid var(--border); border-left: 5px solid var(--muted); border-radius: 8px;
  padding: 0.45rem 0.7rem; box-shadow: var(--shadow); min-width: 0;
}
.mesh li.up { border-left-color: var(--ok); }
.mesh li.down { border-left-color: var(--bad); background: var(--bad-soft); }
.mesh li.mtu { border-left-color: var(--warn); background: var(--warn-soft); }
.mesh .peer { font-family: var(--mono); font-weight: 600; display: block; }
.mesh .state { font-size: 0.85rem; display: block; }
.mesh li.down .state { color: var(--bad); font-weight: 600; }
.mesh li.mtu .state { color: var(--warn); font-weight: 600; }
.mesh .cause { font-size: 0.8rem; color: var(--muted); display: block; overflow-wrap: anywhere; }
.matrix { width: auto; }
.matrix th, .matrix td { padding: 0.25rem 0.45rem; text-align: center; font-family: var(--mono); font-size: 0.8rem; }
.matrix thead th { writing-mode: vertical-rl; transform: rotate(180deg); text-transform: none; letter-spacing: 0; }
.matrix tbody th { text-align: right; text-transform: none; }
.matrix tr.self th { color: var(--accent); }
.matrix td.u { color: var(--ok); }
.matrix td.d { color: var(--bad); background: var(--bad-soft); font-weight: 700; }
.matrix td.m { color: var(--warn); background: var(--warn-soft); font-weight: 700; }
.matrix td.q, .matrix td.n { color: var(--muted); }
`;
