/**
 * @module `weft docker-opts` against flannel's mk-docker-opts.sh: the compat §5 example as a
 * byte-exact fixture, each flag, the environment merge, the FLANNEL_IPMASQ check and the
 * routing-table check on a /proc/net/route fixture (captured from a namespace holding
 * `10.1.74.0/24 via 192.168.5.1` and `110.1.74.0/24 via 192.168.5.1 metric 5`; the outputs were
 * compared with the script run under dash on the same inputs).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { conflictingRoutes, parseDockerOptsArgs, runDockerOpts, viaRoutes } from "../../src/docker_opts.ts";

const ROUTES_CLEAN =
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT     \n" +
  "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0     \n" +
  "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0     \n";
const ROUTES_CONFLICT =
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT     \n" +
  "v0\t004A010A\t0105A8C0\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0     \n" +
  "v0\t004A016E\t0105A8C0\t0003\t0\t0\t5\t00FFFFFF\t0\t0\t0     \n" +
  "v0\t0005A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0     \n";

let dir = "";
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "weft-docker-opts-"));
  writeFileSync(join(dir, "subnet.env"),
    "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n");
  writeFileSync(join(dir, "route.clean"), ROUTES_CLEAN);
  writeFileSync(join(dir, "route.conflict"), ROUTES_CONFLICT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the command with `-f <dir>/subnet.env -d <dir>/out.env` and returns code, file, stderr. */
async function dockerOpts(flags: string[], env: Record<string, string> = {}, routes = "route.clean", envFile = "subnet.env") {
  const out = join(dir, "out.env");
  rmSync(out, { force: true });
  let stderr = "";
  const code = await runDockerOpts(["-f", join(dir, envFile), "-d", out, ...flags], {
    env, routeFile: join(dir, routes), stderr: (t) => { stderr += t; },
  });
  let file: string | undefined;
  try { file = readFileSync(out, "utf8"); } catch { /* not written */ }
  return { code, file, stderr };
}

