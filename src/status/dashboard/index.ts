/**
 * @module The dashboard's routes on the status app: `GET /` (the page), `GET /favicon.svg`,
 * `GET /favicon.ico` (204, so browsers stop asking). The page polls `/status` once a second, so
 * the server keeps no per-client state: nothing to close at shutdown, and every runtime serves
 * it the same way. The page module (markup, stylesheet, browser script, and the CSP's SHA-256
 * hashes through node:crypto) is loaded and the page built on the first request for it: an
 * agent whose dashboard nobody opens never loads them (issue #14: node:crypto alone is ~1.5 MiB
 * of RSS in kube mode, where nothing else imports it).
 */
import type { Hono } from "hono";
import type { DashboardPage } from "./page.ts";

let loaded: Promise<{ page: DashboardPage; favicon: string }> | undefined;
const load = () => (loaded ??= import("./page.ts").then((m) => ({ page: m.dashboardPage(), favicon: m.FAVICON_SVG })));

/**
 * Adds the dashboard to the status app. Its signature fits `AgentOptions.extendApp`.
 *
 * @example
 *   const app = createStatusApp(view);
 *   addDashboard(app);
 *   await app.request("/"); // text/html
 */
export function addDashboard(app: Hono): void {
  app.get("/", async (c) => {
    const { html, csp } = (await load()).page;
    return c.html(html, 200, {
      "content-security-policy": csp,
      "cache-control": "no-cache",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    });
  });
  app.get("/favicon.svg", async (c) => c.body((await load()).favicon, 200, {
    "content-type": "image/svg+xml",
    "cache-control": "max-age=86400",
    "x-content-type-options": "nosniff",
  }));
  app.get("/favicon.ico", (c) => c.body(null, 204));
}
