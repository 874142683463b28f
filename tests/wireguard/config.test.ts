/**
 * @module The wireguard backend's configuration as flanneld reads it (Backend object, defaults,
 * errors naming key and value), the device MTU, WireGuard key text, and the lease BackendData
 * byte-exact against fixtures of what flanneld writes.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeLeaseAttrs, encodeLeaseAttrs } from "../../src/lease/lease.ts";
import { tryParseIPv4, tryParseIPv6 } from "../../src/net/ip.ts";
import { parseWireguardConfig, wireguardDeviceMtu } from "../../src/backend/wireguard/config.ts";
import { encodeWireguardLeaseData, parseWireguardLeaseData, peerPort } from "../../src/backend/wireguard/lease_data.ts";
import { formatKey, parseKey } from "../../src/backend/wireguard/wg_key.ts";

const KEY = "RBijwx/YwYCCWvNdbutJ9FGgEB9Lm2s4SM+ngUBO9BE=";

describe("parseWireguardConfig", () => {
  test("flanneld's defaults", () => {
    expect(parseWireguardConfig({ Type: "wireguard" })).toEqual({
      listenPort: 51820, listenPortV6: 51821, psk: null, persistentKeepaliveInterval: 0, mode: "separate", mtu: 0,
    });
  });

  test("every field, keys in any case as Go matches them", () => {
    const cfg = parseWireguardConfig({
      Type: "wireguard", listenport: 51000, ListenPortV6: 51001, psk: KEY, PersistentKeepaliveInterval: 25, mode: "auto", MTU: 9001,
    });
    expect(cfg).toMatchObject({ listenPort: 51000, listenPortV6: 51001, persistentKeepaliveInterval: 25, mode: "auto", mtu: 9001 });
    expect(formatKey(cfg.psk!)).toBe(KEY);
    expect(parseWireguardConfig({ Mode: "ipv6", PSK: "" })).toMatchObject({ mode: "ipv6", psk: null });
  });

  test.each([
    [{ Mode: "Auto" }, 'Backend.Mode "Auto" must be one of "separate", "auto", "ipv4", "ipv6"'],
    [{ Mode: 1 }, "Backend.Mode 1 must be one of"],
    [{ ListenPort: 0 }, "Backend.ListenPort 0 must be a whole number from 1 to 65535"],
    [{ ListenPortV6: "51821" }, 'Backend.ListenPortV6 "51821" must be a whole number from 1 to 65535'],
    [{ PersistentKeepaliveInterval: 2.5 }, "Backend.PersistentKeepaliveInterval 2.5 must be a whole number from 0 to 65535 (seconds; 0 = off)"],
    [{ PersistentKeepaliveInterval: "25s" }, 'Backend.PersistentKeepaliveInterval "25s" must be a whole number'],
    [{ MTU: -1 }, "Backend.MTU -1 must be a whole number from 0 to 65535"],
    [{ PSK: "secret" }, 'Backend.PSK "secret" is not a WireGuard key: it must be 32 bytes in base64'],
    [{ PSK: 42 }, "Backend.PSK 42 must be a string"],
  ])("refuses %j by name", (backend, message) => {
    expect(() => parseWireguardConfig(backend as Record<string, unknown>)).toThrow(message);
  });

  test("the device MTU is the underlay's minus 80, from Backend.MTU or the interface", () => {
    expect(wireguardDeviceMtu(parseWireguardConfig({}), 1500, "eth0")).toBe(1420);
    expect(wireguardDeviceMtu(parseWireguardConfig({ MTU: 9001 }), 1500, "eth0")).toBe(8921);
    expect(() => wireguardDeviceMtu(parseWireguardConfig({}), 0, "eth0")).toThrow("interface eth0 reports MTU 0");
    expect(() => wireguardDeviceMtu(parseWireguardConfig({ MTU: 100 }), 1500, "eth0")).toThrow("wireguard device MTU would be 20");
  });
});

describe("WireGuard key text", () => {
  test("round trips, accepts the newline 'wg genkey' ends with, refuses anything else by name", () => {
    expect(formatKey(parseKey(KEY, "k"))).toBe(KEY);
    expect(formatKey(parseKey(`${KEY}\n`, "k"))).toBe(KEY);
    expect(() => parseKey(KEY.slice(1), "Backend.PSK")).toThrow("Backend.PSK");
    expect(() => parseKey(`${KEY} `, "k")).toThrow("is not a WireGuard key");
    expect(() => parseKey(Buffer.alloc(33).toString("base64"), "k")).toThrow("is not a WireGuard key");
    expect(() => formatKey(new Uint8Array(31))).toThrow("a WireGuard key is 32 bytes, not 31");
  });
});

describe("lease BackendData", () => {
  const fixture = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/wireguard/lease_values.json"), "utf8"));
  const byName = (n: string) => fixture.cases.find((c: { name: string }) => c.name === n);

  test("weft writes what flanneld >= v0.21 writes, byte for byte (IPv4 and dual stack)", () => {
    const key = parseKey(KEY, "k");
    const v4 = byName("flanneld >= v0.21, IPv4");
    expect(encodeLeaseAttrs({
      publicIP: tryParseIPv4(v4.publicIP)!, backendType: "wireguard", backendData: encodeWireguardLeaseData(key, 51820),
    })).toBe(v4.value);
    const dual = byName("flanneld >= v0.21, dual stack");
    expect(encodeLeaseAttrs({
      publicIP: tryParseIPv4(dual.publicIP)!, publicIPv6: tryParseIPv6(dual.publicIPv6)!, backendType: "wireguard",
      backendData: encodeWireguardLeaseData(key, 51820), backendV6Data: encodeWireguardLeaseData(key, 51821),
    })).toBe(dual.value);
  });

  test("reads every fixture; a lease without Port (v0.20) means our own listen port", () => {
    for (const c of fixture.cases) {
      const attrs = decodeLeaseAttrs("10.244.1.0-24", c.value);
      const data = parseWireguardLeaseData(attrs.backendData);
      if (typeof data === "string") throw new Error(data);
      expect(formatKey(data.publicKey)).toBe(KEY);
      expect(peerPort(data, 51999)).toBe(c.name.includes("v0.20") ? 51999 : 51820);
    }
    expect(peerPort(parseWireguardLeaseData({ PublicKey: KEY, Port: 0 }) as never, 51999)).toBe(51999);
    expect(parseWireguardLeaseData({ publickey: KEY, port: 4000 })).toMatchObject({ port: 4000 });
  });

  test.each([
    [null, "BackendData null is not an object with a PublicKey"],
    [{}, "BackendData.PublicKey (missing) must be a base64 WireGuard key"],
    [{ PublicKey: "abc" }, 'BackendData.PublicKey "abc" is not a WireGuard key'],
    [{ PublicKey: KEY, Port: 70000 }, "BackendData.Port 70000 must be a whole number from 0 to 65535"],
  ])("an unusable BackendData %j is a reason, not a throw", (data, why) => {
    expect(parseWireguardLeaseData(data)).toStartWith(why);
  });
});
