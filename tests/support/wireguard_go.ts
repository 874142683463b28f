/**
 * @module A WireGuard host that is not weft, for interop tests and benches: Debian's
 * `wireguard-go` (2022, the reference userspace implementation) in a network namespace,
 * configured with `wg set` exactly as flanneld v0.20.2's wireguard backend configures its kernel
 * device (flannel-io/flannel backend/wireguard/device.go), and `flannelWgHost()`, a
 * "flanneld-like" host in a running weft `Cluster`: its lease written to the cluster's etcd as
 * flanneld writes it, every wireguard lease there added as a peer (and kept so by a watch), a
 * container behind it.
 *
 * What flanneld does, and the `wg`/`ip` command each step is here:
 *   newWGDevice    link flannel-wg, MTU = underlay MTU − 80    wireguard-go -f flannel-wg; ip link set mtu
 *                  PrivateKey, ListenPort, ReplacePeers       wg set flannel-wg listen-port P private-key F
 *   Configure      lease address /32, up, route Network       ip addr add A/32; ip link set up;
 *                  (scope link)                               ip route add NET dev flannel-wg scope link
 *   addPeer        PublicKey, PresharedKey (if PSK),          wg set … listen-port P private-key F peer K
 *                  PersistentKeepaliveInterval (0 = off),      [preshared-key F] persistent-keepalive N|off
 *                  Endpoint PublicIP:own ListenPort,           endpoint E allowed-ips SUBNET
 *                  ReplaceAllowedIPs, AllowedIPs = subnet
 *                  then removes other keys at that endpoint   wg set … peer OLD remove
 *   removePeer                                                wg set flannel-wg peer K remove
 * flanneld v0.20.2 reads only BackendData.PublicKey and reaches every peer on its *own* ListenPort
 * (a lease's `Port`, which v0.21+ and weft write, is ignored), and writes `{"PublicKey":…}` only.
 *
 * wireguard-go's control socket is `/var/run/wireguard/<dev>.sock`, one directory for every
 * namespace: two hosts both named flannel-wg (or another helper's wg0) would collide. So each
 * instance, and each `wg` run against it, gets the host's own directory bind-mounted there inside
 * the mount namespace `ip netns exec` already makes (MS_SLAVE: nothing leaks out).
 *
 * wireguard-go runs in the foreground, logged to a file; `stop()` kills it, and the namespace's
 * removal (Cluster.destroy, ns.ts at exit) kills it in any case.
 *
 * @example
 *   const c = await Cluster.create({ hosts: 2, backend: "wireguard", backendOptions: { PSK } });
 *   const fl = await flannelWgHost(c);               // h3: wireguard-go, lease, peers, container
 *   await ping(fl.container.ns, c.hosts[0]!.containers[0]!.ip);
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatIPv4, parseIPv4Net } from "../../src/net/ip.ts";
import { writeSubnetEnv } from "../../src/subnet_env.ts";
import type { Cluster, Container, Host } from "./netns.ts";
import { inNsWgRunDir, ip, nsExec, onCleanup, run, sh } from "./ns.ts";

/** The wireguard-go and wg binaries, and a TUN device to give it: without them these tests skip. */
export const hasWireguardGo = existsSync("/usr/bin/wireguard-go") && existsSync("/usr/bin/wg") && existsSync("/dev/net/tun");

/** flannel's device name (backend/wireguard/wireguard.go). */
export const FLANNEL_WG_DEV = "flannel-wg";
/** flannel's header allowance: the device MTU is the underlay's minus this (wireguard_network.go). */
export const WG_OVERHEAD = 80;
/** etcd prefix of the network config and leases (flanneld's default). */
export const DEFAULT_PREFIX = "/coreos.com/network";

/** `wg genkey`: a new private key, base64. */
export function wgGenKey(): string {
  return sh(["wg", "genkey"]).trim();
}

/** `wg pubkey` of a base64 private key. */
export function wgPubKey(privateKey: string): string {
  return sh(["wg", "pubkey"], { stdin: `${privateKey}\n` }).trim();
}

/** One peer as `wg show <dev> dump` lists it. */
export interface WgPeerState {
  publicKey: string;
  presharedKey: string | null;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the latest handshake, 0 for none. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
}

