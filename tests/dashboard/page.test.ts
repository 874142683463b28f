import { describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { parseIPv4, parseIPv4Net } from "../../src/net/ip.ts";
import { type AgentView, createStatusApp } from "../../src/status/app.ts";
import { dashboardPage } from "../../src/status/dashboard/page.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { denoDashboardPage } from "./deno_page.ts";

function view(): AgentView {
  return {
    ready: true,
    config: parseNetworkConfig(`{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`),
    backendType: "alloc",
    lease: { key: "10.5.1.0-24", subnet: parseIPv4Net("10.5.1.0/24"), attrs: { publicIP: parseIPv4("192.168.0.1") }, expiration: null, etcdLease: "0" },
    peers: new Map(),
    metrics: new Metrics(),
  };
}

const app = createStatusApp(view());

const RUNTIMES = {
  bun: async () => {
    const r = await app.request("/");
    return { headers: r.headers, html: await r.text() };
  },
  deno: async () => {
    const { headers, html } = denoDashboardPage();
    return { headers: new Headers(headers), html };
  },
};
const inline = (html: string, tag: "script" | "style") => {
  const all = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
  expect(all).toHaveLength(1);
  return all[0]!;
};
const sha256 = (s: string) => `'sha256-${createHash("sha256").update(s).digest("base64")}'`;

describe.each(Object.keys(RUNTIMES) as (keyof typeof RUNTIMES)[])("GET / (the dashboard) under %s", (runtime) => {
  const page = RUNTIMES[runtime];

  test("is an HTML document", async () => {
    const { headers, html } = await page();
    expect(headers.get("content-type")).toBe("text/html; charset=UTF-8");
    expect(headers.get("cache-control")).toBe("no-cache");
    expect(headers.get("x-content-type-options")).toBe("nosniff");
    expect(html.startsWith("<!doctype html>\n<html lang=\"en\">")).toBe(true);
    expect(html).toContain('<table id="hosts">');
  });

  test("carries its stylesheet and script inline and loads nothing from elsewhere", async () => {
    const { html } = await page();
    expect(inline(html, "style")).toContain("prefers-color-scheme: dark");
    expect(inline(html, "script")).toContain("function dashboardClient(");
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/rel="stylesheet"/);
    expect(html).not.toMatch(/@import|@font-face|url\(/);
    // Every link stays on the agent: relative paths only.
    for (const m of html.matchAll(/\b(?:href|src|action)="([^"]*)"/g)) expect(m[1]).toMatch(/^[a-z][a-z0-9.]*$/);
    // No absolute URL at all, but the SVG namespace name (an identifier, never fetched).
    const urls = [...html.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*/gi)].map((m) => m[0]);
    expect(urls.filter((u) => u !== "http://www.w3.org/2000/svg")).toEqual([]);
  });

  test("the script is valid JavaScript on its own", async () => {
    const { html } = await page();
    expect(() => new Function(inline(html, "script"))).not.toThrow();
  });

  test("a Content-Security-Policy allows exactly the inline style and script and requests to the agent", async () => {
    const { headers, html } = await page();
    const csp = Object.fromEntries(headers.get("content-security-policy")!.split("; ").map((d) => {
      const [name, ...values] = d.split(" ");
      return [name, values.join(" ")];
    }));
    expect(csp).toEqual({
      "default-src": "'none'",
      "style-src": sha256(inline(html, "style")),
      "script-src": sha256(inline(html, "script")),
      "connect-src": "'self'",
      "img-src": "'self'",
      "base-uri": "'none'",
      "form-action": "'none'",
      "frame-ancestors": "'none'",
    });
  });

});

test("GET / answers 200, HEAD / without a body", async () => {
  expect((await app.request("/")).status).toBe(200);
  const head = await app.request("/", { method: "HEAD" });
  expect(head.status).toBe(200);
  expect(await head.text()).toBe("");
});

test("/favicon.svg is the logo and /favicon.ico is empty", async () => {
  const svg = await app.request("/favicon.svg");
  expect(svg.headers.get("content-type")).toBe("image/svg+xml");
  expect(await svg.text()).toStartWith("<svg xmlns=\"http://www.w3.org/2000/svg\"");
  const ico = await app.request("/favicon.ico");
  expect(ico.status).toBe(204);
});

test("the dashboard leaves the agent's other routes alone", async () => {
  expect((await app.request("/status")).headers.get("content-type")).toStartWith("application/json");
  expect(await (await app.request("/healthz")).text()).toBe("flanneld is running");
  expect((await app.request("/nope")).status).toBe(404);
});

test("dashboardPage() polls at the interval it is given, at least 100 ms", () => {
  expect(dashboardPage(2000).html).toContain("})(2000);</script>");
  expect(() => dashboardPage(50)).toThrow("dashboardPage: pollMs 50 must be an integer of at least 100 (ms)");
});
