/**
 * @module tun_proxy.c in JavaScript, through weft's syscall layer (ffi/): the same design (one
 * thread, poll() on both fds, one packet per read/sendto and recvfrom/write, nothing else), run
 * by the same runtime as the agent. Beside the C proxy it splits weft's added RTT in two: what a
 * JavaScript runtime adds to each wake-up (JIT code, FFI thunks, the runtime's own memory, all
 * cold after an idle spell) and what weft's packet loop adds on top. Each flag gives it one trait
 * of weft's loop, to see what that trait costs:
 *   --worker       the loop runs in a Worker thread (the main thread idles), as weft's do;
 *   --mmsg         datagrams go through recvmmsg/sendmmsg (ffi/udp.ts UdpBatch), as weft's do;
 *   --wasm-buffer  the packet buffer lies inside a 54 MiB fixed WebAssembly.Memory, as weft's do;
 *   --core=MINE,PEER  each packet goes through weft's Wasm core (egress()/ingress(): checks,
 *                  TTL, peer lookup, anti-spoofing), with the core's memory as the buffers; MINE
 *                  and PEER are the two hosts' /24 subnets (10.71.1.0,10.71.2.0) in a /16;
 *                  (with recvfrom/sendto: --mmsg and --wasm-buffer do not apply);
 *   --ref-core     with --core: the TypeScript reference core (src/core/reference.ts) instead;
 *   --loop         with --core: not this file's loop but weft's own packet worker (WorkerPool,
 *                  worker.ts, PacketLoop with its warm-up, the peer given through a ControlLog),
 *                  without offloads (weft's "none" configuration), in a process that does nothing
 *                  else: what weft's loop costs apart from the agent around it (etcd, HTTP, netlink).
 * bench/udp_path.ts runs it with `--ref-js [worker,mmsg,wasm-buffer,core,ref-core,loop]`.
 *
 *   bun bench/ref/tun_proxy.ts [--worker] [--mmsg] [--wasm-buffer] [--core=MINE,PEER [--ref-core|--loop]] DEV LOCAL_IP PORT PEER_IP
 *   (prints "ready" once serving)
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { MSG_DONTWAIT, POLLFD_SIZE, POLLIN, pollRevents, setPollfd, sockaddrIn, structBuffer } from "../../ffi/linux.ts";
import { loadSys } from "../../ffi/sys.ts";
import { openTun } from "../../ffi/tun.ts";
import { openUdpSocket, UdpBatch } from "../../ffi/udp.ts";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import type { Core } from "../../src/core/types.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import { parseIPv4 } from "../../src/net/ip.ts";
import { ControlLog } from "../../src/backend/udp/control_log.ts";
import { coreWasmBytes } from "../../src/backend/udp/core_wasm.ts";
import { WorkerPool } from "../../src/backend/udp/worker_pool.ts";
import { createStatsBuffer } from "../../src/backend/udp/worker_stats.ts";
import { createLogger } from "../../src/log.ts";

const FLAGS = ["--worker", "--mmsg", "--wasm-buffer", "--ref-core", "--loop"];
const args: string[] = isMainThread ? process.argv.slice(2) : workerData;
const flags = new Set(args.filter((a) => a.startsWith("--")));
const [dev, localIP, portText, peerIP, ...rest] = args.filter((a) => !a.startsWith("--"));
const port = Number(portText);
const coreFlag = [...flags].find((f) => f.startsWith("--core="));
const coreNets = coreFlag?.slice("--core=".length).split(",").map((x) => parseIPv4(x, "--core subnet"));
const unknown = [...flags].filter((f) => !FLAGS.includes(f) && f !== coreFlag);
if ((flags.has("--ref-core") || flags.has("--loop")) && !coreNets) throw new RangeError("--ref-core and --loop need --core=MINE,PEER");
const besideLoop = [...flags].filter((f) => f !== "--loop" && f !== coreFlag);
if (flags.has("--loop") && besideLoop.length > 0) {
  throw new RangeError(`--loop runs weft's own worker and takes only --core=MINE,PEER, not ${besideLoop.join(" ")}`);
}
if (coreNets && coreNets.length !== 2) throw new RangeError(`${coreFlag}: two subnets wanted, this host's and its peer's (10.71.1.0,10.71.2.0)`);
if (!dev || !localIP || !peerIP || rest.length > 0 || unknown.length > 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`usage: tun_proxy.ts [${FLAGS.join("] [")}] [--core=MINE,PEER] DEV LOCAL_IP PORT PEER_IP (got ${JSON.stringify(args)}; PORT 1..65535)`);
  process.exit(2);
}

if (flags.has("--loop")) {
  await weftLoop();
} else if (isMainThread && flags.has("--worker")) {
  const w = new Worker(new URL(import.meta.url), { workerData: args });
  w.on("message", (m) => console.log(m));
  w.on("error", (e) => { console.error(e); process.exit(1); });
} else {
  const sys = await loadSys();
  const tun = openTun(sys, { name: dev }).fd;
  const s = openUdpSocket(sys, { ip: localIP, port });
  const peerAddr = parseIPv4(peerIP, "PEER_IP");
  const peer = sockaddrIn(peerAddr, port);
  const fds = structBuffer(2 * POLLFD_SIZE);
  setPollfd(fds, 0, tun, POLLIN);
  setPollfd(fds, 1, s, POLLIN);
  const core = coreNets ? await setUpCore(coreNets[0]!, coreNets[1]!) : null;
  const buf = core ? null : flags.has("--wasm-buffer")
    ? new Uint8Array(new WebAssembly.Memory({ initial: 864, maximum: 864 }).buffer, 16 << 20, 65536)
    : structBuffer(65536);
  if (parentPort) parentPort.postMessage("ready");
  else console.log("ready");
  if (core) coreLoop(core);
  else if (flags.has("--mmsg")) mmsgLoop(buf!);
  else plainLoop(buf!);

  /** weft's core (Wasm, or the TypeScript reference) with this host's lease and its one peer. */
  async function setUpCore(mine: number, theirs: number): Promise<Core> {
    const core = flags.has("--ref-core") ? createReferenceCore() : await loadCore();
    core.setOptions(0);
    core.setTunAddr4(mine);
    core.setClusterNetwork((mine & 0xffff0000) >>> 0, 16, 24);
    core.peerSet(1, peerAddr, port, theirs, 24);
    core.route4Insert(theirs, 24, 1);
    return core;
  }

  function plainLoop(buf: Uint8Array): never {
    for (;;) {
      if (sys.poll(fds, 2, -1) <= 0) continue;
      if (pollRevents(fds, 0) & POLLIN) {
        const n = sys.read(tun, buf);
        if (n > 0) sys.sendto(s, buf, n, 0, peer);
      }
      if (pollRevents(fds, 1) & POLLIN) {
        const n = sys.recvfrom(s, buf, buf.length, 0, null);
        if (n > 0) sys.write(tun, buf, n);
      }
    }
  }

  function mmsgLoop(buf: Uint8Array): never {
    const rx = new UdpBatch(sys, s, [buf]), tx = new UdpBatch(sys, s, [buf]);
    tx.setDestination(0, peerAddr, port);
    for (;;) {
      if (sys.poll(fds, 2, -1) <= 0) continue;
      if (pollRevents(fds, 0) & POLLIN) {
        const n = sys.read(tun, buf);
        if (n > 0) { tx.setLength(0, n); tx.send(1); }
      }
      if ((pollRevents(fds, 1) & POLLIN) && rx.recv(1, MSG_DONTWAIT) === 1) sys.write(tun, buf, rx.length(0));
    }
  }

  /** The plain loop with every packet through the core; the core's memory holds the packets. */
  function coreLoop(core: Core): never {
    const bytes = core.bytes, u32 = new Uint32Array(core.buffer);
    const egIn = bytes.subarray(L.EG_IN, L.EG_IN + 65536);
    const inIn = bytes.subarray(L.IN_IN + L.VNET_HDR_LEN, L.IN_IN + L.VNET_HDR_LEN + 65536);
    const from = structBuffer(16), fromWords = new Uint32Array(from.buffer);
    const eg = L.EG_IN_DESC >>> 2, udp = L.EG_UDP_DESC >>> 2, ing = L.IN_IN_DESC >>> 2, tunOut = L.IN_TUN_DESC >>> 2;
    // sendto() takes a buffer from its start: a view at the datagram's offset, made again only
    // when the core puts it elsewhere (one datagram per egress() call lands at the same place).
    let sendOff = -1, sendView = bytes;
    for (;;) {
      if (sys.poll(fds, 2, -1) <= 0) continue;
      if (pollRevents(fds, 0) & POLLIN) {
        const n = sys.read(tun, egIn);
        if (n > 0) {
          u32[eg] = L.EG_IN; u32[eg + 1] = n;
          core.egress(0, 1);
          if (core.egressUdpCount() === 1) {
            if (u32[udp] !== sendOff) { sendOff = u32[udp]!; sendView = bytes.subarray(sendOff); }
            sys.sendto(s, sendView, u32[udp + 1]!, 0, peer);
          }
        }
      }
      if (pollRevents(fds, 1) & POLLIN) {
        const n = sys.recvfrom(s, inIn, inIn.length, 0, from);
        if (n > 0) {
          u32[ing] = L.IN_IN + L.VNET_HDR_LEN; u32[ing + 1] = n; u32[ing + 2] = fromWords[1]!; u32[ing + 3] = 0;
          core.ingress(0, 1);
          if (core.ingressTunCount() === 1) sys.write(tun, bytes, u32[tunOut + 1]!, u32[tunOut]!);
        }
      }
    }
  }
}

