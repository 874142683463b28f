/**
 * @module A 3-member etcd cluster (Debian's etcd) for the fault tests: each member in a namespace
 * of its own, joined by a veth to an existing bridge (the netns.ts cluster's underlay `br0`), so
 * agents in host namespaces reach every member over the same underlay. Faults are made inside a
 * member's namespace only (never the root namespace): `partition()` drops its traffic with the
 * other members (iptables in its namespace), `silence()` drops every packet on its link (no FIN,
 * no RST: a power loss or a cut cable as its clients see it), `kill()`/`start()` end and restart
 * its process. Namespaces and processes are removed by `destroy()`, else by ns.ts at exit.
 *
 * @example
 *   const c = await Cluster.create({ hosts: 0 });
 *   const etcd = await EtcdCluster.start({ underlay: c.underlay, ipPrefix: "192.168.77", firstHost: 251 });
 *   c.etcdEndpoints = etcd.endpoints;
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addNetns, delNetns, ip, nsExec, onCleanup, uniqueName } from "./ns.ts";

export const CLIENT_PORT = 2379;
export const PEER_PORT = 2380;

export interface EtcdClusterOptions {
  /** The namespace holding the bridge the members join. */
  underlay: string;
  bridge?: string;
  /** The bridge's /24, e.g. "192.168.77"; members take `.firstHost`, `.firstHost+1`, … */
  ipPrefix: string;
  firstHost: number;
  size?: number;
  /** Extra etcd flags for every member. */
  args?: string[];
}

/** One member: its namespace, address and process. */
export class EtcdMember {
  proc?: ChildProcess;
  exited?: Promise<void>;
  /** The member's stderr (last 20 kB). */
  log = "";
  /** etcd's member ID (hex), known once it answered `status()`. */
  id?: string;

  constructor(readonly name: string, readonly ns: string, readonly ip: string, readonly dataDir: string) {}

  get clientURL(): string {
    return `http://${this.ip}:${CLIENT_PORT}`;
  }

  get peerURL(): string {
    return `http://${this.ip}:${PEER_PORT}`;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /**
   * `Maintenance.Status` through etcd's JSON gateway, fetched from inside its namespace (by Bun,
   * so no HTTP client package is needed); undefined if it does not answer within 1 s.
   */
  status(): { memberId: string; leader: string; raftTerm: string } | undefined {
    const script = `const r = await fetch(${JSON.stringify(`${this.clientURL}/v3/maintenance/status`)}, { method: "POST", body: "{}", signal: AbortSignal.timeout(1000) });
process.stdout.write(await r.text());`;
    const r = nsExec(this.ns, [process.execPath, "-e", script], { timeoutMs: 5000 });
    if (r.code !== 0) return undefined;
    try {
      const j = JSON.parse(r.stdout) as { header?: { member_id?: string }; leader?: string; raftTerm?: string };
      if (!j.header?.member_id) return undefined;
      this.id = j.header.member_id;
      return { memberId: j.header.member_id, leader: j.leader ?? "0", raftTerm: j.raftTerm ?? "0" };
    } catch {
      return undefined;
    }
  }
}

export class EtcdCluster {
  readonly #dir: string;

  private constructor(readonly members: EtcdMember[], readonly opts: EtcdClusterOptions, dir: string) {
    this.#dir = dir;
  }

