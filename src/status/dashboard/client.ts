/**
 * @module The dashboard's browser code. It polls `/status` and renders the overlay: every host
 * with its subnet, public IP, backend and lease expiry, this host's data path (generic: scalars,
 * tables, counters with client-side rates) and banners when etcd or the agent itself is down.
 *
 * It never runs in the agent: page.ts ships `dashboardClient.toString()` inside the page, so the
 * function body must be self-contained (no imports, no module-level values; type declarations
 * are fine, they are erased). Written as TypeScript so `tsc` checks it against the DOM types.
 */

/** One lease as `/status` reports it (src/status/app.ts). */
interface LeaseJSON {
  key: string;
  subnet: string | null;
  ipv6Subnet: string | null;
  publicIP: string;
  publicIPv6: string | null;
  backendType: string;
  backendData: unknown;
  backendV6Data?: unknown;
  /** ISO time, "never" (a reservation), or null while unknown. */
  expiration: string | null;
  reservation?: boolean;
  /** Overlay probe results (src/health/prober.ts), null when not probed. */
  health?: PeerHealthJSON | null;
}

/** One peer's probe results as `/status` reports them. */
interface PeerHealthJSON {
  state: "unknown" | "up" | "down";
  since: string;
  overlayAddr: string;
  rttMs: { last: number | null; p50: number | null };
  mtuOk: boolean | null;
  cause: string | null;
}

/** The lease watch as `/status` reports it (times ISO). */
interface WatchJSON {
  healthy: boolean;
  since: string;
  error: string | null;
  endpoint: string | null;
  lastResponseAgeSeconds: number | null;
}

/** The `/status` document. */
interface StatusJSON {
  ready: boolean;
  lease: LeaseJSON | null;
  network: string | null;
  ipv6Network: string | null;
  subnetLen: number | null;
  ipv6SubnetLen?: number | null;
  backend: string | null;
  publicIP: string | null;
  publicIPv6?: string | null;
  etcd: { ok: boolean; error: string | null; watch?: WatchJSON | null };
  /** "etcd" or "kube": where the leases come from (the etcd card and banner name it). */
  source?: string;
  peers: LeaseJSON[];
  /** The prober's totals and, in small etcd-mode clusters, the whole-cluster matrix. */
  health?: { matrix?: { hosts: string[]; rows: string[] } | null } | null;
  dataPath: Record<string, unknown> | null;
}