/** `--loop`: weft's packet worker on this proxy's TUN and socket, its one peer sent through the control log. */
async function weftLoop(): Promise<void> {
  const sys = await loadSys();
  const tunFd = openTun(sys, { name: dev!, nonBlocking: true }).fd; // PacketLoop reads until EAGAIN
  const udpFd = openUdpSocket(sys, { ip: localIP!, port });
  const [mine, theirs] = coreNets as [number, number];
  const control = new ControlLog(1);
  const pool = new WorkerPool({
    url: new URL("../../src/backend/udp/worker.ts", import.meta.url).href, wasm: await coreWasmBytes(),
    control, stats: createStatsBuffer(1), log: createLogger(), failed: () => {}, fdOpen: () => true,
  }, [{ tunFd, udpFd, vnetHdr: false, gso: false, gro: false, ifaceMtu: 1500 }]);
  await pool.start();
  await control.append([
    { op: "cluster", network: (mine & 0xffff0000) >>> 0, networkLen: 16, subnetLen: 24 },
    { op: "tunAddr", addr: mine },
    { op: "peerSet", id: 1, ip: parseIPv4(peerIP!, "PEER_IP"), port, subnet: theirs, len: 24 },
    { op: "routeInsert", prefix: theirs, len: 24, id: 1 },
  ], () => true);
  console.log("ready");
}