  /** Creates the members' namespaces and links and starts them; resolves when a leader is elected. */
  static async start(opts: EtcdClusterOptions): Promise<EtcdCluster> {
    const dir = mkdtempSync(join(tmpdir(), `${uniqueName()}-etcd-`));
    const bridge = opts.bridge ?? "br0";
    const members: EtcdMember[] = [];
    const c = new EtcdCluster(members, opts, dir);
    onCleanup(() => { for (const m of members) m.proc?.kill("SIGKILL"); });
    try {
      for (let i = 0; i < (opts.size ?? 3); i++) {
        const name = `m${i + 1}`;
        const ns = addNetns(uniqueName(`etcd${name}`));
        const m = new EtcdMember(name, ns, `${opts.ipPrefix}.${opts.firstHost + i}`, join(dir, name));
        members.push(m);
        const veth = `e${process.pid % 1000}${name}`; // unique in the underlay for this run
        ip(opts.underlay, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns);
        ip(opts.underlay, "link", "set", veth, "master", bridge, "up");
        ip(ns, "addr", "add", `${m.ip}/24`, "dev", "eth0");
        ip(ns, "link", "set", "eth0", "up");
        ip(ns, "link", "set", "lo", "up");
      }
      for (const m of members) c.#spawn(m, "new");
      await c.waitForLeader(30_000);
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  /** The agents' `--etcd-endpoints`. */
  get endpoints(): string {
    return this.members.map((m) => m.clientURL).join(",");
  }

  member(name: string): EtcdMember {
    const m = this.members.find((x) => x.name === name);
    if (!m) throw new Error(`no etcd member ${JSON.stringify(name)} (members: ${this.members.map((x) => x.name).join(", ")})`);
    return m;
  }

  #spawn(m: EtcdMember, state: "new" | "existing"): void {
    const args = [
      "--name", m.name, "--data-dir", m.dataDir,
      "--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
      "--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
      "--initial-cluster", this.members.map((x) => `${x.name}=${x.peerURL}`).join(","),
      "--initial-cluster-state", state, "--initial-cluster-token", "weft-faults",
      "--logger", "zap", "--log-level", "error", "--auto-compaction-retention", "0",
      ...(this.opts.args ?? []),
    ];
    const p = spawn("ip", ["netns", "exec", m.ns, "etcd", ...args], { stdio: ["ignore", "ignore", "pipe"] });
    p.stderr!.on("data", (d) => { m.log = (m.log + d).slice(-20000); });
    m.proc = p;
    m.exited = new Promise((r) => p.once("exit", () => r()));
  }

  /** The current leader (a member that is up and names itself leader), or undefined. */
  leader(): EtcdMember | undefined {
    for (const m of this.members) {
      const s = m.running ? m.status() : undefined;
      if (s && s.leader !== "0" && s.leader === s.memberId) return m;
    }
    return undefined;
  }

  /** Waits until a running member of `among` leads and every running one of them agrees; returns it. */
  async waitForLeader(timeoutMs = 20_000, among: EtcdMember[] = this.members): Promise<EtcdMember> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const statuses = among.filter((m) => m.running).map((m) => m.status());
      const leaders = new Set(statuses.map((s) => s?.leader ?? "0"));
      const id = [...leaders][0];
      if (statuses.length > 0 && statuses.every(Boolean) && leaders.size === 1 && id !== "0") {
        const l = among.find((m) => m.id === id && m.running);
        if (l) return l;
      }
      if (Date.now() > end) {
        throw new Error(`etcd cluster: no agreed leader within ${timeoutMs} ms (${JSON.stringify(statuses)})\n${this.members.map((m) => `--- ${m.name}\n${m.log}`).join("\n")}`);
      }
      await Bun.sleep(100);
    }
  }

  /** Kills a member's process (SIGKILL by default: an abrupt death, as a crash). */
  async kill(m: EtcdMember, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const p = m.proc;
    if (!p || !m.running) return;
    const exited = m.exited;
    p.kill(signal);
    await exited;
    m.proc = undefined;
  }

  /** Restarts a stopped member with its data (it rejoins the cluster). */
  restart(m: EtcdMember): void {
    if (m.running) throw new Error(`etcd member ${m.name} is already running`);
    this.#spawn(m, "existing");
  }

  /**
   * Cuts `m` off from the other members (their traffic dropped both ways inside `m`'s
   * namespace); its clients still reach it. Undone by `heal(m)`.
   */
  partition(m: EtcdMember): void {
    for (const other of this.members) {
      if (other === m) continue;
      nsExec(m.ns, ["iptables", "-w", "-I", "INPUT", "-s", other.ip, "-j", "DROP"]);
      nsExec(m.ns, ["iptables", "-w", "-I", "OUTPUT", "-d", other.ip, "-j", "DROP"]);
    }
  }

  /**
   * Drops every packet to and from `m` on its link (no FIN, no RST: what its clients see when its
   * host loses power or its cable is cut). Undone by `heal(m)`.
   */
  silence(m: EtcdMember): void {
    nsExec(m.ns, ["iptables", "-w", "-I", "INPUT", "-i", "eth0", "-j", "DROP"]);
    nsExec(m.ns, ["iptables", "-w", "-I", "OUTPUT", "-o", "eth0", "-j", "DROP"]);
  }

  /** Removes every fault rule of `m` (partition, silence). */
  heal(m: EtcdMember): void {
    nsExec(m.ns, ["iptables", "-w", "-F", "INPUT"]);
    nsExec(m.ns, ["iptables", "-w", "-F", "OUTPUT"]);
  }

  /** Stops every member and removes their namespaces and data. */
  async destroy(): Promise<void> {
    await Promise.all(this.members.map((m) => this.kill(m)));
    for (const m of this.members) delNetns(m.ns);
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
