/**
 * @module The dashboard's routes on the status app: `GET /` (the page), `GET /favicon.svg`,
 * `GET /favicon.ico` (204, so browsers stop asking). The page polls `/status` once a second, so
 * the server keeps no per-client state: nothing to close at shutdown, and every runtime serves
 * it the same way.
 */
import type { Hono } from "hono";
import { FAVICON_SVG, dashboardPage } from "./page.ts";

let page: ReturnType<typeof dashboardPage> | undefined;

/**
 * Adds the dashboard to the status app. Its signature fits `AgentOptions.extendApp`.
 *
 * @example
 *   const app = createStatusApp(view);
 *   addDashboard(app);
 *   await app.request("/"); // text/html
 */
export function addDashboard(app: Hono): void {
  page ??= dashboardPage();
  const { html, csp } = page;
  app.get("/", (c) => c.html(html, 200, {
    "content-security-policy": csp,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  }));
  app.get("/favicon.svg", (c) => c.body(FAVICON_SVG, 200, {
    "content-type": "image/svg+xml",
    "cache-control": "max-age=86400",
    "x-content-type-options": "nosniff",
  }));
  app.get("/favicon.ico", (c) => c.body(null, 204));
}
