/**
 * @module translateEtcdError() and describeServerCertFailure(): raw etcd3 / grpc-js failures, as
 * they were captured from real runs (Bun 1.4 and Deno 2.9 against etcd 3.4), in, the message a
 * user reads and the class a caller catches out.
 */
import { describe, expect, test } from "bun:test";
import {
  type EtcdCallContext, EtcdAbortedError, EtcdPermissionError, EtcdUnavailableError, describeServerCertFailure, translateEtcdError,
} from "../../src/registry/etcd_errors.ts";

const ONE = "https://192.0.2.254:2379";
const read = (over: Partial<EtcdCallContext> = {}): EtcdCallContext => ({
  endpoints: [ONE], permission: "read", key: "/coreos.com/network/config", timeoutMs: 5000, ...over,
});
const write = (over: Partial<EtcdCallContext> = {}): EtcdCallContext =>
  read({ permission: "write", key: "/coreos.com/network/subnets/10.5.1.0-24", username: "weft", ...over });
const named = (name: string, message: string) => Object.assign(new Error(message), { name });

const TABLE: [string, Error, EtcdCallContext, abstract new (...args: never[]) => Error, string][] = [
  ["connection refused", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 192.0.2.254:2379. Resolution note: "),
    read(), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 is unreachable: connection refused (is etcd running there, on that port? check --etcd-endpoints)"],
  ["connection refused, with a timestamp, among several endpoints", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 10.0.0.2:2379 (2026-12-06T09:40:10.125Z). Resolution note: "),
    read({ endpoints: ["http://10.0.0.1:2379", "http://10.0.0.2:2379"] }), EtcdUnavailableError,
    "no etcd endpoint answered (http://10.0.0.1:2379, http://10.0.0.2:2379); the last: etcd at http://10.0.0.2:2379 is unreachable: connection refused (is etcd running there, on that port? check --etcd-endpoints)"],
  ["the circuit breaker (etcd3's default fault handling)", named("BrokenCircuitError", "Execution prevented because the circuit breaker is open"),
    read(), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 is unreachable: it failed several times in a row and is rested before the next attempt (check --etcd-endpoints)"],
  ["deadline exceeded", named("GRPCDeadlineExceededError", "4 DEADLINE_EXCEEDED: Deadline exceeded after 5.002s,name resolution: 0.002s,time to current attempt start: 0.001s,Waiting for LB pick"),
    read(), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 did not answer reading /coreos.com/network/config within 5 s (etcd stopped or overloaded, a firewall dropping packets, or a partition; check --etcd-endpoints)"],
  ["a name that does not resolve", named("GRPCUnavailableError", "14 UNAVAILABLE: Name resolution failed for target dns:etcd.invalid:2379"),
    read({ endpoints: ["http://etcd.invalid:2379"] }), EtcdUnavailableError,
    "etcd at http://etcd.invalid:2379 is unreachable: the host name etcd.invalid does not resolve (check --etcd-endpoints)"],
  ["grpc-js's own TLS by IP (before weft's credentials)", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: TypeError [ERR_INVALID_ARG_VALUE]: The property 'options.servername' Setting the TLS ServerName to an IP address is not permitted.. Received '192.0.2.254'. Resolution note: "),
    read(), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 is unreachable: TypeError [ERR_INVALID_ARG_VALUE]: The property 'options.servername' Setting the TLS ServerName to an IP address is not permitted.. Received '192.0.2.254' (check --etcd-endpoints)"],
  ["a TLS failure weft's credentials described", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: Error: TLS with etcd at https://192.0.2.254:2379 failed: its certificate expired on Dec  5 09:39:36 2026 GMT; renew etcd's server certificate. Resolution note: "),
    read(), EtcdUnavailableError,
    "TLS with etcd at https://192.0.2.254:2379 failed: its certificate expired on Dec  5 09:39:36 2026 GMT; renew etcd's server certificate"],
  ["no client certificate (Bun: a TLS alert)", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: error:10000412:SSL routines:OPENSSL_internal:SSLV3_ALERT_BAD_CERTIFICATE (2026-12-06T09:40:10.125Z). Resolution note: "),
    read({ tls: { caFile: "/etc/etcd/ca.pem" } }), EtcdUnavailableError,
    "TLS with etcd at https://192.0.2.254:2379 failed: etcd refused the handshake (alert: bad certificate); it requires a client certificate: give --etcd-certfile and --etcd-keyfile"],
  ["a client certificate etcd does not accept", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: error:10000418:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA. Resolution note: "),
    read({ tls: { caFile: "/etc/etcd/ca.pem", certFile: "/etc/etcd/weft.pem", keyFile: "/etc/etcd/weft-key.pem" } }), EtcdUnavailableError,
    "TLS with etcd at https://192.0.2.254:2379 failed: etcd refused the handshake (alert: unknown ca); it did not accept the client certificate /etc/etcd/weft.pem (--etcd-certfile): not signed by a CA etcd trusts (--trusted-ca-file), expired, or not for client authentication"],
  ["no client certificate (Deno: the connection is closed)", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: Error: write EPIPE. Resolution note: "),
    read({ tls: { caFile: "/etc/etcd/ca.pem" } }), EtcdUnavailableError,
    "TLS with etcd at https://192.0.2.254:2379 failed: etcd closed the connection during the handshake; it requires a client certificate: give --etcd-certfile and --etcd-keyfile"],
  ["plain text to a TLS etcd", named("GRPCUnavailableError", "14 UNAVAILABLE: No connection established. Last error: Failed to connect (2026-12-06T09:40:10.174Z). Resolution note: "),
    read({ endpoints: ["http://192.0.2.254:2379"] }), EtcdUnavailableError,
    "etcd at http://192.0.2.254:2379 closed the connection while it was being set up (does it expect TLS? then use https:// and --etcd-cafile) (check --etcd-endpoints)"],
  ["permission denied on a write", named("EtcdPermissionDeniedError", "7 PERMISSION_DENIED: etcdserver: permission denied"),
    write(), EtcdPermissionError,
    `etcd at https://192.0.2.254:2379 denied write permission on /coreos.com/network/subnets/10.5.1.0-24 to etcd user "weft": grant a role of "weft" readwrite on the prefix /coreos.com/network/subnets/, e.g. etcdctl role grant-permission ROLE --prefix=true readwrite /coreos.com/network/subnets/`],
  ["permission denied on the config", named("EtcdPermissionDeniedError", "7 PERMISSION_DENIED: etcdserver: permission denied"),
    write({ key: "/coreos.com/network/config" }), EtcdPermissionError,
    `etcd at https://192.0.2.254:2379 denied write permission on /coreos.com/network/config to etcd user "weft": grant a role of "weft" readwrite on it, e.g. etcdctl role grant-permission ROLE readwrite /coreos.com/network/config`],
  ["permission denied on a listing", named("EtcdPermissionDeniedError", "7 PERMISSION_DENIED: etcdserver: permission denied"),
    read({ key: "/coreos.com/network/subnets/", prefix: true }), EtcdPermissionError,
    "etcd at https://192.0.2.254:2379 denied read permission on /coreos.com/network/subnets/ (prefix) to this client (no --etcd-username): give --etcd-username and --etcd-password of a user whose role allows it"],
  ["a wrong password", named("EtcdAuthenticationFailedError", "3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password"),
    write(), EtcdPermissionError,
    `etcd at https://192.0.2.254:2379 refused the login of user "weft": wrong user name or password (--etcd-username, --etcd-password)`],
  ["auth on, no user given", named("GRPCInvalidArgumentError", "3 INVALID_ARGUMENT: etcdserver: user name is empty"),
    read(), EtcdPermissionError,
    "etcd at https://192.0.2.254:2379 requires authentication: give --etcd-username and --etcd-password"],
  ["auth off, a user given", named("GRPCFailedPreconditionError", "9 FAILED_PRECONDITION: etcdserver: authentication is not enabled"),
    read({ username: "weft" }), EtcdPermissionError,
    "etcd at https://192.0.2.254:2379 has authentication disabled but --etcd-username was given: drop --etcd-username/--etcd-password, or enable auth in etcd"],
  ["no leader", named("EtcdError", "14 UNAVAILABLE: etcdserver: no leader"),
    read(), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 could not serve reading /coreos.com/network/config: no leader (the cluster is electing a leader or overloaded; retrying)"],
  ["an established connection dropped (keepalive unanswered: the member went silent)", named("GRPCUnavailableError", "14 UNAVAILABLE: Connection dropped"),
    read({ key: "/coreos.com/network/subnets/", prefix: true }), EtcdUnavailableError,
    "etcd at https://192.0.2.254:2379 dropped the connection while reading /coreos.com/network/subnets/*: it closed it, or stopped answering keepalive pings (its host gone, a cut link, a partition); retrying"],
  ["something else", named("GRPCGenericError", "8 RESOURCE_EXHAUSTED: etcdserver: mvcc: database space exceeded"),
    write({ username: undefined }), Error,
    "etcd at https://192.0.2.254:2379: writing /coreos.com/network/subnets/10.5.1.0-24 failed: mvcc: database space exceeded"],
];

describe("translateEtcdError()", () => {
  for (const [what, raw, ctx, cls, message] of TABLE) {
    test(`${what}: says what happened where, and what to do`, () => {
      const e = translateEtcdError(raw, ctx);
      expect(e.message).toBe(message);
      expect(e).toBeInstanceOf(cls);
      expect(e.message).not.toMatch(/Resolution note|circuit breaker is open|^\d+ [A-Z_]+:/);
    });
  }

  test("a permission error carries the key and the permission (the lease manager stops on it)", () => {
    const e = translateEtcdError(named("EtcdPermissionDeniedError", "7 PERMISSION_DENIED: etcdserver: permission denied"), write());
    expect(e).toBeInstanceOf(EtcdPermissionError);
    expect((e as EtcdPermissionError).key).toBe("/coreos.com/network/subnets/10.5.1.0-24");
    expect((e as EtcdPermissionError).permission).toBe("write");
  });

  test("the client closed under a call: an AbortError, as at shutdown", () => {
    const e = translateEtcdError(new Error("Tried to call a KV method on etcd3, but the client was already closed"), read());
    expect(e).toBeInstanceOf(EtcdAbortedError);
    expect(e.name).toBe("AbortError");
  });

  test("errors already translated pass through unchanged", () => {
    const e = new EtcdUnavailableError("etcd at x is unreachable: y");
    expect(translateEtcdError(e, read({ endpoints: ["a", "b"] }))).toBe(e);
  });
});

describe("describeServerCertFailure()", () => {
  const cert = { subjectaltname: "IP Address:127.0.0.1, DNS:localhost", valid_to: "Dec  5 09:39:36 2026 GMT", issuer: { CN: "etcd-ca" } };
  const files = { caFile: "/etc/etcd/ca.pem" };
  test("an IP endpoint the certificate does not name", () => {
    expect(describeServerCertFailure("ERR_TLS_CERT_ALTNAME_INVALID", "", "https://127.0.0.2:2379", cert, files)).toBe(
      `TLS with etcd at https://127.0.0.2:2379 failed: its certificate is not valid for IP address 127.0.0.2 (it names IP Address:127.0.0.1, DNS:localhost); an endpoint given by IP address needs "IP:127.0.0.2" in the certificate's subjectAltName, or use an endpoint it names`);
  });
  test("a name the certificate does not name", () => {
    expect(describeServerCertFailure("ERR_TLS_CERT_ALTNAME_INVALID", "", "https://etcd.example:2379", cert, files)).toBe(
      `TLS with etcd at https://etcd.example:2379 failed: its certificate is not valid for name etcd.example (it names IP Address:127.0.0.1, DNS:localhost); an endpoint given by name needs "DNS:etcd.example" in the certificate's subjectAltName, or use an endpoint it names`);
  });
  test("an unknown CA, with and without --etcd-cafile", () => {
    expect(describeServerCertFailure("UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate", "https://10.0.0.1:2379", cert, files)).toBe(
      `TLS with etcd at https://10.0.0.1:2379 failed: its certificate (issued by "etcd-ca") is not signed by the CA in --etcd-cafile /etc/etcd/ca.pem; give the CA that signed etcd's certificate`);
    expect(describeServerCertFailure("SELF_SIGNED_CERT_IN_CHAIN", "", "https://10.0.0.1:2379", undefined, {})).toBe(
      "TLS with etcd at https://10.0.0.1:2379 failed: its certificate is not signed by the system's CAs (no --etcd-cafile); give the CA that signed etcd's certificate");
  });
  test("an expired certificate", () => {
    expect(describeServerCertFailure("CERT_HAS_EXPIRED", "certificate has expired", "https://10.0.0.1:2379", cert, files)).toBe(
      "TLS with etcd at https://10.0.0.1:2379 failed: its certificate expired on Dec  5 09:39:36 2026 GMT; renew etcd's server certificate");
  });
});
