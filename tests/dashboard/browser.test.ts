/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core):
 * 1. against real agents: a cluster of three hosts in network namespaces (tests/support/netns.ts,
 *    vxlan, one container each, a real etcd in the underlay), the page of host 1 opened through a
 *    forwarder into its namespace while its container pings host 2's. A fourth host joins, etcd
 *    stops and restarts, the agent stops and restarts: the page follows without a reload.
 * 2. against an in-process status app whose view describes a vxlan-like data path (routes,
 *    growing counters), for the data-path rendering and rates, in light and dark.
 * 3. the page as Deno builds it, under its own CSP, with /status answered by the test.
 * Screenshots go to tests/artifacts/ (gitignored).
 *
 * WEFT_DASHBOARD_RUNTIME=bun|deno runs the agents from the sources instead of dist/weft.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { parseNetworkConfig } from "../../src/config/network.ts";
import type { Lease } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv4Net } from "../../src/net/ip.ts";
import { type AgentView, createStatusApp } from "../../src/status/app.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { serve } from "../../src/status/serve.ts";
import { forwardIntoNetns } from "../../tools/netns_forward.ts";
import { denoDashboardPage } from "./deno_page.ts";
import { Cluster, type Host, type Pinger, ROOT, type Runtime, STATUS_PORT, startPinger } from "../support/netns.ts";

const ARTIFACTS = join(ROOT, "tests", "artifacts");
const RUNTIME = (process.env.WEFT_DASHBOARD_RUNTIME ?? "binary") as Runtime;
const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

let browser: Browser;

beforeAll(async () => {
  if (RUNTIME === "binary") {
    const sources = join(ROOT, "src", "status", "dashboard");
    const newest = Math.max(...readdirSync(sources).map((f) => statSync(join(sources, f)).mtimeMs));
    if (statSync(join(ROOT, "dist", "weft")).mtimeMs < newest) throw new Error("dist/weft is older than src/status/dashboard/: run 'bun tools/build.ts --no-wasm'");
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
});

/** A page that fails the test on any script error or CSP violation. */
async function open(url: string, colorScheme: "light" | "dark" = "light"): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, colorScheme });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error" && !/Failed to load resource|ERR_CONNECTION|ERR_EMPTY_RESPONSE/.test(m.text())) problems.push(`console: ${m.text()}`); });
  const r = await page.goto(url);
  if (r?.status() !== 200) throw new Error(`GET ${url}: HTTP ${r?.status()} (is dist/weft older than the dashboard? run 'bun tools/build.ts --no-wasm')`);
  return { page, problems };
}

const hostIPs = (page: Page) => page.$$eval("#hosts tbody tr", (rows) => rows.map((r) => (r as HTMLElement).dataset.publicIp!));
const waitRows = (page: Page, n: number, timeout = 10_000) =>
  page.waitForFunction((n) => document.querySelectorAll("#hosts tbody tr").length === n, n, { timeout, polling: 50 });
const routes = (page: Page) => page.$$eval("[data-key=routes] tbody tr", (rows) => rows.map((r) => r.firstElementChild!.textContent!));
/** The rate a counter card shows, as a number (its unit aside). */
const rate = async (page: Page, counter: string) => Number.parseFloat((await page.textContent(`[data-counter=${counter}] .big`))!.replace(/,/g, ""));
const visible = (page: Page, selector: string, timeout = 10_000) => page.waitForSelector(selector, { state: "visible", timeout });
const gone = (page: Page, selector: string, timeout = 10_000) => page.waitForSelector(selector, { state: "detached", timeout });

