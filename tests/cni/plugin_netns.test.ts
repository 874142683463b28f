/**
 * @module The flannel CNI plugin end to end, as a runtime drives it: weft runs inside a "host"
 * network namespace (`ip netns exec`) with Debian's real bridge/host-local plugins as delegates,
 * wires two "container" namespaces onto cni0 from a subnet.env, and the containers ping each
 * other; CHECK, DEL (IP freed, veth gone) and the error replies are checked on the real result.
 * Everything (namespaces, plugin dataDir, host-local store) lives in per-run names and a temp
 * dir, removed in afterAll. Runs tests/cni/run_plugin.ts as the plugin, or the executable named
 * by WEFT_CNI_PLUGIN (the compiled dist/weft).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cniExec, makeCniBinDir, type CniCall } from "./cni_exec.ts";
import { addNetns, delNetns, ipJson, isRoot, netnsPath, uniqueName } from "../support/ns.ts";
import { tcpReachable } from "./tcp_reachable.ts";

const hasPlugins = existsSync("/usr/lib/cni/bridge") && existsSync("/usr/lib/cni/host-local");
const suite = isRoot && hasPlugins ? describe : describe.skip;

const SUBNET_ENV = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";

suite("flannel CNI plugin with the reference bridge/host-local in namespaces", () => {
  const host = uniqueName("cni", "h");
  const c1 = uniqueName("cni", "c1");
  const c2 = uniqueName("cni", "c2");
  let tmp = "";
  let binDir = "";
  let subnetFile = "";
  let dataDir = "";
  let ipamDir = "";

  const netconf = (cniVersion: string, extra: object = {}) => ({
    cniVersion, name: "cbr0", type: "flannel", subnetFile, dataDir,
    delegate: { hairpinMode: true, isDefaultGateway: true },
    ipam: { dataDir: ipamDir },
    ...extra,
  });
  const call = (c: Partial<CniCall> & Pick<CniCall, "command" | "config">) =>
    cniExec({ hostNs: host, binDir, ifName: "eth0", ...c });

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), "weft-cni-"));
    binDir = join(tmp, "bin");
    mkdirSync(binDir);
    makeCniBinDir(binDir, process.env.WEFT_CNI_PLUGIN); // e.g. WEFT_CNI_PLUGIN=$PWD/dist/weft
    subnetFile = join(tmp, "run", "subnet.env");
    mkdirSync(join(tmp, "run"));
    writeFileSync(subnetFile, SUBNET_ENV);
    dataDir = join(tmp, "flannel");
    ipamDir = join(tmp, "ipam");
    for (const ns of [host, c1, c2]) addNetns(ns);
  });

  afterAll(() => {
    for (const ns of [c1, c2, host]) delNetns(ns);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  let result1: any;
  let ip1 = "";
  let ip2 = "";

  test("ADD wires container 1 onto cni0 with an address in the node subnet, the MTU and the cluster route", () => {
    const r = call({ command: "ADD", containerId: "ctr-one", netns: netnsPath(c1), config: netconf("1.0.0") });
    expect(r.stderr).toContain("delegateAdd: netconf sent to delegate plugin:");
    expect(r.code).toBe(0);
    result1 = r.json;
    expect(result1.cniVersion).toBe("1.0.0");
    ip1 = result1.ips[0].address.split("/")[0];
    expect(result1.ips[0].address).toMatch(/^10\.244\.1\.\d+\/24$/);
    expect(result1.ips[0].gateway).toBe("10.244.1.1");

    const [eth0] = ipJson<any[]>(c1, "addr", "show", "dev", "eth0");
    expect(eth0.mtu).toBe(1450);
    expect(eth0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain(`${ip1}/24`);
    const routes = ipJson<any[]>(c1, "route", "show");
    expect(routes).toContainEqual(expect.objectContaining({ dst: "10.244.0.0/16", gateway: "10.244.1.1" }));
    expect(routes).toContainEqual(expect.objectContaining({ dst: "default", gateway: "10.244.1.1" }));

    const [cni0] = ipJson<any[]>(host, "addr", "show", "dev", "cni0");
    expect(cni0.addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain("10.244.1.1/24");
    expect(existsSync(join(ipamDir, "cbr0", ip1))).toBe(true);
  }, 60_000);

  test("ADD saves the rendered delegate config under dataDir (dir 0700, file 0600)", () => {
    const path = join(dataDir, "ctr-one");
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, "utf8")).toBe(
      `{"cniVersion":"1.0.0","hairpinMode":true,"ipMasq":false,"ipam":{"dataDir":${JSON.stringify(ipamDir)},` +
        '"ranges":[[{"subnet":"10.244.1.0/24"}]],"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},' +
        '"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
  });

  test("ADD with a 0.3.1 conflist wires container 2 and the containers reach each other", async () => {
    const r = call({ command: "ADD", containerId: "ctr-two", netns: netnsPath(c2), config: netconf("0.3.1") });
    expect(r.code).toBe(0);
    expect(r.json.cniVersion).toBe("0.3.1");
    ip2 = r.json.ips[0].address.split("/")[0];
    expect(r.json.ips[0].version).toBe("4");
    expect(ip2).not.toBe(ip1);
    expect(await tcpReachable(c2, c1, ip2)).toBe(true);
    expect(await tcpReachable(c1, c2, ip1)).toBe(true);
  }, 60_000);

  test("CHECK passes for a wired container with the runtime's prevResult", () => {
    const r = call({ command: "CHECK", containerId: "ctr-one", netns: netnsPath(c1), config: netconf("1.0.0", { prevResult: result1 }) });
    expect(r.stdout + r.stderr).toBe(r.stderr);
    expect(r.code).toBe(0);
  }, 60_000);

  test("CHECK reports what the bridge finds wrong, and refuses pre-0.4.0 configs", () => {
    const wrong = { ...result1, ips: [{ ...result1.ips[0], address: "10.244.1.250/24" }] };
    const bad = call({ command: "CHECK", containerId: "ctr-one", netns: netnsPath(c1), config: netconf("1.0.0", { prevResult: wrong }) });
    expect(bad.code).toBe(1);
    expect(bad.json.msg).toBeTruthy();
    const old = call({ command: "CHECK", containerId: "ctr-two", netns: netnsPath(c2), config: netconf("0.3.1") });
    expect(old.code).toBe(1);
    expect(old.json).toEqual({ cniVersion: "0.3.1", code: 1, msg: "config version does not allow CHECK", details: "" });
    const unknown = call({ command: "CHECK", containerId: "nobody", netns: netnsPath(c1), config: netconf("1.0.0", { prevResult: result1 }) });
    expect(unknown.json.code).toBe(3);
  }, 60_000);

  test("DEL removes the veth, frees the IP and forgets the saved config; a second DEL succeeds", () => {
    const hostVeths = () => ipJson<any[]>(host, "link", "show", "type", "veth").length;
    expect(hostVeths()).toBe(2);
    const r = call({ command: "DEL", containerId: "ctr-one", netns: netnsPath(c1), config: netconf("1.0.0") });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(existsSync(join(ipamDir, "cbr0", ip1))).toBe(false);
    expect(existsSync(join(dataDir, "ctr-one"))).toBe(false);
    expect(ipJson<any[]>(c1, "link", "show").map((l) => l.ifname)).toEqual(["lo"]);
    expect(hostVeths()).toBe(1);
    expect(call({ command: "DEL", containerId: "ctr-one", netns: netnsPath(c1), config: netconf("1.0.0") }).code).toBe(0);
    // A runtime may call DEL without a netns once the container is gone.
    const r2 = call({ command: "DEL", containerId: "ctr-two", config: netconf("0.3.1") });
    expect(r2.code).toBe(0);
    expect(existsSync(join(ipamDir, "cbr0", ip2))).toBe(false);
  }, 60_000);

  describe("errors: spec error JSON on stdout, exit code 1", () => {
    const add = (config: object | string, env: Record<string, string> = {}, netns = netnsPath(c1)) =>
      call({ command: "ADD", containerId: "ctr-err", netns, config, env });

    test("missing subnet.env: flannel's message, code 11 (try again later)", () => {
      const r = add(netconf("0.3.1", { subnetFile: join(tmp, "absent", "subnet.env") }));
      expect(r.code).toBe(1);
      expect(r.json).toEqual({
        cniVersion: "0.3.1", code: 11, details: "",
        msg: `failed to load flannel 'subnet.env' file: open ${join(tmp, "absent", "subnet.env")}: no such file or directory. ` +
          "Check the flannel pod log for this node.",
      });
    }, 30_000);

    test("malformed config: decoding failure (6), missing name (7), bad field type (7), unsupported version (1)", () => {
      const cases: [object | string, number, string][] = [
        ["{not json", 6, "error unmarshall network config: "],
        [{ cniVersion: "0.3.1", type: "flannel" }, 7, "missing network name"],
        [{ ...netconf("0.3.1"), dataDir: 7 }, 7, 'failed to load flannel netconf file: invalid flannel netconf: "dataDir" must be a string, got number 7'],
        [{ ...netconf("0.3.1"), delegate: { name: "x" } }, 7, "'delegate' dictionary must not have 'name' field"],
        [netconf("2.0.0"), 1, "incompatible CNI versions"],
      ];
      for (const [config, code, msg] of cases) {
        const r = add(config);
        expect(r.code).toBe(1);
        expect(r.json.code).toBe(code);
        expect(r.json.msg.startsWith(msg)).toBe(true);
      }
    }, 30_000);

    test("bad CNI_NETNS: code 4 naming the path; the plugin's own netns: code 8", () => {
      const r = add(netconf("1.0.0"), {}, "/var/run/netns/weft-does-not-exist");
      expect(r.code).toBe(1);
      expect(r.json.code).toBe(4);
      expect(r.json.msg).toBe('failed to open netns "/var/run/netns/weft-does-not-exist": failed to Statfs ' +
        '"/var/run/netns/weft-does-not-exist": no such file or directory');
      const notNs = add(netconf("1.0.0"), {}, subnetFile);
      expect([notNs.json.code, notNs.json.msg.includes("unknown FS magic")]).toEqual([4, true]);
      const own = add(netconf("1.0.0"), {}, netnsPath(host));
      expect(own.json).toMatchObject({ code: 8, msg: "plugin's netns and netns from CNI_NETNS should not be the same" });
      // A namespace file of another type is nsfs too: its type is what tells.
      for (const [file, type] of [["uts", "uts"], ["mnt", "mount"], ["ipc", "ipc"]]) {
        const other = add(netconf("1.0.0"), {}, `/proc/self/ns/${file}`);
        expect(other.json).toMatchObject({ code: 4, msg: `failed to open netns "/proc/self/ns/${file}": it is a ${type} namespace, not a network namespace` });
      }
      expect(existsSync(join(dataDir, "ctr-err"))).toBe(false);
    }, 30_000);

    test("missing env variables (4) and a delegate that is not installed (999)", () => {
      const r = add(netconf("1.0.0"), { CNI_IFNAME: "", CNI_PATH: "" });
      expect(r.json).toMatchObject({ code: 4, msg: "required env variables [CNI_IFNAME,CNI_PATH] missing" });
      const noBridge = add(netconf("1.0.0"), { CNI_PATH: join(tmp, "run") });
      expect(noBridge.json).toMatchObject({ code: 999, msg: `failed to delegate add: failed to find plugin "bridge" in path [${join(tmp, "run")}]` });
      // A failed ADD leaves no saved config behind; the runtime's DEL still succeeds.
      expect(existsSync(join(dataDir, "ctr-err"))).toBe(false);
      expect(call({ command: "DEL", containerId: "ctr-err", config: netconf("1.0.0") }).code).toBe(0);
    }, 30_000);

    test("a delegate's own error JSON is passed on unchanged", () => {
      // host-local refuses an IP outside its range: its code and message reach the runtime.
      const r = add(netconf("1.0.0"), { CNI_ARGS: "IP=10.99.0.5" });
      expect(r.code).toBe(1);
      expect(r.json.cniVersion).toBe("1.0.0");
      expect(r.json.msg).toContain("10.99.0.5");
      // Undone: no saved config, no address reserved, no veth left in the container.
      expect(existsSync(join(dataDir, "ctr-err"))).toBe(false);
      expect(readdirSync(join(ipamDir, "cbr0")).filter((f) => /^\d/.test(f))).toEqual([]);
      expect(ipJson(c1, "link", "show").map((l: any) => l.ifname)).toEqual(["lo"]);
      expect(call({ command: "DEL", containerId: "ctr-err", netns: netnsPath(c1), config: netconf("1.0.0") }).code).toBe(0);
    }, 30_000);

    test("a config nested 200 000 deep is a decoding failure (6), not an internal error", () => {
      const deep = `{"cniVersion":"1.0.0","name":"cbr0","type":"flannel","delegate":{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}}`;
      for (const config of [deep, "[".repeat(200_000) + "]".repeat(200_000)]) {
        const r = add(config);
        expect([r.code, r.json?.code, r.json?.msg]).toEqual([1, 6, "error unmarshall network config: exceeded max depth (JSON nested deeper than 10000 levels)"]);
      }
    }, 30_000);
  });

  test("VERSION answers the supported versions, up to 1.1.0", () => {
    const r = call({ command: "VERSION", config: "" });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n');
  }, 30_000);

  describe("CNI 1.1.0: STATUS and GC (the reference plugins here stop at 1.0.0, so nothing is forwarded)", () => {
    test("STATUS succeeds with a complete subnet.env, is 50 without one, and needs a 1.1.0 config", () => {
      expect(call({ command: "STATUS", config: netconf("1.1.0") })).toMatchObject({ code: 0, stdout: "" });
      const absent = join(tmp, "absent", "subnet.env");
      const r = call({ command: "STATUS", config: netconf("1.1.0", { subnetFile: absent }) });
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ cniVersion: "1.1.0", code: 50 });
      expect(r.json.msg).toStartWith(`flannel is not ready on this node: open ${absent}: no such file or directory`);
      const old = call({ command: "STATUS", config: netconf("1.0.0") });
      expect(old.json).toMatchObject({ code: 1, msg: "config version does not allow STATUS" });
    }, 30_000);

    test("GC forgets this network's saved configs of containers that are not valid attachments, and nothing else", () => {
      const save = (id: string, name: string) => writeFileSync(join(dataDir, id), JSON.stringify({ cniVersion: "1.1.0", name, type: "bridge" }));
      save("gc-live", "cbr0");
      save("gc-stale", "cbr0");
      save("gc-other-net", "othernet");
      const gc = (extra: object) => call({ command: "GC", config: netconf("1.1.0", extra) });
      expect(gc({}).code).toBe(0); // no list of valid attachments: nothing is stale
      expect(readdirSync(dataDir).sort()).toEqual(["gc-live", "gc-other-net", "gc-stale"]);
      const r = gc({ "cni.dev/valid-attachments": [{ containerID: "gc-live", ifname: "eth0" }] });
      expect([r.code, r.stdout]).toEqual([0, ""]);
      expect(readdirSync(dataDir).sort()).toEqual(["gc-live", "gc-other-net"]);
      expect(gc({ "cni.dev/valid-attachments": "all" }).json).toMatchObject({ code: 7 });
      expect(call({ command: "GC", config: netconf("1.0.0") }).json).toMatchObject({ code: 1, msg: "config version does not allow GC" });
      for (const id of ["gc-live", "gc-other-net"]) rmSync(join(dataDir, id));
    }, 30_000);
  });
});
