/**
 * @module Byte-exact tests of the delegate config the flannel plugin renders (compat §10), of the
 * subnet.env reading rules and of the netconf parser, against the Go plugin's own fixtures
 * (flannel-io/cni-plugin flannel_linux_test.go) and the compat doc's example.
 */
import { describe, expect, test } from "bun:test";
import { renderDelegateConfig } from "../../src/cni/delegate_config.ts";
import { parseFlannelEnv } from "../../src/cni/flannel_env.ts";
import { marshalGoJson } from "../../src/cni/go_json.ts";
import { parseFlannelNetConf } from "../../src/cni/netconf.ts";
import { CniError } from "../../src/cni/errors.ts";

const ENV_V4 = "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n";

function render(netconf: object, subnetEnv: string): string {
  return renderDelegateConfig(parseFlannelNetConf(JSON.stringify(netconf)), parseFlannelEnv(subnetEnv, "subnet.env")).bytes;
}

describe("renderDelegateConfig()", () => {
  test("reproduces the compat §10 example byte for byte", () => {
    const netconf = {
      cniVersion: "0.3.1", name: "cbr0", type: "flannel",
      delegate: { hairpinMode: true, isDefaultGateway: true },
    };
    const env = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n";
    expect(render(netconf, env)).toBe(
      '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],' +
        '"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,' +
        '"mtu":1450,"name":"cbr0","type":"bridge"}',
    );
  });

  test("matches the Go plugin's fixtures: v4, v6, dual stack, two networks", () => {
    const netconf = { name: "cni-flannel", type: "flannel" };
    const expected = (routes: string, ranges: string) =>
      `{"ipMasq":false,"ipam":{"ranges":${ranges},"routes":${routes},"type":"host-local"},` +
      '"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}';
    expect(render(netconf, ENV_V4)).toBe(expected('[{"dst":"10.1.0.0/16"}]', '[[{"subnet":"10.1.17.0/24"}]]'));
    expect(render(netconf, "FLANNEL_IPV6_NETWORK=fc00::/48\nFLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"))
      .toBe(expected('[{"dst":"fc00::/48"}]', '[[{"subnet":"fc00::/64"}]]'));
    expect(render(netconf, "FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_IPV6_NETWORK=fc00::/48\n" +
      "FLANNEL_IPV6_SUBNET=fc00::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n"))
      .toBe(expected('[{"dst":"10.1.0.0/16"},{"dst":"fc00::/48"}]', '[[{"subnet":"10.1.17.0/24"}],[{"subnet":"fc00::/64"}]]'));
    expect(render(netconf, ENV_V4.replace("10.1.0.0/16", "10.1.0.0/16,192.168.0.0/16,10.1.0.0/16")))
      .toBe(expected('[{"dst":"10.1.0.0/16"},{"dst":"192.168.0.0/16"}]', '[[{"subnet":"10.1.17.0/24"}]]'));
  });

  test("keeps the input ipam: its type, unknown keys, and routes first (re-encoded as libcni routes)", () => {
    const netconf = {
      name: "cni-flannel", type: "flannel",
      ipam: {
        type: "my-ipam", "unknown-param": "unknown-value",
        routes: [{ dst: "10.96.0.0/12" }, { dst: "192.168.244.0/24", gw: "10.1.17.20", extra: 1 }, { dst: "10.9.0.0/16", priority: 5, mtu: 0 }],
        ranges: [[{ subnet: "1.2.3.0/24" }]],
      },
    };
    expect(render(netconf, ENV_V4)).toBe(
      '{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.1.17.0/24"}]],"routes":[{"dst":"10.96.0.0/12"},' +
        '{"dst":"192.168.244.0/24","gw":"10.1.17.20"},{"dst":"10.9.0.0/16","priority":5},{"dst":"10.1.0.0/16"}],' +
        '"type":"my-ipam","unknown-param":"unknown-value"},"isGateway":true,"mtu":1472,"name":"cni-flannel","type":"bridge"}',
    );
  });

  test("fills ipMasq, mtu and isGateway only when the delegate lacks them; isGateway only for bridge", () => {
    const base = { name: "n", cniVersion: "1.0.0", type: "flannel" };
    const own = JSON.parse(render({ ...base, delegate: { ipMasq: true, mtu: 9000, isGateway: false } }, ENV_V4));
    expect([own.ipMasq, own.mtu, own.isGateway]).toEqual([true, 9000, false]);
    const ipvlan = JSON.parse(render({ ...base, delegate: { type: "ipvlan", master: "eth0" } }, ENV_V4.replace("true", "false")));
    expect(ipvlan).toMatchObject({ type: "ipvlan", ipMasq: true, mtu: 1472, cniVersion: "1.0.0" });
    expect("isGateway" in ipvlan).toBe(false);
  });

  test("copies runtimeConfig into the delegate (an empty one too)", () => {
    const r = JSON.parse(render({ name: "n", runtimeConfig: { portMappings: [{ hostPort: 80 }] } }, ENV_V4));
    expect(r.runtimeConfig).toEqual({ portMappings: [{ hostPort: 80 }] });
    expect(JSON.parse(render({ name: "n", runtimeConfig: {} }, ENV_V4)).runtimeConfig).toEqual({});
    expect("runtimeConfig" in JSON.parse(render({ name: "n" }, ENV_V4))).toBe(false);
  });

  test("rejects a delegate that sets name or ipam or a non-string type (code 7)", () => {
    for (const [delegate, msg] of [
      [{ name: "x" }, "'delegate' dictionary must not have 'name' field, it'll be set by flannel"],
      [{ ipam: {} }, "'delegate' dictionary must not have 'ipam' field, it'll be set by flannel"],
      [{ type: 5 }, "'delegate' dictionary, if present, must have (string) 'type' field, got 5"],
    ] as const) {
      const err = (() => { try { render({ name: "n", delegate }, ENV_V4); } catch (e) { return e as CniError; } })();
      expect(err).toBeInstanceOf(CniError);
      expect([err!.code, err!.message]).toEqual([7, msg]);
    }
  });

  test("rejects malformed ipam.routes naming the entry (code 7)", () => {
    expect(() => render({ name: "n", ipam: { routes: [{ dst: "10.0.0.0" }] } }, ENV_V4))
      .toThrow('failed to parse ipam.routes[0]: "dst" must be a CIDR like 10.96.0.0/12, got "10.0.0.0"');
    expect(() => render({ name: "n", ipam: { routes: [{ dst: "10.0.0.0/8", gw: "x" }] } }, ENV_V4))
      .toThrow('failed to parse ipam.routes[0]: "gw" must be an IP address, got "x"');
    expect(() => render({ name: "n", ipam: { routes: {} } }, ENV_V4)).toThrow("failed to parse ipam.routes: expected an array");
  });
});

