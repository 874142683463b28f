/** The extension backend's pure parts: its config, and what each command is given. */
import { expect, test } from "bun:test";
import { parseExtensionConfig } from "../../src/backend/extension/config.ts";
import { peerEnv, peerStdin, postStartupEnv } from "../../src/backend/extension/network.ts";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";

test("parseExtensionConfig(): commands by flannel's keys, case-insensitive; a non-string names the key", () => {
  expect(parseExtensionConfig({ Type: "extension", subnetaddcommand: "ip route add $SUBNET via $PUBLIC_IP", PostStartupCommand: "" }))
    .toEqual({ subnetAdd: "ip route add $SUBNET via $PUBLIC_IP" });
  expect(() => parseExtensionConfig({ SubnetRemoveCommand: 7 })).toThrow('Backend.SubnetRemoveCommand 7 must be a shell command (a string)');
});

test("peer and post-startup environments, with the IPv6 variables when the lease has them", () => {
  const lease = {
    subnet: parseIPv4Net("10.50.3.0/24"), ipv6Subnet: parseIPv6Net("fd00:50:0:3::/64"), expiration: 0,
    attrs: { publicIP: parseIPv4("192.0.2.3"), publicIPv6: parseIPv6("2001:db8::3"), backendType: "extension", backendData: "0a:58:0a:32:03:01" },
  };
  expect(peerEnv(lease)).toEqual({ SUBNET: "10.50.3.0/24", PUBLIC_IP: "192.0.2.3", IPV6SUBNET: "fd00:50:0:3::/64", PUBLIC_IPV6: "2001:db8::3" });
  expect(peerEnv({ ...lease, ipv6Subnet: undefined, attrs: { publicIP: lease.attrs.publicIP } })).toEqual({ SUBNET: "10.50.3.0/24", PUBLIC_IP: "192.0.2.3" });
  const cfg = parseNetworkConfig(`{"Network":"10.50.0.0/16","Backend":{"Type":"extension"}}`);
  expect(postStartupEnv(cfg, lease)).toEqual({ NETWORK: "10.50.0.0/16", SUBNET: "10.50.3.0/24", IPV6SUBNET: "fd00:50:0:3::/64", PUBLIC_IP: "192.0.2.3", PUBLIC_IPV6: "2001:db8::3" });
  expect(peerStdin(lease)).toBe("0a:58:0a:32:03:01");
  expect(peerStdin({ ...lease, attrs: { publicIP: 1 } })).toBe("");
  expect(String(peerStdin({ ...lease, attrs: { publicIP: 1, backendData: { VtepMAC: "x" } } }))).toContain("is not a JSON string");
});
