/**
 * etcd over TLS, by IP address and by name, with certificates made here by openssl: server
 * authentication, client-certificate authentication, and each way it can be wrong (another CA, an
 * address the certificate does not name, no or a stranger's client certificate, an expired
 * certificate, missing or mismatched files). The agent (dist/weft) and the admin commands (dist/weft,
 * and once under Deno) run against one real etcd that requires client certificates and listens on
 * 127.0.0.1 (in its certificate) and 127.0.0.2 (not); a second one serves an expired certificate.
 * Every failure must be one line naming the endpoint (or the flag and file) and the problem.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, type Runtime, runWeft, waitFor } from "../support/agent.ts";
import { EtcdServer } from "../support/etcd.ts";
import { type TestPki, makeTestPki } from "../support/test_pki.ts";

let pki: TestPki;
let etcd: EtcdServer;
let expired: EtcdServer;
let dir: string;
const agents: AgentProcess[] = [];
const PREFIX = "/tls/network";
const CONFIG = `{"Network":"10.7.0.0/16","Backend":{"Type":"alloc"}}`;

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), "weft-tls-"));
  const tls = { certFile: pki.server.cert, keyFile: pki.server.key, caFile: pki.ca };
  [etcd, expired] = await Promise.all([
    EtcdServer.start({ tls: { ...tls, clientCertAuth: true, clientCertFile: pki.client.cert, clientKeyFile: pki.client.key }, extraHosts: ["127.0.0.2"] }),
    EtcdServer.start({ tls: { ...tls, certFile: pki.expiredServer.cert } }),
  ]);
  await etcd.client().put(`${PREFIX}/config`).value(CONFIG);
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await etcd?.destroy();
  await expired?.destroy();
  pki?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The TLS flags for the right files, with `over` replacing some. */
function tlsFlags(over: { ca?: string; cert?: string | null; key?: string | null } = {}): string[] {
  const cert = over.cert === undefined ? pki.client.cert : over.cert;
  const key = over.key === undefined ? pki.client.key : over.key;
  return [`--etcd-cafile=${over.ca ?? pki.ca}`, ...(cert ? [`--etcd-certfile=${cert}`] : []), ...(key ? [`--etcd-keyfile=${key}`] : [])];
}

function admin(endpoint: string, flags: string[], args: string[], runtime: Runtime = "binary", stdin?: string) {
  return runWeft([`--etcd-endpoints=${endpoint}`, `--etcd-prefix=${PREFIX}`, ...flags, ...args], { runtime, stdin });
}

/** Exit 1 with exactly one line on stderr, which is returned. */
function oneLineFailure(r: { code: number; stdout: string; stderr: string }): string {
  expect({ code: r.code, lines: r.stderr.trim().split("\n").length }).toEqual({ code: 1, lines: 1 });
  expect(r.stderr).not.toMatch(/UNAVAILABLE|Resolution note|circuit breaker|ERR_INVALID_ARG_VALUE|ENOENT|\n\s+at /);
  return r.stderr.trim();
}