describe("parseFlannelEnv()", () => {
  test("masks subnets, splits and de-duplicates networks, reads IPMASQ strictly", () => {
    expect(parseFlannelEnv(ENV_V4.replace("IPMASQ=true", "IPMASQ=TRUE"), "f")).toEqual({
      networks: ["10.1.0.0/16"], subnet: "10.1.17.0/24", ipv6Networks: [], ipv6Subnet: undefined, mtu: 1472, ipMasq: false,
    });
  });

  test("names every missing key like the Go plugin", () => {
    expect(() => parseFlannelEnv("FLANNEL_MTU=1450\n", "/run/flannel/subnet.env")).toThrow(
      "/run/flannel/subnet.env is missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_IPMASQ",
    );
  });

  test("rejects bad CIDRs and MTUs with Go's messages", () => {
    expect(() => parseFlannelEnv(ENV_V4.replace("10.1.17.1/24", "10.1.17.1"), "f")).toThrow("invalid CIDR address: 10.1.17.1");
    expect(() => parseFlannelEnv(ENV_V4.replace("1472", "14x"), "f")).toThrow('strconv.ParseUint: parsing "14x": invalid syntax');
  });
});

describe("parseFlannelNetConf()", () => {
  test("applies flannel's defaults and Go's case-insensitive keys", () => {
    const n = parseFlannelNetConf('{"name":"cbr0","SubnetFile":"/x/subnet.env","delegate":null}');
    expect([n.subnetFile, n.dataDir, n.delegate, n.cniVersion]).toEqual(["/x/subnet.env", "/var/lib/cni/flannel", undefined, ""]);
  });

  test("names the key and value of a wrong type (code 7) and undecodable JSON (code 6)", () => {
    const err = (text: string) => { try { parseFlannelNetConf(text); } catch (e) { return e as CniError; } };
    expect([err('{"name":"n","dataDir":5}')!.code, err('{"name":"n","dataDir":5}')!.message])
      .toEqual([7, 'invalid flannel netconf: "dataDir" must be a string, got number 5']);
    expect(err('{"name":"n","delegate":[]}')!.message).toBe('invalid flannel netconf: "delegate" must be an object, got array []');
    expect(err("{nope")!.code).toBe(6);
  });
});

describe("marshalGoJson()", () => {
  test("sorts map keys, keeps struct (Map) order, escapes like Go, indents like MarshalIndent", () => {
    expect(marshalGoJson({ b: [1, { d: 1, c: "<&>\u2028" }], a: null, u: undefined })).toBe(
      '{"a":null,"b":[1,{"c":"\\u003c\\u0026\\u003e\\u2028","d":1}]}',
    );
    expect(marshalGoJson(new Map<string, unknown>([["z", 1], ["a", []], ["m", {}]]), "    "))
      .toBe('{\n    "z": 1,\n    "a": [],\n    "m": {}\n}');
  });
});
