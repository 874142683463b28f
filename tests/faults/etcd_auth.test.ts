/**
 * etcd with user/password authentication and roles limited to the prefix, as a careful admin sets
 * it up: a role that may only read `<prefix>/` (the agent must exit 1 at once, naming the key and
 * the missing permission, instead of 10 opaque attempts), a role that may also write
 * `<prefix>/subnets/` (the agent works), a wrong password, no user, and an admin command writing
 * where the role may not. One real etcd (no etcdctl on Debian's etcd-server: the roles are made
 * with etcd3's auth API, as `etcdctl role grant-permission --prefix` would).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Etcd3 } from "etcd3";
import { AgentProcess, runWeft } from "../support/agent.ts";
import { EtcdServer } from "../support/etcd.ts";

let etcd: EtcdServer;
let dir: string;
const agents: AgentProcess[] = [];
const PREFIX = "/auth/network";
const CONFIG = `{"Network":"10.8.0.0/16","Backend":{"Type":"alloc"}}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-auth-"));
  etcd = await EtcdServer.start();
  const root = new Etcd3(etcd.clientOptions());
  try {
    await root.put(`${PREFIX}/config`).value(CONFIG);
    await (await root.user("root").create("root-pw")).addRole("root");
    const reader = await root.role("weft-reader").create();
    await reader.grant({ permission: "Read", range: root.range({ prefix: `${PREFIX}/` }) });
    const agent = await root.role("weft-agent").create();
    await agent.grant({ permission: "Read", range: root.range({ prefix: `${PREFIX}/` }) });
    await agent.grant({ permission: "Readwrite", range: root.range({ prefix: `${PREFIX}/subnets/` }) });
    await (await root.user("reader").create("reader-pw")).addRole("weft-reader");
    await (await root.user("weft").create("weft-pw")).addRole("weft-agent");
    await root.auth.authEnable();
  } finally {
    root.close();
  }
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await etcd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const as = (user?: string, password?: string) => [
  `--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${PREFIX}`,
  ...(user ? [`--etcd-username=${user}`, `--etcd-password=${password}`] : []),
];

async function agent(name: string, ip: string, user: string, password: string): Promise<AgentProcess> {
  const a = await AgentProcess.start({ etcd: etcd.endpoint, subnetFile: join(dir, name, "subnet.env"), publicIP: ip, extraArgs: as(user, password).slice(1) });
  agents.push(a);
  return a;
}

describe("etcd with auth and roles limited to the prefix", () => {
  test("a role that may only read the subnets: exit 1 at the first refusal, naming the key and the permission", async () => {
    const a = await agent("reader", "127.0.8.1", "reader", "reader-pw");
    expect(await a.exited).toBe(1);
    const refusal = a.log.match(/^E.* weft\] (etcd at .*)$/m)?.[1];
    expect(refusal).toMatch(new RegExp(`^etcd at ${etcd.endpoint.replaceAll(".", "\\.")} denied write permission on ` +
      `${PREFIX}/subnets/10\\.8\\.\\d+\\.0-24 to etcd user "reader": grant a role of "reader" readwrite on the prefix ${PREFIX}/subnets/, e\\.g\\. ` +
      `etcdctl role grant-permission ROLE --prefix=true readwrite ${PREFIX}/subnets/$`));
    // Final: no second attempt, no other subnet tried, no retry loop.
    expect(a.log).not.toMatch(/attempt 2\/|retrying|max retries/);
    expect(a.log).not.toMatch(/PERMISSION_DENIED|etcdserver:/);
    // Nothing was written, and the lease granted for the create was revoked.
    const root = new Etcd3({ ...etcd.clientOptions(), auth: { username: "root", password: "root-pw" } });
    try {
      expect(await root.getAll().prefix(`${PREFIX}/subnets/`).keys()).toEqual([]);
      expect((await root.leaseClient.leaseLeases({} as never)).leases).toEqual([]);
    } finally {
      root.close();
    }
  }, 30_000);

  test("a role that may write the subnets: the agent takes a lease", async () => {
    const a = await (await agent("weft", "127.0.8.2", "weft", "weft-pw")).ready();
    expect((await a.status()).lease.subnet).toMatch(/^10\.8\.\d+\.0\/24$/);
    const list = await runWeft([...as("reader", "reader-pw"), "leases", "list", "--json"]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { publicIP: string }[]).map((l) => l.publicIP)).toEqual(["127.0.8.2"]);
    expect(await a.stop()).toBe(0);
  }, 30_000);

  test("an admin command writing where the role may not: the key, the permission and the grant that is missing", async () => {
    const r = await runWeft([...as("weft", "weft-pw"), "config", "set", "-"], { stdin: CONFIG });
    expect({ code: r.code, stderr: r.stderr }).toEqual({
      code: 1,
      stderr: `etcd at ${etcd.endpoint} denied write permission on ${PREFIX}/config to etcd user "weft": grant a role of "weft" readwrite on it, ` +
        `e.g. etcdctl role grant-permission ROLE readwrite ${PREFIX}/config\n`,
    });
  });

  test("a wrong password, and no user at all: one line saying which flags", async () => {
    const wrong = await runWeft([...as("weft", "not-the-password"), "config", "get"]);
    expect({ code: wrong.code, stderr: wrong.stderr }).toEqual({
      code: 1, stderr: `etcd at ${etcd.endpoint} refused the login of user "weft": wrong user name or password (--etcd-username, --etcd-password)\n`,
    });
    expect(wrong.stderr).not.toContain("not-the-password");
    const none = await runWeft([...as(), "leases", "list"]);
    expect({ code: none.code, stderr: none.stderr }).toEqual({
      code: 1, stderr: `etcd at ${etcd.endpoint} requires authentication: give --etcd-username and --etcd-password\n`,
    });
  });
});
