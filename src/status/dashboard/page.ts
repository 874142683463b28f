/**
 * @module The dashboard page as one self-contained HTML document: markup, the stylesheet and the
 * browser script inline, plus the Content-Security-Policy that allows exactly that style and
 * script (by SHA-256) and requests to the agent itself. Built from string modules so the page
 * is inside the compiled binary and Deno serves the same bytes; nothing is read from disk.
 */
import { createHash } from "node:crypto";
import { dashboardClient } from "./client.ts";
import { DASHBOARD_CSS } from "./style.ts";

/** The page and the headers that must go with it. */
export interface DashboardPage {
  readonly html: string;
  /** Content-Security-Policy for `html`. */
  readonly csp: string;
}

const LOGO_PATH = "M3 7c3-2.4 6 2.4 9 0s6-2.4 9 0M3 12c3-2.4 6 2.4 9 0s6-2.4 9 0M3 17c3-2.4 6 2.4 9 0s6-2.4 9 0";

/** The favicon: the logo's three weft threads, white on blue. */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><rect width="24" height="24" rx="5" fill="#1d5fd6"/><path d="${LOGO_PATH}" fill="none" stroke="#fff" stroke-width="2" stroke-linecap="round" transform="translate(2.4 2.4) scale(.8)"/></svg>`;

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/**
 * Builds the page; the browser polls `status` every `pollMs`.
 *
 * @example
 *   const { html, csp } = dashboardPage();
 *   new Response(html, { headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": csp } });
 */
export function dashboardPage(pollMs = 1000): DashboardPage {
  if (!Number.isInteger(pollMs) || pollMs < 100) throw new RangeError(`dashboardPage: pollMs ${pollMs} must be an integer of at least 100 (ms)`);
  const css = DASHBOARD_CSS;
  const js = `"use strict";(${dashboardClient.toString()})(${pollMs});`;
  // The transpiled source is what ships; it must not end its own element.
  if (/<\/(script|style)/i.test(js + css)) throw new Error("dashboardPage: the inline script or style contains a closing </script> or </style> tag");
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>weft</title>
<link rel="icon" href="favicon.svg" type="image/svg+xml">
<style>${css}</style>
</head>
<body>
<header class="top">
  <div class="brand">
    <svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" aria-hidden="true"><path d="${LOGO_PATH}"/></svg>
    <span>weft</span><span class="muted tagline">overlay network</span>
  </div>
  <div id="live" class="live"><span class="dot" aria-hidden="true"></span><span id="live-text" role="status">Connecting…</span><span id="live-time"></span></div>
</header>
<main>
  <div id="banners"></div>
  <noscript><div class="banner warn" role="alert"><strong>JavaScript is off.</strong><span>This page renders <a href="status">/status</a> with a small script; the raw JSON is there.</span></div></noscript>
  <section id="summary" class="cards" aria-label="Summary">
    <div class="card"><h2>Network</h2><p id="s-network" class="big mono cidr">—</p><p id="s-network-sub" class="muted"></p></div>
    <div class="card"><h2>This host</h2><p id="s-subnet" class="big mono cidr">—</p><p id="s-public" class="muted"></p></div>
    <div class="card"><h2>Hosts</h2><p id="s-hosts" class="big">—</p><p class="muted">holding a lease</p></div>
    <div class="card"><h2>Backend</h2><p id="s-backend" class="big">—</p><p class="muted">data path type</p></div>
    <div class="card"><h2>Lease</h2><p id="s-lease" class="big">—</p><p id="s-lease-sub" class="muted"></p></div>
    <div class="card"><h2 id="s-etcd-title">etcd</h2><p id="s-etcd" class="big">—</p><p id="s-etcd-sub" class="muted">lease store</p></div>
  </section>
  <section id="mesh-section" aria-labelledby="mesh-h" hidden>
    <h2 id="mesh-h">Mesh <span id="mesh-count" class="muted"></span></h2>
    <p class="muted mesh-note">Each peer as this host's probes see it through the overlay: unreachable first, then by round-trip time.</p>
    <ul id="mesh" class="mesh"></ul>
  </section>
  <section id="matrix-section" aria-labelledby="matrix-h" hidden>
    <h2 id="matrix-h">Whole cluster</h2>
    <p class="muted mesh-note">Row: the host that probes; column: the host probed. From the summaries every agent publishes (clusters of up to 50 hosts).</p>
    <div class="table-wrap"><table id="matrix" class="matrix"><thead></thead><tbody></tbody></table></div>
  </section>
  <section aria-labelledby="hosts-h">
    <h2 id="hosts-h">Hosts <span id="hosts-count" class="muted"></span></h2>
    <div class="table-wrap">
      <table id="hosts">
        <thead><tr><th scope="col">Public IP</th><th scope="col">Subnet</th><th scope="col" class="backend">Backend</th><th scope="col" class="data">Backend data</th><th scope="col">Lease expires</th></tr></thead>
        <tbody></tbody>
      </table>
      <p id="hosts-empty" class="empty muted">No hosts yet.</p>
    </div>
  </section>
  <section aria-labelledby="dp-h">
    <h2 id="dp-h">This host's data path</h2>
    <div id="traffic" class="cards" aria-label="Traffic" hidden></div>
    <div id="datapath"><p class="muted">Loading…</p></div>
  </section>
</main>
<footer>Updated every ${pollMs / 1000} s from <a href="status">/status</a> · <a href="metrics">/metrics</a></footer>
<script>${js}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `style-src ${sha256(css)}`,
    `script-src ${sha256(js)}`,
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}