/** Polls `status` (relative to the page) every `pollMs` and keeps the page in step with it. */
export function dashboardClient(pollMs: number): void {
  const TIMEOUT_MS = Math.max(2000, pollMs * 2.5);
  const HISTORY = 60; // samples kept per counter for the sparklines
  const byId = (id: string) => document.getElementById(id) as HTMLElement;

  // ---------------------------------------------------------------- DOM helpers
  function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function setText(node: Element, text: string): void {
    if (node.textContent !== text) node.textContent = text;
  }
  function setTitle(node: HTMLElement, title: string): void {
    if (title) node.title = title;
    else node.removeAttribute("title");
  }

  // ---------------------------------------------------------------- formatting
  /** "in 23 h", "in 4 min", "12 s ago". */
  function relative(ms: number): string {
    const s = Math.floor(Math.abs(ms) / 1000);
    let v: string;
    if (s < 60) v = s + " s";
    else if (s < 3600) v = Math.floor(s / 60) + " min";
    else if (s < 48 * 3600) {
      const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
      v = h + " h" + (h < 10 && m > 0 ? " " + m + " min" : "");
    } else v = Math.floor(s / 86400) + " d";
    return ms >= 0 ? "in " + v : v + " ago";
  }
  function clock(t: number): string {
    return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }
  function date(t: number): string {
    return new Date(t).toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
  }
  function scaled(n: number, units: string[], base: number, digits = 1): string {
    let i = 0;
    while (Math.abs(n) >= base && i < units.length - 1) { n /= base; i++; }
    return (i === 0 ? Math.round(n).toString() : n.toFixed(n < 10 ? digits : 0)) + " " + units[i];
  }
  const bytes = (n: number) => scaled(n, ["B", "KiB", "MiB", "GiB", "TiB"], 1024);
  const bits = (bytesPerSec: number) => scaled(bytesPerSec * 8, ["bit/s", "kbit/s", "Mbit/s", "Gbit/s"], 1000);
  const count = (n: number) => Math.round(n).toLocaleString("en-US");
  /** "rxBytes" → "RX bytes", "vtepMAC" → "Vtep MAC". */
  function label(key: string): string {
    const words = key.replace(/[_-]+/g, " ").replace(/([a-z0-9])([A-Z])/g, "$1 $2").trim().split(/\s+/);
    return words.map((w, i) => {
      if (/^(rx|tx|ip|mtu|vni|mac|dst|dev|id)$/i.test(w)) return w.toUpperCase();
      return i === 0 ? w.charAt(0).toUpperCase() + w.slice(1) : w === w.toUpperCase() ? w : w.toLowerCase();
    }).join(" ");
  }
  function scalar(v: unknown): string {
    if (v === null || v === undefined || v === "") return "—";
    if (Array.isArray(v) && v.every(isScalar)) return v.length ? v.join(", ") : "—";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  const ISO_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;
  /** A value cell; ISO times read as relative ("3 s ago") and keep the time in their title. */
  function value(tag: "dd" | "td", v: unknown): HTMLElement {
    const cell = el(tag, "mono", scalar(v));
    if (typeof v === "string" && ISO_TIME.test(v)) {
      cell.dataset.time = String(Date.parse(v));
      cell.title = v;
    }
    return cell;
  }
  /** Refreshes every relative time in the data path (they move on between rebuilds). */
  function tickTimes(now: number): void {
    for (const cell of document.querySelectorAll<HTMLElement>("[data-time]")) setText(cell, relative(Number(cell.dataset.time) - now));
  }
  const isScalar = (v: unknown) => v === null || typeof v !== "object";
  const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  /** Sorts subnets numerically by their address ("10.5.10.0/24" after "10.5.9.0/24"). */
  function subnetOrder(s: string | null): number {
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)/.exec(s ?? "");
    return m ? ((+m[1]! << 24) >>> 0) + (+m[2]! << 16) + (+m[3]! << 8) + +m[4]! : Number.MAX_SAFE_INTEGER;
  }
  function expiry(l: LeaseJSON, own: boolean, now: number): { text: string; title: string; cls: string } {
    if ((own && l.reservation) || l.expiration === "never") return { text: "reservation", title: "Reserved: this lease never expires", cls: "reserved" };
    if (!l.expiration) return { text: "—", title: "Expiry not known yet", cls: "" };
    const t = Date.parse(l.expiration);
    const left = t - now;
    return { text: (left < 0 ? "expired " : "") + relative(left), title: date(t), cls: left < 0 ? "expired" : left < 5 * 60_000 ? "soon" : "" };
  }

  // ---------------------------------------------------------------- banners
  /** Shows (or updates) banner `id`: a title, what it means, and the raw error if any. */
  function banner(id: string, kind: "error" | "warn" | "info", title: string, text: string, error = ""): void {
    let b = document.getElementById("banner-" + id);
    if (!b) {
      b = el("div", "banner " + kind);
      b.id = "banner-" + id;
      b.setAttribute("role", kind === "info" ? "status" : "alert");
      b.append(el("strong"), el("span"), el("code", "detail"));
      byId("banners").append(b);
    }
    setText(b.children[0]!, title);
    setText(b.children[1]!, text);
    setText(b.children[2]!, error);
  }
  function clearBanner(id: string): void {
    document.getElementById("banner-" + id)?.remove();
  }

  // ---------------------------------------------------------------- hosts
  const rows = new Map<string, HTMLTableRowElement>();
  /**
   * Rows are highlighted as joins except in the first answer and for a few seconds after the
   * agent comes back (it lists its peers anew while its lease watch starts: not news).
   */
  let firstRender = true;
  let quietUntil = 0;

  function backendDataText(d: unknown): string {
    if (d === null || d === undefined) return "—";
    if (!isRecord(d)) return scalar(d);
    const parts = Object.entries(d).map(([k, v]) => k + " " + scalar(v));
    return parts.length ? parts.join(" · ") : "—";
  }

  function makeRow(): HTMLTableRowElement {
    const tr = el("tr");
    const host = el("th");
    host.scope = "row";
    host.append(el("span", "mono ip cidr"), el("span", "badge self-badge", "this host"), el("div", "mono sub v6 cidr"));
    const subnet = el("td");
    subnet.append(el("span", "mono cidr"), el("div", "mono sub v6 cidr"));
    const backend = el("td", "backend");
    backend.append(el("span", "pill"));
    tr.append(host, subnet, backend, el("td", "mono data"), el("td", "expiry"));
    return tr;
  }

  function fillRow(tr: HTMLTableRowElement, l: LeaseJSON, own: boolean, now: number): void {
    tr.dataset.key = l.key;
    tr.dataset.publicIp = l.publicIP;
    tr.classList.toggle("self", own);
    if (own) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
    const [host, subnet, backend, data, exp] = Array.from(tr.cells);
    // An IPv6-only lease (PublicIP 0.0.0.0, no IPv4 subnet) shows its IPv6 values in the first line.
    const v6only = !l.subnet && l.ipv6Subnet !== null;
    setText(host!.children[0]!, v6only ? l.publicIPv6 ?? l.publicIP : l.publicIP);
    setText(host!.children[2]!, v6only ? "" : l.publicIPv6 ?? "");
    setText(subnet!.children[0]!, l.subnet ?? l.ipv6Subnet ?? "—");
    setText(subnet!.children[1]!, v6only ? "" : l.ipv6Subnet ?? "");
    setText(backend!.children[0]!, l.backendType);
    const dataText = [l.backendData, l.backendV6Data].filter((d) => d !== null && d !== undefined).map(backendDataText).join(" · ") || backendDataText(l.backendData);
    setText(data!, dataText);
    setTitle(data!, dataText === "—" ? "" : dataText);
    const e = expiry(l, own, now);
    setText(exp!, e.text);
    setTitle(exp!, e.title);
    exp!.className = "expiry " + e.cls;
  }

  function renderHosts(s: StatusJSON, now: number): void {
    const hosts = s.peers.map((l) => ({ l, own: false }));
    if (s.lease) hosts.push({ l: s.lease, own: true });
    hosts.sort((a, b) => subnetOrder(a.l.subnet) - subnetOrder(b.l.subnet) || a.l.key.localeCompare(b.l.key));
    const tbody = (byId("hosts") as HTMLTableElement).tBodies[0]!;
    const seen = new Set<string>();
    const news = !firstRender && rows.size > 0 && now >= quietUntil; // hosts appearing then are joins
    hosts.forEach((h, i) => {
      seen.add(h.l.key);
      let tr = rows.get(h.l.key);
      if (!tr) {
        tr = makeRow();
        rows.set(h.l.key, tr);
        if (news) {
          const added = tr;
          added.classList.add("added");
          setTimeout(() => added.classList.remove("added"), 4000);
        }
      }
      fillRow(tr, h.l, h.own, now);
      if (tbody.rows[i] !== tr) tbody.insertBefore(tr, tbody.rows[i] ?? null);
    });
    for (const [key, tr] of rows) {
      if (!seen.has(key)) { tr.remove(); rows.delete(key); }
    }
    byId("hosts-empty").hidden = hosts.length > 0;
    setText(byId("hosts-count"), hosts.length === 1 ? "1 host" : hosts.length + " hosts");
    firstRender = false;
  }

  // ---------------------------------------------------------------- mesh
  const tiles = new Map<string, HTMLLIElement>();
  /** Rank: unreachable, MTU black hole, not yet answered, reachable; then by RTT. */
  function meshRank(h: PeerHealthJSON): number {
    return h.state === "down" ? 0 : h.mtuOk === false ? 1 : h.state === "unknown" ? 2 : 3;
  }

  function renderMesh(s: StatusJSON, now: number): void {
    const probed = s.peers.filter((l) => l.health).map((l) => ({ l, h: l.health! }));
    byId("mesh-section").hidden = probed.length === 0;
    probed.sort((a, b) => meshRank(a.h) - meshRank(b.h) || (a.h.rttMs.p50 ?? Infinity) - (b.h.rttMs.p50 ?? Infinity) || subnetOrder(a.l.subnet) - subnetOrder(b.l.subnet));
    const list = byId("mesh");
    const seen = new Set<string>();
    probed.forEach(({ l, h }, i) => {
      seen.add(l.key);
      let li = tiles.get(l.key);
      if (!li) {
        li = el("li");
        li.append(el("span", "peer"), el("span", "state"), el("span", "cause"));
        tiles.set(l.key, li);
      }
      const mtuBad = h.state === "up" && h.mtuOk === false;
      li.className = mtuBad ? "mtu" : h.state;
      li.dataset.key = l.key;
      const rtt = h.rttMs.p50 === null ? "" : " · " + (h.rttMs.p50 < 10 ? h.rttMs.p50.toFixed(2) : Math.round(h.rttMs.p50)) + " ms";
      const state = h.state === "down" ? "unreachable for " + relative(Date.parse(h.since) - now).replace(" ago", "")
        : h.state === "unknown" ? "no answer yet" : mtuBad ? "MTU black hole" + rtt : "reachable" + rtt;
      setText(li.children[0]!, l.subnet ?? l.key);
      setText(li.children[1]!, state);
      setText(li.children[2]!, h.state === "down" ? (h.cause ?? "diagnosing…") : mtuBad ? "full-size packets lost" : l.publicIP);
      setTitle(li, l.publicIP + " via " + h.overlayAddr + (h.cause ? " — " + h.cause : ""));
      if (list.children[i] !== li) list.insertBefore(li, list.children[i] ?? null);
    });
    for (const [key, li] of tiles) if (!seen.has(key)) { li.remove(); tiles.delete(key); }
    const down = probed.filter((p) => p.h.state === "down").length;
    setText(byId("mesh-count"), probed.length + " peers" + (down ? " · " + down + " unreachable" : ""));
  }

  /** The whole-cluster matrix: rows probe, columns are probed; rebuilt only when it changed. */
  let matrixShown = "";
  function renderMatrix(s: StatusJSON): void {
    const m = s.health?.matrix;
    byId("matrix-section").hidden = !m || m.hosts.length < 2;
    if (!m || m.hosts.length < 2) return;
    const key = JSON.stringify(m) + (s.lease?.subnet ?? "");
    if (key === matrixShown) return;
    matrixShown = key;
    const table = byId("matrix") as HTMLTableElement;
    const head = el("tr");
    head.append(el("td"));
    for (const h of m.hosts) head.append(Object.assign(el("th", "", h), { scope: "col" }));
    table.tHead!.replaceChildren(head);
    const CELL: Record<string, [string, string, string]> = {
      u: ["u", "✓", "reachable"], d: ["d", "✗", "unreachable"], m: ["m", "M", "MTU black hole"], "?": ["q", "?", "no answer yet"],
      ".": ["n", "·", "no recent summary"], "-": ["n", "", "itself"],
    };
    const rowsOut = m.hosts.map((from, i) => {
      const tr = el("tr", from === s.lease?.subnet ? "self" : "");
      tr.append(Object.assign(el("th", "", from), { scope: "row" }));
      Array.from(m.rows[i] ?? "").forEach((c, j) => {
        const [cls, text, word] = CELL[c] ?? CELL["."]!;
        const td = el("td", cls, text);
        td.title = from + " → " + m.hosts[j] + ": " + word;
        tr.append(td);
      });
      return tr;
    });
    table.tBodies[0]!.replaceChildren(...rowsOut);
  }

  // ---------------------------------------------------------------- data path
  interface Counter { card: HTMLElement; rate: HTMLElement; total: HTMLElement; area: SVGPolygonElement; line: SVGPolylineElement; history: number[] }
  const counters = new Map<string, Counter>();
  let previous: { t: number; values: Map<string, number> } | undefined;
  let detailsJSON = "";

  /** The counters object of a data path: `counters`, else the first all-numeric object. */
  function findCounters(dp: Record<string, unknown>): [string, Record<string, number>] | undefined {
    const numeric = (v: unknown): v is Record<string, number> =>
      isRecord(v) && Object.keys(v).length > 0 && Object.values(v).every((x) => typeof x === "number");
    if (numeric(dp.counters)) return ["counters", dp.counters];
    for (const [k, v] of Object.entries(dp)) if (numeric(v)) return [k, v];
    return undefined;
  }

  function makeCounter(key: string): Counter {
    const card = el("div", "card counter");
    card.dataset.counter = key;
    const rate = el("p", "big mono", "—");
    const total = el("p", "muted");
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 " + (HISTORY - 1) + " 20");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "spark");
    svg.setAttribute("aria-hidden", "true");
    const base = document.createElementNS(NS, "line");
    base.setAttribute("x1", "0");
    base.setAttribute("x2", String(HISTORY - 1));
    base.setAttribute("y1", "19.5");
    base.setAttribute("y2", "19.5");
    const area = document.createElementNS(NS, "polygon");
    const line = document.createElementNS(NS, "polyline");
    svg.append(base, area, line);
    card.append(el("h3", "", label(key)), rate, total, svg);
    if (/dropped/i.test(key)) {
      // Not overlay loss by itself: the kernel counts here what the device could not send or
      // deliver, which includes the few IPv6 solicitations a new device sends before it has
      // any route. Only a count that keeps growing with traffic means packets are lost.
      const why = "Dropped by the kernel on this device. A new device drops a few IPv6 router and neighbour solicitations it sends before it has routes; only a count that keeps growing with traffic means lost packets.";
      card.title = why;
      card.append(el("p", "muted note", "kernel drops on the device; a few at start are normal"));
    }
    return { card, rate, total, area, line, history: [] };
  }

  function renderCounters(values: Record<string, number> | undefined, t: number): void {
    const box = byId("traffic");
    const now = new Map(Object.entries(values ?? {}));
    box.hidden = now.size === 0;
    for (const [key, c] of counters) {
      if (!now.has(key)) { c.card.remove(); counters.delete(key); }
    }
    const dt = previous ? (t - previous.t) / 1000 : 0;
    for (const [key, v] of now) {
      let c = counters.get(key);
      if (!c) { c = makeCounter(key); counters.set(key, c); box.append(c.card); }
      const isBytes = /bytes/i.test(key);
      const before = previous?.values.get(key);
      const perSec = before !== undefined && dt > 0.2 && v >= before ? (v - before) / dt : undefined;
      if (perSec !== undefined) {
        c.history.push(perSec);
        if (c.history.length > HISTORY) c.history.shift();
      }
      setText(c.rate, perSec === undefined ? "…" : isBytes ? bits(perSec) : count(perSec) + (/packets/i.test(key) ? " pkt/s" : "/s"));
      setText(c.total, "total " + (isBytes ? bytes(v) : count(v)));
      const max = Math.max(1, ...c.history);
      const off = HISTORY - c.history.length;
      const points = c.history.map((h, i) => (off + i) + "," + (19.5 - (h / max) * 18).toFixed(2)).join(" ");
      c.line.setAttribute("points", points);
      c.area.setAttribute("points", points ? off + ",19.5 " + points + " " + (HISTORY - 1) + ",19.5" : "");
    }
    previous = { t, values: now };
  }

  function table(key: string, items: Record<string, unknown>[]): HTMLElement {
    const cols: string[] = [];
    for (const it of items) for (const k of Object.keys(it)) if (!cols.includes(k)) cols.push(k);
    const wrap = el("div", "table-wrap");
    wrap.dataset.key = key;
    const t = el("table", "data-table");
    const head = t.createTHead().insertRow();
    for (const c of cols) {
      const th = el("th", "", label(c));
      th.scope = "col";
      head.append(th);
    }
    const body = t.createTBody();
    for (const it of items) {
      const tr = body.insertRow();
      for (const c of cols) tr.append(value("td", it[c]));
    }
    wrap.append(t);
    return wrap;
  }

  function facts(entries: [string, unknown][]): HTMLElement {
    const dl = el("dl", "facts");
    for (const [k, v] of entries) {
      const item = el("div");
      item.append(el("dt", "", label(k)), value("dd", v));
      dl.append(item);
    }
    return dl;
  }

  /** Scalars as facts, arrays of objects as tables, nested objects as titled facts. */
  function renderDetails(dp: Record<string, unknown>, skip: string): HTMLElement {
    const out = el("div");
    const entries = Object.entries(dp).filter(([k]) => k !== skip && k !== "error");
    const flat = entries.filter(([, v]) => isScalar(v) || (Array.isArray(v) && v.every(isScalar)));
    if (flat.length) out.append(facts(flat));
    for (const [k, v] of entries) {
      if (Array.isArray(v) && !v.every(isScalar)) {
        const h = el("h3", "", label(k) + " ");
        h.append(el("span", "count", String(v.length)));
        out.append(h);
        if (v.length === 0) out.append(el("p", "muted", "none"));
        else out.append(table(k, v.map((x) => (isRecord(x) ? x : { value: x }))));
      } else if (isRecord(v)) {
        out.append(el("h3", "", label(k)), facts(Object.entries(v)));
      }
    }
    return out;
  }

  function renderDataPath(s: StatusJSON, t: number): void {
    const dp = s.dataPath;
    const box = byId("datapath");
    const found = dp ? findCounters(dp) : undefined;
    renderCounters(found?.[1], t);
    const rest = dp ? Object.fromEntries(Object.entries(dp).filter(([k]) => k !== found?.[0])) : null;
    const key = JSON.stringify(rest) + "|" + s.backend;
    if (key !== detailsJSON) {
      detailsJSON = key; // rebuilt only when it changed: keeps the DOM (and the reader's selection)
      box.replaceChildren(details(s, dp, rest, found?.[0]));
    }
    tickTimes(Date.now());
  }

  /** Everything of the data path but its counters, or a sentence saying why there is nothing. */
  function details(s: StatusJSON, dp: Record<string, unknown> | null, rest: Record<string, unknown> | null, countersKey?: string): HTMLElement {
    const box = el("div");
    if (dp && typeof dp.error === "string") box.append(el("p", "note warn", "The backend could not describe its data path: " + dp.error));
    if (!dp) box.append(el("p", "muted", s.lease ? "The backend reports no data path." : "No data path yet: the agent holds no lease."));
    else if (Object.keys(rest!).filter((k) => k !== "error").length > 0) box.append(renderDetails(dp, countersKey ?? ""));
    else if (!countersKey) box.append(el("p", "muted", "The " + (s.backend ?? "") + " backend programs no routes or devices on this host."));
    return box;
  }

  // ---------------------------------------------------------------- summary and state
  function renderSummary(s: StatusJSON, now: number): void {
    // Dual stack shows both families (IPv4 first); an IPv6-only network shows its IPv6 one.
    const v6sub = s.ipv6Network ? s.ipv6Network + (s.ipv6SubnetLen ? " (/" + s.ipv6SubnetLen + " per host)" : "") : "";
    setText(byId("s-network"), s.network ?? s.ipv6Network ?? "—");
    setText(byId("s-network-sub"), s.network ? (s.subnetLen ? "/" + s.subnetLen + " per host" : "") + (v6sub ? " · " + v6sub : "")
      : s.ipv6Network ? (s.ipv6SubnetLen ? "/" + s.ipv6SubnetLen + " per host" : "") : "waiting for the network config");
    setText(byId("s-subnet"), s.lease?.subnet ?? s.lease?.ipv6Subnet ?? "—");
    const pub = [s.lease?.subnet && s.lease.ipv6Subnet ? s.lease.ipv6Subnet : "",
      s.publicIP && s.publicIP !== "0.0.0.0" ? "public IP " + s.publicIP : "", s.publicIPv6 ? "public IPv6 " + s.publicIPv6 : ""].filter(Boolean);
    setText(byId("s-public"), s.lease ? pub.join(" · ") : "no lease yet");
    setText(byId("s-hosts"), String(s.peers.length + (s.lease ? 1 : 0)));
    setText(byId("s-backend"), s.backend ?? "—");
    const e = s.lease ? expiry(s.lease, true, now) : { text: "—", title: "", cls: "" };
    setText(byId("s-lease"), e.text);
    byId("s-lease").className = "big expiry " + e.cls;
    setText(byId("s-lease-sub"), s.lease?.reservation ? "never expires" : e.title ? "until " + e.title : "no lease yet");
    setText(byId("s-etcd-title"), storeName(s));
    setText(byId("s-etcd"), s.etcd.ok ? "connected" : "unreachable");
    byId("s-etcd").className = "big " + (s.etcd.ok ? "ok" : "bad");
    setText(byId("s-etcd-sub"), watchText(s.etcd.watch));
    const onIP = s.publicIP && s.publicIP !== "0.0.0.0" ? s.publicIP : s.publicIPv6;
    document.title = (s.etcd.ok ? "" : "⚠ ") + "weft · " + (s.lease?.subnet ?? s.lease?.ipv6Subnet ?? "starting") + (onIP ? " on " + onIP : "");
  }

  /** What the leases come from, as the dashboard names it. */
  function storeName(s: StatusJSON): string {
    return s.source === "kube" ? "Kubernetes API" : "etcd";
  }

  /** The lease watch in a few words: where it is and when etcd last spoke, or since when it is lost. */
  function watchText(w: WatchJSON | null | undefined): string {
    if (!w) return "lease store";
    if (!w.healthy) return w.error ? "watch lost since " + clock(Date.parse(w.since)) : "watch starting";
    const age = w.lastResponseAgeSeconds;
    return "watching" + (w.endpoint ? " " + w.endpoint : "") + (age === null ? "" : " · heard " + Math.round(age) + " s ago");
  }

  function renderState(s: StatusJSON): void {
    const w = s.etcd.watch;
    if (s.etcd.ok) clearBanner("etcd");
    else banner("etcd", "error", s.source === "kube" ? "The Kubernetes API is unreachable." : "etcd is unreachable.",
      (s.source === "kube"
        ? "Nodes cannot be watched until it is back, so the hosts below may be out of date; routes stay as last programmed."
        : "Leases cannot be renewed or watched until it is back, so the hosts below may be out of date; routes stay as last programmed.") +
      (w && !w.healthy && w.error ? " The lease watch is lost since " + clock(Date.parse(w.since)) + "." : ""),
      s.etcd.error ?? "");
    if (s.ready || s.lease) clearBanner("starting");
    else banner("starting", "info", "The agent is starting.", s.source === "kube"
      ? "It is waiting for the network config file and its Node's podCIDR."
      : "It is waiting for the network config in etcd and a subnet lease.");
    document.body.classList.toggle("etcd-down", !s.etcd.ok);
  }

  // ---------------------------------------------------------------- polling
  let lastOk = 0;
  let failingSince = 0;

  /** The connection indicator; only its word is a live region (the clock would chatter). */
  function live(ok: boolean, text: string, time: string): void {
    byId("live").className = "live " + (ok ? "on" : "off");
    setText(byId("live-text"), text);
    setText(byId("live-time"), time);
  }

  async function poll(): Promise<void> {
    const started = performance.now();
    try {
      const r = await fetch("status", { cache: "no-store", signal: AbortSignal.timeout(TIMEOUT_MS) });
      if (!r.ok) throw new Error("HTTP " + r.status + " from /status");
      const s = (await r.json()) as StatusJSON;
      const now = Date.now();
      renderSummary(s, now);
      renderState(s);
      renderHosts(s, now);
      renderMesh(s, now);
      renderMatrix(s);
      renderDataPath(s, started);
      lastOk = now;
      if (failingSince) quietUntil = now + 5000;
      failingSince = 0;
      clearBanner("agent");
      document.body.classList.remove("stale");
      live(true, "Live", "· " + clock(now));
    } catch (e) {
      const now = Date.now();
      failingSince ||= now;
      const why = e instanceof Error && e.name === "TimeoutError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : String((e as Error).message ?? e);
      banner("agent", "error", "The agent is not answering.",
        "No answer from " + location.host + " since " + clock(failingSince) + ". " +
        (lastOk ? "The page shows what it reported last, at " + clock(lastOk) + "; " : "") + "retrying every " + pollMs / 1000 + " s.", why);
      document.body.classList.add("stale");
      live(false, "Offline", "");
      previous = undefined; // rates restart from the next good sample
      quietUntil = Infinity;
    }
    setTimeout(poll, Math.max(0, pollMs - (performance.now() - started)));
  }

  void poll();
}
