/**
 * @module A real etcd server for tests (Debian's etcd-server): started on free loopback ports, or
 * inside a network namespace on an address there (agents in that namespace's neighbours use
 * `endpoint`; the test process reaches it through a forwarder at `localEndpoint`, never through
 * the root namespace's routes). Data in a temp dir; stop, restart, compact. Every instance is
 * registered so `stopAllEtcd()` leaves nothing running. Optionally over TLS (`tls`: https://
 * endpoints, client certificates required or not), on more loopback addresses (`extraHosts`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3, type IOptions } from "etcd3";
import { type NetnsForward, forwardIntoNetns } from "../../tools/netns_forward.ts";

const running = new Set<EtcdServer>();

/**
 * `n` distinct free TCP ports on 127.0.0.1 (best effort: they are released before use). All are
 * held until all are chosen: picked one after another, the kernel may hand out the same port
 * twice (etcd once got its client and peer port equal and died with "address already in use").
 */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => resolve(s));
  })));
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

/** A free TCP port on 127.0.0.1 (best effort: the port is released before use). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/**
 * How a test stops etcd for an outage that agents under `runtime` live through. A SIGTERM makes
 * etcd close its gRPC connections gracefully (HTTP/2 GOAWAY), which is what a restart in the field
 * does, and it is what the binary (Bun) agents face. Deno 2.9.6 sometimes dies inside its
 * node:http2 (nghttp2) while it handles such a GOAWAY: a segfault or an nghttp2 assertion, before
 * any JavaScript runs, so no code of ours can catch it (denoland/deno#36788, open; here about 1 in
 * 60 graceful restarts, 0 in 140 abrupt ones). Agents under Deno therefore face an abrupt etcd
 * death (SIGKILL: the connections just close), and README.md names the Deno defect.
 */
export function outageSignal(runtime: string): NodeJS.Signals {
  return runtime === "deno" ? "SIGKILL" : "SIGTERM";
}

/** Attempts at starting etcd on fresh free ports when another process took one meanwhile. */
const PORT_ATTEMPTS = 3;

export interface EtcdOptions {
  /** Run inside this network namespace, listening on `host`. */
  netns?: string;
  host?: string;
  /** Client port (peer port = port + 1); default: free ports. */
  port?: number;
  /** Where the data goes (removed by destroy()); default: a new temp dir. */
  dataDir?: string;
  /** Serve clients over TLS (https:// endpoints). */
  tls?: EtcdTls;
  /** More addresses to serve clients on, same port (e.g. 127.0.0.2 for a SAN the cert lacks). */
  extraHosts?: string[];
}

/** etcd's client TLS: its certificate, and optionally the CA it checks client certificates with. */
export interface EtcdTls {
  certFile: string;
  keyFile: string;
  /** The CA of etcd's certificate, for the test's own client. */
  caFile: string;
  /** --client-cert-auth with --trusted-ca-file = caFile: clients must present a certificate. */
  clientCertAuth?: boolean;
  /** The certificate and key the test's own client presents. */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** A DNS name in etcd's certificate, which the test's own client checks (default "localhost"). */
  serverName?: string;
}

export class EtcdServer {
  #proc?: ChildProcess;
  #exited?: Promise<void>;
  #client?: Etcd3;
  #forward?: NetnsForward;
  log = "";

  private constructor(
    readonly dataDir: string, readonly host: string, readonly clientPort: number, readonly peerPort: number, readonly netns?: string,
    readonly tls?: EtcdTls, readonly extraHosts: string[] = [],
  ) {}

