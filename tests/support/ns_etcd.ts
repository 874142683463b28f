/**
 * @module A real etcd inside a network namespace, reachable by the namespace's neighbours at
 * `endpoint` (e.g. http://192.168.77.254:2379) and by the test process through a forwarder on
 * the root namespace's 127.0.0.1 (`localEndpoint`, `client()`). tests/support/etcd.ts probes its
 * server from the test process, which for a namespaced address would mean sending packets out
 * of the root namespace's default route; this one probes through the forwarder instead.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { type NetnsForward, forwardIntoNetns } from "../../tools/netns_forward.ts";

export class NsEtcd {
  #proc?: ChildProcess;
  #exited?: Promise<void>;
  #client?: Etcd3;
  #forward?: NetnsForward;
  log = "";

  private constructor(readonly ns: string, readonly host: string, readonly dataDir: string, readonly port: number) {}

  /** Starts etcd in `ns` on `host:port` (peer port = port+1), data under `dataDir`. */
  static async start(ns: string, host: string, dataDir: string, port = 2379): Promise<NsEtcd> {
    const e = new NsEtcd(ns, host, dataDir, port);
    e.#forward = await forwardIntoNetns(ns, host, port);
    await e.restart();
    return e;
  }

  /** The URL the namespaces use (agents' --etcd-endpoints). */
  get endpoint(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** The URL the test process uses (forwarded into the namespace). */
  get localEndpoint(): string {
    return this.#forward!.url;
  }

  /** The server's pid (it runs in `ns`), or undefined when stopped. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Starts (again) with the same data; resolves once it answers a read. */
  async restart(): Promise<void> {
    if (this.#proc) throw new Error("NsEtcd.restart: etcd is already running");
    const peer = `http://${this.host}:${this.port + 1}`;
    const proc = spawn("ip", [
      "netns", "exec", this.ns, "etcd",
      "--name", "weft-mh", "--data-dir", join(this.dataDir, "data"),
      "--listen-client-urls", this.endpoint, "--advertise-client-urls", this.endpoint,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `weft-mh=${peer}`, "--logger", "zap", "--log-level", "error",
      "--max-txn-ops", "2048", "--auto-compaction-retention", "0",
    ], { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr!.on("data", (d) => { this.log = (this.log + d).slice(-20000); });
    this.#proc = proc;
    this.#exited = new Promise((r) => proc.once("exit", () => r()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const c = new Etcd3({ hosts: this.localEndpoint, dialTimeout: 1000 });
      try {
        await c.get("weft-probe").string();
        return;
      } catch (err) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`etcd in ${this.ns} did not start: ${err}\n${this.log}`);
        await Bun.sleep(100);
      } finally {
        c.close();
      }
    }
  }

  /** Stops the server and waits for its exit; data is kept for restart(). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.#proc;
    if (!p) return;
    p.kill(signal);
    await this.#exited;
    this.#proc = undefined;
  }

  /** A client for the test process (through the forwarder), closed by destroy(). */
  client(): Etcd3 {
    this.#client ??= new Etcd3({ hosts: this.localEndpoint });
    return this.#client;
  }

  /** Stops the server and the forwarder, removes the data. */
  async destroy(): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    await this.stop("SIGKILL");
    await this.#forward?.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}
