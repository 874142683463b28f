/**
 * The UAPI answers (uapi.ts), byte-exact, and its socket against a client that speaks as `wg`
 * does (the real `wg show` runs against agents in backend_cluster.test.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../src/log.ts";
import { type UapiDevice, serveUapi, uapiGet, uapiReply, uapiRequest } from "../../src/backend/wireguard/uapi.ts";

// The whitepaper's / wg(8)'s example keys, as base64 and as the hex UAPI carries.
const PRIV = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
const PRIV_HEX = "c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669";
const PUB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const PUB_HEX = "c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038";
const PSK = "FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=";

const device = (over: Partial<UapiDevice> = {}): UapiDevice => ({
  privateKey: PRIV, listenPort: 51820, psk: null, keepaliveSeconds: 0, peers: [], ...over,
});

describe("uapiGet: wireguard-go's get=1, key for key", () => {
  test("a device without peers", () => {
    expect(uapiGet(device())).toBe(`private_key=${PRIV_HEX}\nlisten_port=51820\nerrno=0\n\n`);
  });

  test("peers: key, PSK (zeros without one), endpoint, handshake in s and ns, bytes, keepalive, allowed IPs", () => {
    const peer = { publicKey: PUB, endpoint: "192.168.77.12:51820", lastHandshakeMs: 1_700_000_123_456, rxBytes: 1234, txBytes: 5678, allowedIPs: ["10.5.7.0/24", "fd00:5:0:7::/64"] };
    expect(uapiGet(device({ peers: [peer], keepaliveSeconds: 25 }))).toBe([
      `private_key=${PRIV_HEX}`, "listen_port=51820",
      `public_key=${PUB_HEX}`, `preshared_key=${"0".repeat(64)}`, "protocol_version=1", "endpoint=192.168.77.12:51820",
      "last_handshake_time_sec=1700000123", "last_handshake_time_nsec=456000000", "tx_bytes=5678", "rx_bytes=1234",
      "persistent_keepalive_interval=25", "allowed_ip=10.5.7.0/24", "allowed_ip=fd00:5:0:7::/64",
      "errno=0", "", "",
    ].join("\n"));
    const withPsk = uapiGet(device({ psk: PSK, peers: [{ ...peer, endpoint: "[fd00::12]:51821", lastHandshakeMs: 0 }] }));
    expect(withPsk).toContain(`preshared_key=${Buffer.from(PSK, "base64").toString("hex")}\n`);
    expect(withPsk).toContain("endpoint=[fd00::12]:51821\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n");
  });

  test("set=1 is refused with EPERM, anything else with EINVAL", () => {
    const d = () => device();
    expect(uapiRequest("get=1")).toEqual({ op: "get" });
    expect(uapiReply(uapiRequest("set=1"), d)).toBe("errno=-1\n\n");
    expect(uapiReply(uapiRequest("get=2"), d)).toBe("errno=-22\n\n");
  });
});

describe("serveUapi", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-uapi-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Sends `text` and reads until the server's reply ends (`\n\n`) or it closes. */
  const ask = (path: string, text: string) => new Promise<string>((resolve, reject) => {
    const s = connect(path);
    let got = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => { got += d; if (got.endsWith("\n\n")) { s.end(); resolve(got); } });
    s.on("end", () => resolve(got));
    s.on("error", reject);
    s.on("connect", () => s.write(text));
  });

  test("answers get, refuses set (one warning), 0600; a second server for the path stands aside; close removes the socket", async () => {
    const path = join(dir, "wireguard", "flannel-wg.sock");
    let log = "";
    const logger = createLogger((t) => (log += t));
    const served = await serveUapi(path, "flannel-wg", () => device(), logger);
    expect(served).toBeDefined();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await ask(path, "get=1\n\n")).toBe(uapiGet(device()));
    expect(await ask(path, "set=1\npublic_key=00\nremove=true\n\n")).toBe("errno=-1\n\n");
    await ask(path, "set=1\n\n");
    expect(log.match(/'wg set flannel-wg' refused \(EPERM\)/g)?.length).toBe(1);
    // Two requests in one write, as a client may send them.
    expect(await ask(path, "get=1\n\nget=1\n\n")).toStartWith(`private_key=${PRIV_HEX}`);

    const second = await serveUapi(path, "flannel-wg", () => device(), logger);
    expect(second).toBeUndefined();
    expect(log).toContain("is served by another process");
    served!.close();
    expect(() => statSync(path)).toThrow();
  });

  test("a stale socket file from a killed agent is replaced", async () => {
    const path = join(dir, "stale.sock");
    writeFileSync(path, ""); // what a SIGKILLed agent leaves: a path nobody answers on
    const again = await serveUapi(path, "flannel-wg", () => device({ listenPort: 51821 }), createLogger(() => {}));
    expect(await ask(path, "get=1\n\n")).toContain("listen_port=51821\n");
    again!.close();
  });
});