  static async start(opts: EtcdOptions = {}): Promise<EtcdServer> {
    const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "weft-etcd-"));
    const host = opts.host ?? "127.0.0.1";
    for (let attempt = 1; ; attempt++) {
      const [port, peerPort] = opts.port ? [opts.port, opts.port + 1] : await freePorts(2);
      const e = new EtcdServer(dataDir, host, port!, peerPort!, opts.netns, opts.tls, opts.extraHosts);
      running.add(e);
      try {
        if (opts.netns) e.#forward = await forwardIntoNetns(opts.netns, host, port!);
        await e.restart();
        return e;
      } catch (err) {
        // A port chosen free was taken before etcd bound it: try fresh ones (ours only).
        const raced = !opts.port && attempt < PORT_ATTEMPTS && /address already in use/.test(String(err));
        await e.stop().catch(() => {});
        await e.#forward?.close().catch(() => {});
        running.delete(e);
        if (!raced) {
          if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true }); // a failed start leaves nothing
          throw err;
        }
      }
    }
  }

  /** The URL agents use (inside the namespace's network when there is one). */
  get endpoint(): string {
    return this.endpointAt(this.host);
  }

  /** The URL of the client port on `host` (one of `extraHosts`). */
  endpointAt(host: string): string {
    return `${this.tls ? "https" : "http"}://${host}:${this.clientPort}`;
  }

  /**
   * Options for a client of the test's own (add `auth` for an etcd with auth on). With TLS it
   * checks `tls.serverName`: etcd3's stock TLS cannot reach an endpoint by IP (weft's can).
   */
  clientOptions(): IOptions {
    const t = this.tls;
    if (!t) return { hosts: this.localEndpoint };
    return {
      hosts: this.localEndpoint,
      credentials: {
        rootCertificate: readFileSync(t.caFile),
        privateKey: t.clientKeyFile ? readFileSync(t.clientKeyFile) : undefined,
        certChain: t.clientCertFile ? readFileSync(t.clientCertFile) : undefined,
      },
      grpcOptions: { "grpc.ssl_target_name_override": t.serverName ?? "localhost" },
    };
  }

  /** The URL the test process uses. */
  get localEndpoint(): string {
    return this.#forward?.url ?? this.endpoint;
  }

  /** The server's pid, or undefined when stopped. */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Starts (again) with the same ports and data; resolves when it answers. */
  async restart(): Promise<void> {
    if (this.#proc) throw new Error("etcd is already running");
    const peer = `http://${this.host}:${this.peerPort}`;
    const args = [
      "--name", "weft-test", "--data-dir", join(this.dataDir, "data"),
      "--listen-client-urls", [this.endpoint, ...this.extraHosts.map((h) => this.endpointAt(h))].join(","),
      "--advertise-client-urls", this.endpoint,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `weft-test=${peer}`, "--logger", "zap", "--log-level", "error",
      "--max-txn-ops", "2048", "--auto-compaction-retention", "0",
      ...(this.tls ? ["--cert-file", this.tls.certFile, "--key-file", this.tls.keyFile] : []),
      ...(this.tls?.clientCertAuth ? ["--client-cert-auth", "--trusted-ca-file", this.tls.caFile] : []),
    ];
    const cmd = this.netns ? ["ip", "netns", "exec", this.netns, "etcd", ...args] : ["etcd", ...args];
    const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
    proc.stderr!.on("data", (d) => { this.log = (this.log + d).slice(-20000); });
    this.#proc = proc;
    this.#exited = new Promise((r) => proc.once("exit", () => r()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const c = new Etcd3({ ...this.clientOptions(), dialTimeout: 1000 });
        try {
          await c.get("weft-probe").string();
        } finally {
          c.close();
        }
        return;
      } catch (err) {
        // Up: it answered, with auth on, or with a certificate a test made expired on purpose.
        if (/user name is empty|permission denied|certificate has expired/.test(String(err))) return;
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`etcd did not start: ${err}\n${this.log}`);
        await Bun.sleep(100);
      }
    }
  }

  /** Stops the server (SIGTERM) and waits for it to exit; data is kept for restart(). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const p = this.#proc;
    if (!p) return;
    p.kill(signal);
    await this.#exited;
    this.#proc = undefined;
  }

  /** A client for the test's own reads and writes (closed by destroy()). */
  client(): Etcd3 {
    this.#client ??= new Etcd3(this.clientOptions());
    return this.#client;
  }

  /** Compacts the history up to the current revision. */
  async compact(): Promise<bigint> {
    const c = this.client();
    const res = await c.kv.range({ key: Buffer.from("weft-probe") } as never);
    const rev = res.header.revision;
    await c.kv.compact({ revision: rev, physical: true } as never);
    return BigInt(rev);
  }

  /** Stops the server and removes its data. */
  async destroy(): Promise<void> {
    this.#client?.close();
    this.#client = undefined;
    await this.stop("SIGKILL");
    await this.#forward?.close();
    rmSync(this.dataDir, { recursive: true, force: true });
    running.delete(this);
  }
}

/** Destroys every server still running (afterAll / on failure). */
export async function stopAllEtcd(): Promise<void> {
  await Promise.all([...running].map((e) => e.destroy()));
}

process.on("exit", () => {
  for (const e of running) {
    try { e.stop("SIGKILL"); } catch { /* already gone */ }
  }
});