describe("etcd over TLS", () => {
  test("by IP address: server and client certificates verified (IP SAN); the agent and the admin commands work", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const set = await admin(ep, tlsFlags(), ["config", "set", "-"], "binary", CONFIG);
    expect(set.stderr).toContain("network config stored");
    expect(set.code).toBe(0);
    const get = await admin(ep, tlsFlags(), ["config", "get"]);
    expect({ code: get.code, stdout: get.stdout, stderr: get.stderr }).toEqual({ code: 0, stdout: `${CONFIG}\n`, stderr: "" });
    // The sources under Deno take the same path (node:tls there refuses an IP ServerName too).
    const deno = await admin(ep, tlsFlags(), ["config", "get"], "deno");
    expect({ code: deno.code, stdout: deno.stdout }).toEqual({ code: 0, stdout: `${CONFIG}\n` });

    const a = await AgentProcess.start({
      etcd: ep, subnetFile: join(dir, "ip", "subnet.env"), publicIP: "127.0.7.1",
      extraArgs: [`--etcd-prefix=${PREFIX}`, ...tlsFlags()],
    });
    agents.push(a);
    await a.ready();
    const subnet = (await a.status()).lease.subnet as string;
    expect(subnet).toMatch(/^10\.7\.\d+\.0\/24$/);
    const list = await admin(ep, tlsFlags(), ["leases", "list", "--json"]);
    expect((JSON.parse(list.stdout) as { subnet: string }[]).map((l) => l.subnet)).toContain(subnet);
    expect(await a.stop()).toBe(0);
  }, 60_000);

  test("by name: the certificate's DNS SAN is checked", async () => {
    const r = await admin(etcd.endpointAt("localhost"), tlsFlags(), ["config", "get"]);
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({ code: 0, stdout: `${CONFIG}\n`, stderr: "" });
  });

  test("an IP address the certificate does not name is refused, saying which names it has", async () => {
    const ep = etcd.endpointAt("127.0.0.2");
    const line = oneLineFailure(await admin(ep, tlsFlags(), ["config", "get"]));
    expect(line).toBe(`TLS with etcd at ${ep} failed: its certificate is not valid for IP address 127.0.0.2 ` +
      `(it names IP Address:127.0.0.1, DNS:localhost); an endpoint given by IP address needs "IP:127.0.0.2" in the certificate's subjectAltName, or use an endpoint it names`);
  });

  test("a server certificate from another CA is refused, naming --etcd-cafile", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const line = oneLineFailure(await admin(ep, tlsFlags({ ca: pki.otherCa }), ["config", "get"]));
    expect(line).toBe(`TLS with etcd at ${ep} failed: its certificate (issued by "weft-test-ca") is not signed by the CA in --etcd-cafile ${pki.otherCa}; give the CA that signed etcd's certificate`);
  });

  test("an expired server certificate is refused, with its date", async () => {
    const ep = expired.endpointAt("127.0.0.1");
    const line = oneLineFailure(await admin(ep, tlsFlags(), ["config", "get"]));
    expect(line).toMatch(new RegExp(`^TLS with etcd at ${ep.replaceAll(".", "\\.")} failed: its certificate expired on \\w+ +\\d+ [\\d:]+ \\d{4} GMT; renew etcd's server certificate$`));
  });

  test("without a client certificate etcd refuses the handshake: the flags to give are named", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const line = oneLineFailure(await admin(ep, tlsFlags({ cert: null, key: null }), ["config", "get"]));
    expect(line).toStartWith(`TLS with etcd at ${ep} failed: etcd refused the handshake`);
    expect(line).toEndWith("it requires a client certificate: give --etcd-certfile and --etcd-keyfile");
  });

  test("a client certificate from a CA etcd does not trust is refused, naming the file", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const line = oneLineFailure(await admin(ep, tlsFlags({ cert: pki.strangerClient.cert, key: pki.strangerClient.key }), ["config", "get"]));
    expect(line).toStartWith(`TLS with etcd at ${ep} failed: etcd refused the handshake`);
    expect(line).toContain(`it did not accept the client certificate ${pki.strangerClient.cert} (--etcd-certfile)`);
  });

  test("the agent shows the same message in its log and /status while it waits for etcd", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const a = await AgentProcess.start({
      etcd: ep, subnetFile: join(dir, "wrong-ca", "subnet.env"), publicIP: "127.0.7.2",
      extraArgs: [`--etcd-prefix=${PREFIX}`, ...tlsFlags({ ca: pki.otherCa })],
    });
    agents.push(a);
    const status = await waitFor(async () => {
      const s = await a.status().catch(() => undefined);
      return s?.etcd?.error ? s : undefined;
    }, "etcd.error in /status");
    const want = `TLS with etcd at ${ep} failed: its certificate (issued by "weft-test-ca") is not signed by the CA in --etcd-cafile ${pki.otherCa}`;
    expect(status.etcd.error).toStartWith(want);
    expect(a.log).toContain(want);
    expect(a.log).not.toMatch(/UNAVAILABLE|Resolution note|circuit breaker/);
    expect(await a.stop()).toBe(0);
  }, 30_000);

  test("a missing or mismatched TLS file: one line naming the flag and the path, before any connection", async () => {
    const ep = etcd.endpointAt("127.0.0.1");
    const missing = join(dir, "no-such-ca.pem");
    expect(oneLineFailure(await admin(ep, tlsFlags({ ca: missing }), ["config", "get"]))).toBe(`--etcd-cafile: cannot read ${missing}: no such file`);
    expect(oneLineFailure(await admin(ep, tlsFlags({ cert: join(dir, "none.crt") }), ["leases", "list"]))).toBe(`--etcd-certfile: cannot read ${join(dir, "none.crt")}: no such file`);
    expect(oneLineFailure(await admin(ep, tlsFlags({ key: pki.server.key }), ["config", "get"])))
      .toBe(`--etcd-keyfile ${pki.server.key} is not the private key of --etcd-certfile ${pki.client.cert}`);
    expect(oneLineFailure(await admin(ep, tlsFlags({ key: null }), ["config", "get"])))
      .toBe(`--etcd-certfile ${pki.client.cert} needs --etcd-keyfile (the client certificate's private key)`);

    // The agent: exit 1 at once, the same line in its log, no stack.
    const a = await AgentProcess.start({
      etcd: ep, subnetFile: join(dir, "missing", "subnet.env"), publicIP: "127.0.7.3",
      extraArgs: [`--etcd-prefix=${PREFIX}`, ...tlsFlags({ ca: missing })],
    });
    agents.push(a);
    expect(await a.exited).toBe(1);
    expect(a.log).toMatch(new RegExp(`^E.* weft\\] --etcd-cafile: cannot read ${missing.replaceAll(".", "\\.")}: no such file$`, "m"));
    expect(a.log).not.toMatch(/ENOENT|\n\s+at |\^/);
  }, 30_000);

  // Last: it turns auth on for the shared etcd.
  test("user and password over TLS by IP: the login goes over the same verified connection", async () => {
    const c = etcd.client();
    await (await c.user("root").create("root-pw")).addRole("root");
    const role = await c.role("weft-tls").create();
    await role.grant({ permission: "Read", range: c.range({ prefix: `${PREFIX}/` }) });
    await (await c.user("weft").create("weft-pw")).addRole("weft-tls");
    await c.auth.authEnable();
    const ep = etcd.endpointAt("127.0.0.1");
    const ok = await admin(ep, [...tlsFlags(), "--etcd-username=weft", "--etcd-password=weft-pw"], ["config", "get"]);
    expect({ code: ok.code, stdout: ok.stdout, stderr: ok.stderr }).toEqual({ code: 0, stdout: `${CONFIG}\n`, stderr: "" });
    const wrong = await admin(ep, [...tlsFlags(), "--etcd-username=weft", "--etcd-password=nope"], ["config", "get"]);
    expect(oneLineFailure(wrong)).toBe(`etcd at ${ep} refused the login of user "weft": wrong user name or password (--etcd-username, --etcd-password)`);
  });
});
