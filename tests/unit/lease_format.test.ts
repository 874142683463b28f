import { describe, expect, test } from "bun:test";
import { decodeLeaseAttrs, encodeLeaseAttrs, LeaseValueError, parseSubnetKey, subnetKey } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";

// Values exactly as flanneld writes them (compat §2.3).
const FLANNELD = {
  vxlan: `{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}`,
  hostgw: `{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"host-gw"}`,
  udp: `{"PublicIP":"192.168.1.12","PublicIPv6":null}`,
  dual: `{"PublicIP":"192.168.64.3","PublicIPv6":"2001:db8::3","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:d2:32:6f:8f:45"}}`,
};

describe("lease keys", () => {
  test("subnetKey() writes flannel's form", () => {
    expect(subnetKey(parseIPv4Net("10.5.34.0/24"))).toBe("10.5.34.0-24");
    expect(subnetKey(parseIPv4Net("10.5.34.0/24"), parseIPv6Net("fc00:0:0:22::/64"))).toBe("10.5.34.0-24&fc00:0:0:22::-64");
  });
  test("parseSubnetKey() reads full keys and dual-stack keys", () => {
    expect(parseSubnetKey("/coreos.com/network/subnets/10.5.34.0-24")).toEqual({ subnet: { ip: parseIPv4("10.5.34.0"), len: 24 } });
    expect(parseSubnetKey("10.5.34.0-24&fc00:0:0:22::-64")).toEqual({
      subnet: { ip: parseIPv4("10.5.34.0"), len: 24 }, ipv6Subnet: { ip: parseIPv6("fc00:0:0:22::"), len: 64 },
    });
  });
  test.each(["garbage", "10.5.34.0", "10.5.34.0-33", "10.5.34.1-24", "10.5.300.0-24", "10.5.34.0-24&FC00::-64"])(
    "parseSubnetKey() skips %p", (k) => expect(parseSubnetKey(k)).toBeUndefined());
});

describe("lease values", () => {
  test.each(Object.entries(FLANNELD))("%s: decode then encode gives flanneld's bytes", (_n, text) => {
    expect(encodeLeaseAttrs(decodeLeaseAttrs("k", text))).toBe(text);
  });
  test("encodes vxlan attrs in flannel's field order", () => {
    expect(encodeLeaseAttrs({ publicIP: parseIPv4("192.168.64.3"), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: "c6:d2:32:6f:8f:44" } }))
      .toBe(FLANNELD.vxlan);
  });
  test("reads case-insensitive keys and the old VtepMAC-only data", () => {
    const a = decodeLeaseAttrs("k", `{"publicip":"10.0.0.1","backendtype":"vxlan","backenddata":{"VtepMAC":"c6:d2:32:6f:8f:44"}}`);
    expect(a.backendType).toBe("vxlan");
    expect(a.backendData).toEqual({ VtepMAC: "c6:d2:32:6f:8f:44" });
  });
  test("escapes like Go's encoding/json", () => {
    expect(encodeLeaseAttrs({ publicIP: 1, backendType: "a<b>&" })).toBe(`{"PublicIP":"0.0.0.1","PublicIPv6":null,"BackendType":"a\\u003cb\\u003e\\u0026"}`);
  });
  test.each([
    ["not JSON", "{", /not JSON/],
    ["an array", "[]", /must be a JSON object/],
    ["a bad PublicIP", `{"PublicIP":"1.2.3"}`, /PublicIP "1.2.3" is not an IPv4 address/],
    ["a bad PublicIPv6", `{"PublicIP":"1.2.3.4","PublicIPv6":"zz"}`, /PublicIPv6 "zz"/],
    ["a numeric BackendType", `{"PublicIP":"1.2.3.4","BackendType":5}`, /BackendType 5 must be a string/],
  ])("rejects %s naming the key", (_n, text, msg) => {
    expect(() => decodeLeaseAttrs("10.1.2.0-24", text)).toThrow(LeaseValueError);
    expect(() => decodeLeaseAttrs("10.1.2.0-24", text)).toThrow(msg);
    expect(() => decodeLeaseAttrs("10.1.2.0-24", text)).toThrow(/lease 10.1.2.0-24/);
  });
});
