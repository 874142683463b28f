/**
 * The dashboard's mesh view in a real browser (Debian's chromium, playwright-core), against an
 * in-process status app whose view carries probe results: unreachable peers first with their
 * cause, then the MTU black hole, the unanswered, and the reachable by RTT; the section stays
 * hidden while no peer is probed. Screenshot: tests/artifacts/dashboard-mesh.png.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { parseNetworkConfig } from "../../src/config/network.ts";
import type { Lease } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv4Net } from "../../src/net/ip.ts";
import { type AgentView, createStatusApp } from "../../src/status/app.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { serve } from "../../src/status/serve.ts";
import { ROOT } from "../support/netns.ts";

const ARTIFACTS = join(ROOT, "tests", "artifacts");
let browser: Browser;
beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => { await browser?.close(); });

const peer = (i: number): Lease => ({
  subnet: parseIPv4Net(`10.5.${i}.0/24`), expiration: 0,
  attrs: { publicIP: parseIPv4(`192.168.77.${10 + i}`), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: `7a:1f:00:00:00:0${i}` } },
});
const since = new Date(Date.now() - 42_000).toISOString();
const HEALTH: Record<number, unknown> = {
  2: { state: "up", since, overlayAddr: "10.5.2.0", rttMs: { last: 0.31, p50: 0.29 }, mtuOk: true, probes: 40, failures: 0, cause: null },
  3: { state: "down", since, overlayAddr: "10.5.3.0", rttMs: { last: 0.4, p50: 0.4 }, mtuOk: true, probes: 40, failures: 6, cause: "the peer's agent answers on the underlay (192.168.77.13:8473) but not through the overlay: UDP 8472 (vxlan; the Backend's Port if set) is dropped between the hosts, or the peer's FORWARD chain drops it" },
  4: { state: "up", since, overlayAddr: "10.5.4.0", rttMs: { last: 1.9, p50: 2.1 }, mtuOk: false, probes: 40, failures: 3, cause: null },
  5: { state: "unknown", since, overlayAddr: "10.5.5.0", rttMs: { last: null, p50: null }, mtuOk: null, probes: 1, failures: 0, cause: null },
  6: { state: "up", since, overlayAddr: "10.5.6.0", rttMs: { last: 0.12, p50: 0.15 }, mtuOk: true, probes: 40, failures: 0, cause: null },
};

const MATRIX = {
  hosts: [1, 2, 3, 4, 5, 6].map((i) => `10.5.${i}.0/24`),
  rows: ["-udm?u", "u-duuu", "dd-ddd", "mud-uu", "....-.", "uudu?-"],
};

function view(probed: boolean): AgentView {
  return {
    ready: true, config: parseNetworkConfig(`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`), backendType: "vxlan", publicIP: "192.168.77.11",
    lease: { key: "10.5.1.0-24", subnet: parseIPv4Net("10.5.1.0/24"), expiration: null, attrs: { publicIP: parseIPv4("192.168.77.11"), backendType: "vxlan" } },
    peers: new Map([2, 3, 4, 5, 6].map((i) => [`10.5.${i}.0-24`, peer(i)])),
    metrics: new Metrics(),
    ...(probed ? { health: { peerJSON: (l: Lease) => HEALTH[(l.subnet!.ip >> 8) & 0xff] ?? null, summary: () => ({ up: 3, down: 1, unknown: 1, matrix: MATRIX }) } } : {}),
  };
}

test("the mesh view: unreachable first with its cause, then the MTU black hole, the unanswered, the reachable by RTT", async () => {
  const server = await serve(createStatusApp(view(true)).fetch, "127.0.0.1", 0);
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(e.message));
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForFunction(() => document.querySelectorAll("#mesh li").length === 5, null, { timeout: 10_000 });
    const tiles = await page.$$eval("#mesh li", (lis) => lis.map((li) => [li.className, ...Array.from(li.children).map((c) => c.textContent)]));
    expect(tiles[0]![2]).toMatch(/^unreachable for \d+ s$/);
    tiles[0]![2] = "(time)";
    expect(tiles).toEqual([
      ["down", "10.5.3.0/24", "(time)", HEALTH[3] && (HEALTH[3] as { cause: string }).cause],
      ["mtu", "10.5.4.0/24", "MTU black hole · 2.10 ms", "full-size packets lost"],
      ["unknown", "10.5.5.0/24", "no answer yet", "192.168.77.15"],
      ["up", "10.5.6.0/24", "reachable · 0.15 ms", "192.168.77.16"],
      ["up", "10.5.2.0/24", "reachable · 0.29 ms", "192.168.77.12"],
    ]);
    expect(await page.textContent("#mesh-count")).toBe("5 peers · 1 unreachable");
    await page.waitForSelector("#matrix-section:not([hidden])", { timeout: 10_000 });
    const cells = await page.$$eval("#matrix tbody tr", (trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.className).join(" ")));
    expect(cells[0]).toBe("n u d m q u"); // this host's row: itself, then each peer
    expect(cells[2]).toBe("d d n d d d"); // the host everyone else cannot reach (and that reaches no one)
    expect(await page.$eval("#matrix tbody tr.self th", (th) => th.textContent)).toBe("10.5.1.0/24");
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-mesh.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  } finally {
    await server.close();
  }
}, 30_000);

test("without probes (--health-port 0) the mesh section stays hidden", async () => {
  const server = await serve(createStatusApp(view(false)).fetch, "127.0.0.1", 0);
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.waitForFunction(() => document.querySelectorAll("#hosts tbody tr").length === 6, null, { timeout: 10_000 });
    expect(await page.isHidden("#mesh-section")).toBe(true);
    await page.close();
  } finally {
    await server.close();
  }
}, 30_000);