describe("runDockerOpts()", () => {
  test("reproduces the compat §5 example byte for byte", async () => {
    const r = await dockerOpts([]);
    expect(r.code).toBe(0);
    expect(r.file).toBe(
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\n' +
        'DOCKER_OPT_IPMASQ="--ip-masq=true"\n' +
        'DOCKER_OPT_MTU="--mtu=1472"\n' +
        'DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n',
    );
  });

  test("-i writes only the individual variables, -c only the combined one, -ic both", async () => {
    expect((await dockerOpts(["-i"])).file).toBe(
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\nDOCKER_OPT_MTU="--mtu=1472"\n');
    expect((await dockerOpts(["-c"])).file).toBe('DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n');
    expect((await dockerOpts(["-ic"])).file).toBe((await dockerOpts([])).file);
  });

  test("-m leaves --ip-masq out; FLANNEL_IPMASQ=true gives --ip-masq=false", async () => {
    expect((await dockerOpts(["-m", "-c"])).file).toBe('DOCKER_OPTS=" --bip=10.1.74.1/24 --mtu=1472"\n');
    expect((await dockerOpts(["-c"], { FLANNEL_IPMASQ: "true" }, "route.clean", "absent.env")).file)
      .toBe('DOCKER_OPTS=" --ip-masq=false"\n');
  });

  test("-k names the combined key and prepends its value from the environment, plus a space", async () => {
    expect((await dockerOpts(["-c", "-k", "FOO"], { FOO: "-H unix:///x  --debug" })).file)
      .toBe('FOO="-H unix:///x  --debug  --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n');
    expect((await dockerOpts(["-ckBAR"])).file).toBe('BAR=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n');
  });

  test("DOCKER_OPT_* variables from the environment join in name order, words re-joined as echo does", async () => {
    const r = await dockerOpts([], { DOCKER_OPT_DNS: "--dns=8.8.8.8", DOCKER_OPT_ZZ: "  --a   --b ", OTHER: "x" });
    expect(r.file).toBe(
      'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\nDOCKER_OPT_DNS="--dns=8.8.8.8"\nDOCKER_OPT_IPMASQ="--ip-masq=true"\n' +
        'DOCKER_OPT_MTU="--mtu=1472"\nDOCKER_OPT_ZZ="--a --b"\n' +
        'DOCKER_OPTS=" --bip=10.1.74.1/24 --dns=8.8.8.8 --ip-masq=true --mtu=1472 --a --b"\n',
    );
  });

  test("a missing env file: the script's output and exit 0, and stderr says what is missing", async () => {
    const absent = await dockerOpts([], {}, "route.clean", "absent.env");
    expect([absent.code, absent.file]).toEqual([0, 'DOCKER_OPTS=""\n']);
    expect(absent.stderr).toBe(`weft docker-opts: ${join(dir, "absent.env")} does not exist; ${join(dir, "out.env")} gets no --bip or --mtu option ` +
      "(the agent (weft or flanneld) writes it once it holds a subnet lease)\n");
    const fromEnv = await dockerOpts(["-c"], { FLANNEL_SUBNET: "10.9.9.1/24", FLANNEL_MTU: "1400" }, "route.clean", "absent.env");
    expect(fromEnv.file).toBe('DOCKER_OPTS=" --bip=10.9.9.1/24 --mtu=1400"\n');
    expect(fromEnv.stderr).toContain("absent.env does not exist; using FLANNEL_* from the environment");
  });

  test("an env file without FLANNEL_MTU: written without --mtu, and stderr names the key", async () => {
    writeFileSync(join(dir, "nomtu.env"), "FLANNEL_SUBNET=10.1.74.1/24\n");
    const r = await dockerOpts(["-c"], {}, "route.clean", "nomtu.env");
    expect([r.code, r.file]).toEqual([0, 'DOCKER_OPTS=" --bip=10.1.74.1/24"\n']);
    expect(r.stderr).toBe(`weft docker-opts: ${join(dir, "nomtu.env")} has no FLANNEL_MTU; ${join(dir, "out.env")} gets no --mtu option\n`);
    expect((await dockerOpts([])).stderr).toBe(""); // a complete file: nothing to say
  });

  test("an invalid FLANNEL_IPMASQ exits 1 before writing", async () => {
    writeFileSync(join(dir, "bad.env"), "FLANNEL_SUBNET=10.1.74.1/24\nFLANNEL_IPMASQ=yes\n");
    const r = await dockerOpts([], {}, "route.clean", "bad.env");
    expect([r.code, r.file, r.stderr]).toEqual([1, undefined, "Invalid value of FLANNEL_IPMASQ: yes\n"]);
  });

  test("a via route for the subnet: file written, then exit 1 naming the routes (grep matches 110.1.74.0/24 too)", async () => {
    const r = await dockerOpts([], {}, "route.conflict");
    expect(r.code).toBe(1);
    expect(r.file).toContain('DOCKER_OPTS=" --bip=10.1.74.1/24');
    expect(r.stderr).toBe("Your routing table already contains the subnet: 10.1.74.0/24 via 192.168.5.1 dev v0 \n" +
      "110.1.74.0/24 via 192.168.5.1 dev v0 metric 5 \n");
  });

  test("bad options print the usage and exit 1", async () => {
    for (const flag of ["-x", "-h"]) {
      const r = await dockerOpts([flag]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("Generate Docker daemon options based on flannel env file");
    }
    expect(parseDockerOptsArgs(["-k"])).toEqual({ error: expect.stringContaining("No arg for -k option") });
  });
});

describe("parseDockerOptsArgs()", () => {
  test("has the script's defaults and stops at -- or the first operand", () => {
    expect(parseDockerOptsArgs([])).toEqual({
      flannelEnv: "/run/flannel/subnet.env", dockerEnv: "/run/docker_opts.env",
      individual: true, combined: true, ipMasq: true, key: "DOCKER_OPTS",
    });
    expect(parseDockerOptsArgs(["-i", "--", "-c"])).toMatchObject({ individual: true, combined: false });
    expect(parseDockerOptsArgs(["-i", "x", "-c"])).toMatchObject({ individual: true, combined: false });
  });
});

describe("viaRoutes() / conflictingRoutes()", () => {
  test("render /proc/net/route gateway routes as ip route prints them", () => {
    expect(viaRoutes(ROUTES_CLEAN)).toEqual(["default via 192.0.2.1 dev eth0 "]);
    expect(conflictingRoutes("10.1.74.1/24", ROUTES_CLEAN)).toEqual([]);
    expect(conflictingRoutes("10.1.74.1/24", ROUTES_CONFLICT)).toHaveLength(2);
    expect(conflictingRoutes("10.1.75.1/24", ROUTES_CONFLICT)).toEqual([]);
  });
});