export interface WireguardGoOptions {
  /** Namespace to run in. */
  ns: string;
  /** A directory of this instance's own (key files, control socket, log). */
  dir: string;
  /** Device name (default flannel-wg). */
  dev?: string;
  /** ListenPort (default 51820). */
  listenPort?: number;
  /** Private key, base64 (default: `wg genkey`). Written to `<dir>/wgkey`, mode 0400, as flanneld. */
  privateKey?: string;
  /** The network config's PSK, base64 (default none). */
  psk?: string;
  /** PersistentKeepaliveInterval in seconds (default 0 = off). */
  keepalive?: number;
  /** Underlay MTU; the device gets this − 80 (default 1500). */
  underlayMtu?: number;
  /** wireguard-go's LOG_LEVEL (default verbose: handshakes are in the log). */
  logLevel?: "verbose" | "error" | "silent";
}

const live = new Set<WireguardGo>();
let hooked = false;

/** A wireguard-go process and its device, configured as flanneld configures flannel-wg. */
export class WireguardGo {
  readonly ns: string;
  readonly dev: string;
  readonly dir: string;
  readonly listenPort: number;
  readonly privateKey: string;
  readonly publicKey: string;
  readonly keyFile: string;
  readonly pskFile: string | null;
  readonly keepalive: number;
  readonly mtu: number;
  readonly logFile: string;
  private proc?: ChildProcess;
  private exited?: Promise<void>;

  private constructor(o: WireguardGoOptions) {
    this.ns = o.ns;
    this.dev = o.dev ?? FLANNEL_WG_DEV;
    this.dir = o.dir;
    this.listenPort = o.listenPort ?? 51820;
    this.privateKey = o.privateKey ?? wgGenKey();
    this.publicKey = wgPubKey(this.privateKey);
    this.keepalive = o.keepalive ?? 0;
    this.mtu = (o.underlayMtu ?? 1500) - WG_OVERHEAD;
    this.keyFile = join(this.dir, "wgkey");
    this.pskFile = o.psk ? join(this.dir, "psk") : null;
    this.logFile = join(this.dir, "wireguard-go.log");
    mkdirSync(join(this.dir, "run"), { recursive: true });
    // flannel's writePrivateKey: the key's text with no newline, mode 0400.
    writeFileSync(this.keyFile, this.privateKey, { mode: 0o400 });
    if (this.pskFile) writeFileSync(this.pskFile, o.psk!, { mode: 0o400 });
  }

  /**
   * Starts wireguard-go on `dev` in `ns` (foreground, log in `<dir>/wireguard-go.log`) and
   * configures the device as flannel's newWGDevice: MTU, then listen port and private key.
   */
  static async start(o: WireguardGoOptions): Promise<WireguardGo> {
    const w = new WireguardGo(o);
    if (!hooked) {
      hooked = true;
      onCleanup(() => { for (const x of live) x.kill(); });
    }
    live.add(w);
    try {
      await w.spawn(o.logLevel ?? "verbose");
      ip(w.ns, "link", "set", w.dev, "mtu", String(w.mtu));
      w.wg("set", w.dev, "listen-port", String(w.listenPort), "private-key", w.keyFile);
    } catch (e) {
      await w.stop();
      throw e;
    }
    return w;
  }

  /** The argv that runs `argv` in the namespace with this instance's control-socket directory. */
  private inNs(argv: string[]): string[] {
    return inNsWgRunDir(this.ns, join(this.dir, "run"), argv);
  }

  private async spawn(logLevel: string): Promise<void> {
    const fd = openSync(this.logFile, "a");
    // `ip netns exec` and `sh -c … exec` both exec: the pid is wireguard-go's.
    const [cmd, ...args] = this.inNs(["wireguard-go", "-f", this.dev]);
    const p = spawn(cmd!, args, {
      stdio: ["ignore", fd, fd], env: { ...process.env, LOG_LEVEL: logLevel },
    });
    closeSync(fd);
    this.proc = p;
    this.exited = new Promise((r) => p.once("exit", () => r()));
    for (let i = 0; ; i++) {
      if (nsExec(this.ns, ["ip", "link", "show", this.dev]).code === 0 && existsSync(join(this.dir, "run", `${this.dev}.sock`))) return;
      if (p.exitCode !== null || p.signalCode !== null || i === 250) {
        throw new Error(`wireguard-go did not bring up ${this.dev} in ${this.ns} (${p.exitCode ?? p.signalCode ?? "still running after 5 s"}): ${this.log().slice(-2000)}`);
      }
      await Bun.sleep(20);
    }
  }