describe("the dashboard of a real cluster", () => {
  let c: Cluster;
  let h1: Host;
  let pinger: Pinger | undefined;

  beforeAll(async () => {
    // The agent learns that etcd is back from the lease watch's next response; with no lease
    // changing, that is its periodic re-list, made short here (WEFT_RESYNC_MS).
    c = await Cluster.create({
      hosts: 3, backend: "vxlan", network: "10.5.0.0/16", containersPerHost: 1, runtime: RUNTIME,
      agentEnv: { WEFT_RESYNC_MS: "2000" },
    });
    h1 = c.hosts[0]!;
    h1.forward = await forwardIntoNetns(h1.ns, h1.ip, STATUS_PORT); // closed by c.destroy()
  }, 60_000);

  afterAll(async () => {
    await pinger?.stop().catch(() => {});
    await c?.destroy();
  }, 30_000);

  test("lists every host, follows a join, etcd and the agent going away and coming back", async () => {
    const { page, problems } = await open(`${h1.forward!.url}/`);
    await page.evaluate(() => { (window as unknown as { loadedOnce: boolean }).loadedOnce = true; });

    // 1. The three hosts, this one marked; its routes to the other two; its traffic.
    await waitRows(page, 3);
    expect((await hostIPs(page)).sort()).toEqual(c.hosts.map((h) => h.ip).sort());
    expect(await page.$eval("#hosts tr.self", (r) => (r as HTMLElement).dataset.publicIp)).toBe(h1.ip);
    expect(await page.$eval("#hosts tr.self th", (th) => th.textContent)).toContain("this host");
    expect(await page.$eval("#hosts tr.self td.data", (td) => td.textContent)).toMatch(/^VNI 1 · VtepMAC ([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(await page.textContent("#s-network")).toBe("10.5.0.0/16");
    expect(await page.textContent("#s-subnet")).toBe(h1.subnet);
    expect(await page.textContent("#s-backend")).toBe("vxlan");
    expect(await page.textContent("#s-etcd")).toBe("connected");
    expect(await page.textContent("#s-lease")).toMatch(/^in 23 h/);
    const peerSubnets = (hosts: Host[]) => hosts.filter((h) => h !== h1).map((h) => h.subnet).sort();
    await page.waitForFunction(() => document.querySelectorAll("[data-key=routes] tbody tr").length === 2, null, { timeout: 10_000 });
    expect((await routes(page)).sort()).toEqual(peerSubnets(c.hosts));
    pinger = startPinger(h1.containers[0]!.ns, [c.hosts[1]!.containers[0]!.ip], 10);
    // Both rates ramp up over the page's first polls after the pinger starts: wait for both.
    await page.waitForFunction(() => ["txPackets", "rxPackets"].every((k) => Number.parseFloat(document.querySelector(`[data-counter=${k}] .big`)?.textContent ?? "") > 40), null, { timeout: 10_000 });
    expect(await rate(page, "rxPackets")).toBeGreaterThan(40); // ~100 echo requests out, replies in, per second
    expect(await page.textContent("[data-counter=txBytes] .big")).toMatch(/ kbit\/s$/);

    // 2. A fourth host joins: shown without a reload.
    const h4 = await c.addHost({ containers: 0 });
    const joined = performance.now();
    await waitRows(page, 4);
    const joinMs = performance.now() - joined;
    expect(await hostIPs(page)).toContain(h4.ip);
    expect(await page.$$eval("#hosts tr.added", (rows) => rows.map((r) => (r as HTMLElement).dataset.publicIp))).toEqual([h4.ip]);
    await page.waitForFunction(() => document.querySelectorAll("[data-key=routes] tbody tr").length === 3, null, { timeout: 10_000 });
    expect((await routes(page)).sort()).toEqual(peerSubnets(c.hosts));

    // 3. etcd stops: the error banner; it restarts: the banner goes.
    await c.etcd.stop();
    const stopped = performance.now();
    const banner = await visible(page, "#banner-etcd", 20_000);
    const etcdDownMs = performance.now() - stopped;
    expect(await banner.getAttribute("role")).toBe("alert");
    expect(await banner.textContent()).toContain("etcd is unreachable.");
    expect(await page.textContent("#s-etcd")).toBe("unreachable");
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-etcd-down.png"), fullPage: true });
    await c.etcd.restart();
    const restarted = performance.now();
    await gone(page, "#banner-etcd", 20_000);
    const etcdUpMs = performance.now() - restarted;
    expect(await page.textContent("#s-etcd")).toBe("connected");

    // 4. The agent itself stops: the page says so and keeps the last state; it comes back.
    await c.stopAgent(h1);
    const agentStopped = performance.now();
    const agentBanner = await visible(page, "#banner-agent", 10_000);
    const agentDownMs = performance.now() - agentStopped;
    expect(await agentBanner.textContent()).toContain("The agent is not answering.");
    expect(await page.textContent("#live-text")).toBe("Offline");
    expect(await page.$$eval("#hosts tbody tr", (rows) => rows.length)).toBe(4);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-agent-down.png"), fullPage: true });
    await c.startAgent(h1);
    await gone(page, "#banner-agent", 10_000);
    await waitRows(page, 4);
    expect(await page.$$("#hosts tr.added")).toEqual([]); // the restarted agent's peers are not joins
    // Every lease's expiry known (the agent looks peers' TTLs up in etcd), rates flowing again.
    await page.waitForFunction(() => [...document.querySelectorAll("#hosts td.expiry")].every((td) => td.textContent!.startsWith("in 23 h")), null, { timeout: 10_000 });
    await page.waitForFunction(() => Number.parseFloat(document.querySelector("[data-counter=txPackets] .big")?.textContent ?? "") >= 40, null, { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    const { byTarget } = await pinger.stop();
    pinger = undefined;
    expect([...byTarget.values()][0]!.received).toBeGreaterThan(0);

    expect(await page.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true); // never reloaded
    expect(problems).toEqual([]);
    console.log(`dashboard: join shown after ${joinMs.toFixed(0)} ms; etcd down shown after ${etcdDownMs.toFixed(0)} ms, cleared ${etcdUpMs.toFixed(0)} ms after restart; agent down shown after ${agentDownMs.toFixed(0)} ms`);
    await page.close();
  }, 90_000);

  test("at 800 and 1400 px: no sideways scroll, addresses and CIDRs on one line, peers' expiry known, device drops explained", async () => {
    for (const width of [800, 1400]) {
      const page = await browser.newPage({ viewport: { width, height: 900 } });
      await page.goto(`${h1.forward!.url}/`);
      await page.waitForFunction(() => document.querySelectorAll("#hosts tbody tr").length >= 3, null, { timeout: 10_000, polling: 50 });
      // Other hosts' etcd lease expiry is fetched once per lease, then shown ("in 23 h …").
      await page.waitForFunction(() => [...document.querySelectorAll("#hosts tbody tr:not(.self) td.expiry")].every((td) => /^in \d/.test(td.textContent ?? "")), null, { timeout: 10_000, polling: 100 });
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-${width}.png`), fullPage: true });
      const layout = await page.evaluate(() => {
        const wrap = document.querySelector("#hosts")!.closest(".table-wrap") as HTMLElement;
        const lines = (e: Element) => { const r = document.createRange(); r.selectNodeContents(e); return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size; };
        return {
          page: document.documentElement.scrollWidth - window.innerWidth,
          table: wrap.scrollWidth - wrap.clientWidth,
          wrapped: [...document.querySelectorAll(".cidr")].filter((e) => (e.textContent ?? "") !== "" && (e as HTMLElement).offsetParent !== null && lines(e) > 1).map((e) => e.textContent),
          dropNotes: [...document.querySelectorAll("[data-counter] ")].filter((c) => /dropped/i.test((c as HTMLElement).dataset.counter ?? "")).map((c) => [c.getAttribute("title") ?? "", c.querySelector(".note")?.textContent ?? ""]),
        };
      });
      expect([width, layout.page, layout.table, layout.wrapped]).toEqual([width, 0, 0, []]);
      expect(layout.dropNotes.length).toBeGreaterThan(0);
      for (const [title, note] of layout.dropNotes) expect([title, note]).toEqual([expect.stringContaining("IPv6 router and neighbour solicitations"), expect.stringContaining("kernel drops")]);
      await page.close();
    }
  }, 60_000);
});

describe("the data path as a vxlan backend describes it", () => {
  const peer = (i: number): Lease => ({
    subnet: parseIPv4Net(`10.5.${i}.0/24`), expiration: 0, etcdLease: String(i),
    attrs: { publicIP: parseIPv4(`192.168.77.${10 + i}`), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: `7a:1f:00:00:00:0${i}` } },
  });
  let rx = 1e9, tx = 5e8;
  // Relative to each /status (not to module load): the describe bodies run before the first
  // test, which takes a minute or more on a loaded machine.
  const peerExpiry = () => Date.now() + 2.5 * 3600_000 - 1000;
  const view: AgentView = {
    ready: true,
    config: parseNetworkConfig(`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`),
    backendType: "vxlan",
    publicIP: "192.168.77.11",
    lease: {
      key: "10.5.1.0-24", subnet: parseIPv4Net("10.5.1.0/24"), etcdLease: "1", expiration: Date.now() + 23.5 * 3600_000,
      attrs: { publicIP: parseIPv4("192.168.77.11"), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: "7a:1f:00:00:00:01" } },
    },
    peers: new Map([2, 3].map((i) => [`10.5.${i}.0-24`, peer(i)])),
    metrics: new Metrics(),
    peerExpiration: (l) => (l.subnet!.ip & 0xff00) === 0x300 ? null : peerExpiry(),
    async dataPath() {
      rx += 1_250_000; // 10 Mbit per poll
      tx += 125_000;
      return {
        device: "flannel.1", mtu: 1450, vni: 1, mac: "7a:1f:00:00:00:01",
        routes: [2, 3].map((i) => ({ dst: `10.5.${i}.0/24`, via: `10.5.${i}.0`, dev: "flannel.1" })),
        counters: { rxBytes: rx, txBytes: tx, rxPackets: rx / 1000, txPackets: tx / 1000 },
      };
    },
  };

  test("routes, device facts and counters with rates; peers' expiry and reservations", async () => {
    const server = await serve(createStatusApp(view).fetch, "127.0.0.1", 0);
    try {
      for (const scheme of ["light", "dark"] as const) {
        const { page, problems } = await open(`http://127.0.0.1:${server.port}/`, scheme);
        await waitRows(page, 3);
        await page.waitForFunction(() => document.querySelectorAll(".spark polyline[points*=' ']").length === 4, null, { timeout: 10_000 });
        expect(await page.$$eval(".data-table tbody tr", (rows) => rows.map((r) => r.textContent))).toEqual(["10.5.2.0/2410.5.2.0flannel.1", "10.5.3.0/2410.5.3.0flannel.1"]);
        expect(await page.$$eval(".facts dt", (dts) => dts.map((d) => d.textContent))).toEqual(["Device", "MTU", "VNI", "MAC"]);
        expect(await page.$$eval(".counter h3", (hs) => hs.map((h) => h.textContent))).toEqual(["RX bytes", "TX bytes", "RX packets", "TX packets"]);
        const rate = await page.textContent("[data-counter=rxBytes] .big");
        expect(rate).toMatch(/^\d+(\.\d)? Mbit\/s$/); // 10 Mbit per ~1 s poll
        expect(await page.$$eval("#hosts td.expiry", (tds) => tds.map((t) => t.textContent))).toEqual(["in 23 h", "in 2 h 29 min", "reservation"]);
        expect(await page.$eval("#hosts tr.self td.data", (td) => td.textContent)).toBe("VNI 1 · VtepMAC 7a:1f:00:00:00:01");
        await page.screenshot({ path: join(ARTIFACTS, `dashboard-vxlan-${scheme}.png`), fullPage: true });
        expect(problems).toEqual([]);
        await page.close();
      }
    } finally {
      await server.close();
    }
  }, 30_000);
});

test("the page as Deno builds it runs in the browser under its CSP", async () => {
  const { headers, html } = denoDashboardPage();
  const origin = "http://127.0.0.1:9"; // never contacted: every request is answered below
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  const status = {
    ready: true, network: "10.5.0.0/16", ipv6Network: null, subnetLen: 24, backend: "alloc", publicIP: "192.168.77.10",
    lease: { key: "10.5.7.0-24", subnet: "10.5.7.0/24", ipv6Subnet: null, publicIP: "192.168.77.10", publicIPv6: null, backendType: "alloc", backendData: null, expiration: "never", reservation: true },
    etcd: { ok: false, error: "etcd watch disconnected" }, peers: [], dataPath: {},
  };
  await page.route(`${origin}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === "/") return route.fulfill({ status: 200, headers, body: html });
    if (path === "/status") return route.fulfill({ status: 200, contentType: "application/json", body: JSON.stringify(status) });
    return route.fulfill({ status: 204 });
  });
  await page.goto(`${origin}/`);
  await waitRows(page, 1);
  expect(await page.textContent("#s-lease")).toBe("reservation");
  expect(await page.textContent("#banner-etcd .detail")).toBe("etcd watch disconnected");
  expect(await page.textContent("#datapath")).toBe("The alloc backend programs no routes or devices on this host.");
  expect(problems).toEqual([]);
  await page.close();
});
