/**
 * @module Fault: etcd dies silently (issue #13, items 2 and 10). Two hosts (vxlan) with a real
 * etcd in the underlay; etcd's link goes silent (every packet on the bridge to and from its port
 * dropped inside the underlay namespace: no FIN, no RST, as when its host loses power), etcd is
 * killed and restarted meanwhile (so the agents' old connections are gone on its side), then the
 * link comes back and a third host joins at once. The agents must notice the dead connection
 * within seconds (gRPC keepalive), say so in `/status`, `/metrics` and one log line, and program
 * the new host within 30 s of etcd's return (flanneld v0.20.2 and weft before: 5 minutes, at the
 * periodic re-list). Pings between the old hosts go on throughout: not one may be lost.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Cluster, type Host, type Pinger, exec, startPinger, wallMs } from "../support/netns.ts";
import { lost, report, whenProgrammed, whenWatch } from "./faults.ts";

const FAULT = "silent etcd";
/** How long etcd stays silent: longer than keepalive's detection (10 s + 5 s). */
const OUTAGE_MS = 20_000;

describe("etcd dies silently and comes back", () => {
  let c: Cluster;
  let h1: Host, h2: Host;
  let pinger: Pinger | undefined;
  const drop = (op: "-I" | "-D") => {
    for (const rule of [["INPUT", "-i", "br0", "-p", "tcp", "--dport", "2379"], ["OUTPUT", "-o", "br0", "-p", "tcp", "--sport", "2379"]]) {
      const r = exec(c.underlay, ["iptables", "-w", op, ...rule, "-j", "DROP"]);
      if (r.code !== 0) throw new Error(`iptables ${op} ${rule.join(" ")} in ${c.underlay}: ${r.stderr}`);
    }
  };

  beforeAll(async () => {
    c = await Cluster.create({ hosts: 2, backend: "vxlan", network: "10.6.0.0/16" });
    [h1, h2] = c.hosts as [Host, Host];
  }, 60_000);

  afterAll(async () => {
    await pinger?.stop().catch(() => {});
    await c?.destroy();
  }, 30_000);

  test("the agents notice within seconds, say so, and program a host that joins at etcd's return", async () => {
    const old = [h1, h2];
    await whenWatch(c, old, (w) => w.ok && w.healthy, wallMs(), 10_000, "a healthy watch");
    pinger = startPinger(h1.containers[0]!.ns, [h2.containers[0]!.ip], 50);

    // 1. Silence: the agents' connections go half-open; keepalive pings go unanswered.
    const silenced = wallMs();
    drop("-I");
    const detected = await whenWatch(c, old, (w) => !w.ok && !w.healthy, silenced, 30_000, "the watch reported lost");
    report(FAULT, "detection (watch lost in /status)", detected);
    const metrics = await (await c.fetch(h1, "/metrics")).text();
    expect(metrics).toContain("weft_watch_healthy 0\n");

    // 2. etcd's host "reboots" while silent: a new process, with the old connections unknown to it.
    await c.etcd.stop("SIGKILL");
    await c.etcd.restart();
    const left = OUTAGE_MS - (wallMs() - silenced);
    if (left > 0) await Bun.sleep(left);

    // 3. Back: a host joins right away; every old agent must program it.
    drop("-D");
    const back = wallMs();
    const h3 = await c.addHost({ containers: 1 });
    const joined = await whenProgrammed(c, old, h3.subnet, back, 30_000);
    report(FAULT, "convergence (new host programmed, since etcd's return)", joined);
    const healthy = await whenWatch(c, old, (w) => w.ok && w.healthy, back, 30_000, "the watch healthy again");
    report(FAULT, "watch healthy again (since etcd's return)", healthy);
    expect(await (await c.fetch(h1, "/metrics")).text()).toContain("weft_watch_healthy 1\n");

    // One log line for the loss and one for the return, not one per retry; and etcd never
    // refused the keepalive pings (GOAWAY too_many_pings would end the watch too).
    for (const h of old) {
      expect(h.log).not.toMatch(/too_many_pings|ENHANCE_YOUR_CALM/i);
      expect(h.log.match(/lease watch lost/g)?.length).toBe(1);
      expect(h.log).toMatch(/lease watch healthy on 192\.168\.77\.254:2379 \(after \d+\.\d s without\)/);
    }

    const { events } = await pinger.stop();
    pinger = undefined;
    report(FAULT, "pings lost h1 -> h2", `${lost(events).length} of ${events.length}`);
    expect(lost(events)).toEqual([]);
  }, 120_000);
});