  /** wireguard-go's pid (for CPU accounting). */
  get pid(): number {
    return this.proc!.pid!;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** wireguard-go's log so far. */
  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** `wg ARGS` against this instance; throws with stderr unless it succeeds. Returns stdout. */
  wg(...args: string[]): string {
    const argv = this.inNs(["wg", ...args]);
    const r = run(argv);
    if (r.code !== 0) throw new Error(`'wg ${args.join(" ")}' in ${this.ns} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /**
   * flannel's Configure: the lease's address as /32 on the device, the device up, and the whole
   * cluster network routed to it. `ip addr add A/32 dev D; ip link set D up; ip route add NET dev D scope link`.
   */
  configure(address: string, network: string): void {
    ip(this.ns, "addr", "add", `${address}/32`, "dev", this.dev);
    ip(this.ns, "link", "set", this.dev, "up");
    ip(this.ns, "route", "add", network, "dev", this.dev, "scope", "link");
  }

  /**
   * flannel's addPeer: one `wg set` with the device's listen port and key and the peer's key,
   * PSK (when the config has one), keepalive (always: 0 is off), endpoint and allowed IPs
   * (replaced), then removal of any other key at the same endpoint address.
   */
  addPeer(endpoint: string, publicKey: string, allowedIps: string[]): void {
    this.wg(
      "set", this.dev, "listen-port", String(this.listenPort), "private-key", this.keyFile,
      "peer", publicKey,
      ...(this.pskFile ? ["preshared-key", this.pskFile] : []),
      "persistent-keepalive", this.keepalive ? String(this.keepalive) : "off",
      "endpoint", endpoint,
      "allowed-ips", allowedIps.join(","),
    );
    // cleanupEndpointPeers: another key at this endpoint's IP is a host that came back with a new key.
    const host = endpoint.slice(0, endpoint.lastIndexOf(":"));
    const stale = this.peers().filter((p) => p.publicKey !== publicKey && p.endpoint?.slice(0, p.endpoint.lastIndexOf(":")) === host);
    if (stale.length) this.wg("set", this.dev, ...stale.flatMap((p) => ["peer", p.publicKey, "remove"]));
  }

  /** flannel's removePeer: `wg set D peer K remove`. */
  removePeer(publicKey: string): void {
    this.wg("set", this.dev, "peer", publicKey, "remove");
  }

  /** Every peer, from `wg show D dump`. */
  peers(): WgPeerState[] {
    const lines = this.wg("show", this.dev, "dump").trim().split("\n").slice(1).filter(Boolean);
    return lines.map((l) => {
      const [publicKey, psk, endpoint, allowed, hs, rx, tx, ka] = l.split("\t");
      return {
        publicKey: publicKey!, presharedKey: psk === "(none)" ? null : psk!, endpoint: endpoint === "(none)" ? null : endpoint!,
        allowedIps: allowed === "(none)" ? [] : allowed!.split(","), latestHandshake: Number(hs), rxBytes: Number(rx), txBytes: Number(tx),
        persistentKeepalive: ka === "off" ? 0 : Number(ka),
      };
    });
  }

  /** The peer with `publicKey`, if configured. */
  peer(publicKey: string): WgPeerState | undefined {
    return this.peers().find((p) => p.publicKey === publicKey);
  }

  private kill(): void {
    if (this.running) this.proc!.kill("SIGKILL");
  }

  /** Kills wireguard-go (SIGTERM, SIGKILL after 2 s); its TUN device goes with it. */
  async stop(): Promise<void> {
    live.delete(this);
    if (!this.running) return;
    this.proc!.kill("SIGTERM");
    const t = setTimeout(() => this.kill(), 2000);
    await this.exited;
    clearTimeout(t);
  }
}

// ------------------------------------------------------------------ a flanneld-like host

/** flanneld v0.20.2's lease value for a wireguard host (subnet.LeaseAttrs marshalled by Go). */
export function flannelWgLeaseValue(publicIP: string, publicKey: string): string {
  // PublicIPv6 is a *ip.IP6 without omitempty: null. BackendData is wireguardLeaseAttrs: PublicKey only.
  return JSON.stringify({ PublicIP: publicIP, PublicIPv6: null, BackendType: "wireguard", BackendData: { PublicKey: publicKey } });
}

export interface FlannelWgHostOptions {
  /** The subnet to lease (default: a free one inside the network, chosen at random as flanneld does). */
  subnet?: string;
  /** Private key the host runs with (default: `wg genkey`). */
  privateKey?: string;
  /** The public key its lease advertises (default: its own; another one makes a host with a wrong key). */
  advertisedKey?: string;
  /** PSK (default: the cluster config's Backend.PSK; null: none even if the cluster has one). */
  psk?: string | null;
  /** Keepalive seconds (default: the config's PersistentKeepaliveInterval). */
  keepalive?: number;
  /** ListenPort (default: the config's, else 51820). */
  listenPort?: number;
  /** Containers behind it (default 1). */
  containers?: number;
  /** etcd prefix (default /coreos.com/network). */
  prefix?: string;
  /** Follow the leases with an etcd watch, as flanneld does (default true). */
  watch?: boolean;
  /** wireguard-go's LOG_LEVEL (default verbose). */
  logLevel?: WireguardGoOptions["logLevel"];
}

/** A lease as read back from etcd. */
export interface LeaseRecord {
  subnet: string;
  key: string;
  value: Record<string, any>;
}

/** A flanneld-like host: wireguard-go, its lease, its peers, its containers. */
export class FlannelWgHost {
  /** Peers added (public key by lease subnet). */
  readonly added = new Map<string, string>();
  /** Errors of background peer syncs (the watch), for tests to show. */
  readonly errors: string[] = [];
  private syncing: Promise<void> = Promise.resolve();
  private watcher?: { cancel(): Promise<void> };

  constructor(
    readonly cluster: Cluster,
    readonly host: Host,
    /** The running wireguard-go (a new one after `restart()`). */
    public wg: WireguardGo,
    private readonly wgOptions: WireguardGoOptions,
    readonly subnet: string,
    readonly network: string,
    readonly prefix: string,
    readonly leaseKey: string,
  ) {}

  /** Its first container. */
  get container(): Container {
    return this.host.containers[0]!;
  }

  get publicKey(): string {
    return this.wg.publicKey;
  }

  /** Every lease under `<prefix>/subnets/`. */
  async leases(): Promise<LeaseRecord[]> {
    const all = await this.cluster.etcd.client().getAll().prefix(`${this.prefix}/subnets/`).strings();
    return Object.entries(all).flatMap(([key, v]) => {
      const m = /\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/.exec(key);
      if (!m) return [];
      try {
        return [{ subnet: `${m[1]}/${m[2]}`, key, value: JSON.parse(v) }];
      } catch {
        return [];
      }
    });
  }

  /**
   * Brings the wg peers in line with etcd as flanneld's handleSubnetEvents does: every other
   * wireguard lease added (endpoint PublicIP:own ListenPort, allowed IPs its subnet), the peers
   * of leases gone removed. Calls are serialised.
   */
  syncPeers(): Promise<void> {
    this.syncing = this.syncing.catch(() => {}).then(() => this.syncOnce());
    return this.syncing;
  }

  private async syncOnce(): Promise<void> {
    const seen = new Set<string>();
    for (const l of await this.leases()) {
      if (l.subnet === this.subnet || l.value.BackendType !== "wireguard") continue;
      const key = l.value.BackendData?.PublicKey;
      if (typeof key !== "string") continue;
      seen.add(l.subnet);
      this.wg.addPeer(`${l.value.PublicIP}:${this.wg.listenPort}`, key, [l.subnet]);
      const before = this.added.get(l.subnet);
      if (before && before !== key && this.wg.peer(before)) this.wg.removePeer(before);
      this.added.set(l.subnet, key);
    }
    for (const [subnet, key] of this.added) {
      if (seen.has(subnet)) continue;
      if (this.wg.peer(key)) this.wg.removePeer(key);
      this.added.delete(subnet);
    }
  }

  /** Starts following `<prefix>/subnets/` (each change: a full sync). */
  async watch(): Promise<void> {
    const w = await this.cluster.etcd.client().watch().prefix(`${this.prefix}/subnets/`).create();
    const sync = () => { this.syncPeers().catch((e) => this.errors.push(String(e))); };
    w.on("put", sync);
    w.on("delete", sync);
    w.on("error", (e) => this.errors.push(String(e)));
    this.watcher = w;
  }

  /**
   * Restarts wireguard-go with the same key, as flanneld restarting (its device is made anew, so
   * its sessions are gone): stop, start, configure, every peer added again.
   */
  async restart(): Promise<void> {
    await this.syncing.catch(() => {});
    await this.wg.stop();
    this.wg = await WireguardGo.start({ ...this.wgOptions, privateKey: this.wg.privateKey });
    this.wg.configure(this.subnet.split("/")[0]!, this.network);
    this.added.clear();
    await this.syncPeers();
  }

  /** Stops the watch and wireguard-go (the namespaces go with the cluster). */
  async stop(): Promise<void> {
    await this.watcher?.cancel().catch(() => {});
    this.watcher = undefined;
    await this.syncing.catch(() => {});
    await this.wg.stop();
  }
}

/** Subnets of `len` inside `network` flanneld may lease (not the first nor the last), as a.b.c.d/len. */
function candidateSubnets(network: string, len: number): string[] {
  const net = parseIPv4Net(network);
  const n = 2 ** (len - net.len);
  const out: string[] = [];
  for (let i = 1; i < n - 1; i++) out.push(`${formatIPv4((net.ip + i * 2 ** (32 - len)) >>> 0)}/${len}`);
  return out;
}

/**
 * Adds a flanneld-like host to a running etcd-mode `Cluster`: a new host namespace (not in
 * `c.hosts`, which stays the list of weft agents; its namespaces go with `c.destroy()`),
 * wireguard-go on flannel-wg with the config's ListenPort/PSK/keepalive, a lease written as
 * flanneld writes it (`<prefix>/subnets/<a.b.c.d>-<len>`, created only if absent, bound to an
 * etcd lease of 24 h), the device configured, subnet.env written, peers synced from etcd (and
 * followed by a watch unless `watch: false`), and its containers on cni0.
 */
export async function flannelWgHost(c: Cluster, o: FlannelWgHostOptions = {}): Promise<FlannelWgHost> {
  const backend = (c.opts.backendOptions ?? {}) as Record<string, unknown>;
  const prefix = o.prefix ?? DEFAULT_PREFIX;
  const network = c.opts.network;
  const subnetLen = c.opts.subnetLen ?? 24;
  const h = c.addHostNamespace();
  c.hosts.splice(c.hosts.indexOf(h), 1); // not a weft agent
  const wgOptions: WireguardGoOptions = {
    ns: h.ns, dir: join(h.dir, "wg"),
    listenPort: o.listenPort ?? (backend.ListenPort as number | undefined) ?? 51820,
    privateKey: o.privateKey,
    psk: o.psk === null ? undefined : o.psk ?? (backend.PSK as string | undefined),
    keepalive: o.keepalive ?? (backend.PersistentKeepaliveInterval as number | undefined) ?? 0,
    logLevel: o.logLevel,
  };
  const wg = await WireguardGo.start(wgOptions);
  try {
    // AcquireLease: a free subnet (random, as flanneld), created only if the key is absent, TTL 24 h.
    const etcd = c.etcd.client();
    const taken = new Set(Object.keys(await etcd.getAll().prefix(`${prefix}/subnets/`).strings()).map((k) => k.slice(k.lastIndexOf("/") + 1).replace("-", "/")));
    const free = o.subnet ? [o.subnet] : candidateSubnets(network, subnetLen).filter((s) => !taken.has(s));
    if (free.length === 0) throw new Error(`flannelWgHost: no free /${subnetLen} left in ${network}`);
    const subnet = free[Math.floor(Math.random() * free.length)]!;
    const key = `${prefix}/subnets/${subnet.replace("/", "-")}`;
    const lease = etcd.lease(86_400, { autoKeepAlive: false });
    const leaseId = await lease.grant();
    const txn = await etcd.if(key, "Version", "==", 0).then(etcd.put(key).value(flannelWgLeaseValue(h.ip, o.advertisedKey ?? wg.publicKey)).lease(leaseId)).commit();
    if (!txn.succeeded) throw new Error(`flannelWgHost: lease key ${key} exists already`);
    const addr = subnet.split("/")[0]!;
    wg.configure(addr, network);
    const gw = `${formatIPv4((parseIPv4Net(subnet).ip + 1) >>> 0)}/${subnetLen}`;
    writeSubnetEnv(h.subnetFile, { network, subnet: gw, mtu: wg.mtu, ipMasq: false });
    const fl = new FlannelWgHost(c, h, wg, wgOptions, subnet, network, prefix, key);
    await fl.syncPeers();
    if (o.watch !== false) await fl.watch();
    c.addContainers(h, o.containers ?? 1);
    return fl;
  } catch (e) {
    await wg.stop();
    throw e;
  }
}
