/**
 * @module etcd client failures in a user's words: which endpoint, what happened (connection
 * refused, timed out, TLS verification failed and why, authentication failed, permission denied on
 * which key) and what to do. A pure translation of the errors etcd3 and @grpc/grpc-js throw
 * (`14 UNAVAILABLE: No connection established. Last error: … Resolution note:`,
 * `7 PERMISSION_DENIED: etcdserver: permission denied`, cockatiel's "circuit breaker is open"), so
 * everything above the registry (log, /status, CLI, dashboard) shows these messages. Only
 * `etcd.ts` and `etcd_tls.ts` call it; callers catch the classes below.
 */

/** What a registry call was doing, for the message. */
export interface EtcdCallContext {
  /** --etcd-endpoints, as given. */
  endpoints: readonly string[];
  /** "read" or "write" (etcd's two key permissions). */
  permission: "read" | "write";
  /** The key (or, for a listing, the prefix) the call touched. */
  key: string;
  /** Whether `key` is a prefix (a listing or a watch). */
  prefix?: boolean;
  /** --etcd-username, when auth is used. */
  username?: string;
  /** The call's deadline, ms. */
  timeoutMs: number;
  /** The TLS files in use, for hints. */
  tls?: TlsFiles;
}

/** --etcd-cafile, --etcd-certfile, --etcd-keyfile as given (undefined when not). */
export interface TlsFiles {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** etcd could not be reached or did not answer: retrying later may work. */
export class EtcdUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EtcdUnavailableError";
  }
}

/**
 * etcd refused access: a role without `permission` on `key`, or a failed login (`permission` is
 * "login" then). Final: retrying with the same credentials cannot succeed, so the lease manager
 * stops at once and the agent exits 1 (a supervisor restarts it once an admin fixed the role).
 */
export class EtcdPermissionError extends Error {
  constructor(message: string, readonly permission: "read" | "write" | "login", readonly key?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EtcdPermissionError";
  }
}

/**
 * A registry call abandoned because the agent is shutting down. Named "AbortError" like the
 * DOMException an aborted fetch throws, so shutdown paths recognise it and stay quiet.
 */
export class EtcdAbortedError extends Error {
  constructor(what: string) {
    super(`etcd request (${what}) abandoned: shutting down`);
    this.name = "AbortError";
  }
}

/** One endpoint or the list, as the user wrote them. */
function where(endpoints: readonly string[], hostPort?: string): string {
  if (hostPort) {
    const hit = endpoints.find((e) => endpointHostPort(e) === hostPort);
    if (hit) return hit;
  }
  return endpoints.length === 1 ? endpoints[0]! : endpoints.join(", ");
}

/** `host:port` of an endpoint URL (brackets kept for IPv6), as gRPC and sockets print it. */
export function endpointHostPort(endpoint: string): string {
  const rest = endpoint.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "");
  return /:\d+$/.test(rest) ? rest : `${rest}:2379`;
}

const ETCD_FLAGS = "check --etcd-endpoints";

/**
 * The error to show for a failed etcd call: one of the classes above, with the original error as
 * `cause`. Errors that are already ours pass through.
 */
export function translateEtcdError(err: unknown, ctx: EtcdCallContext): Error {
  const e = translate(err, ctx);
  // The last endpoint tried failed; the others had failed before (etcd3 tries each in turn).
  if (e instanceof EtcdUnavailableError && ctx.endpoints.length > 1 && e !== err) {
    return new EtcdUnavailableError(`no etcd endpoint answered (${ctx.endpoints.join(", ")}); the last: ${e.message}`, { cause: e.cause });
  }
  return e;
}

function translate(err: unknown, ctx: EtcdCallContext): Error {
  if (err instanceof EtcdUnavailableError || err instanceof EtcdPermissionError || err instanceof EtcdAbortedError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const cause = { cause: err };
  const eps = ctx.endpoints;
  const what = `${ctx.permission === "write" ? "writing" : "reading"} ${ctx.key}${ctx.prefix ? "*" : ""}`;

  // etcd answered, and refused.
  if (/etcdserver: permission denied/.test(raw) || /^7 PERMISSION_DENIED/.test(raw)) {
    const who = ctx.username ? `etcd user "${ctx.username}"` : "this client (no --etcd-username)";
    // A lease key is one of many an agent writes over time: grant the subnets directory.
    const dir = ctx.prefix ? ctx.key : /\/subnets\/[^/]+$/.test(ctx.key) ? ctx.key.replace(/[^/]+$/, "") : undefined;
    const perm = ctx.permission === "write" ? "readwrite" : "read";
    const grant = ctx.username
      ? `grant a role of "${ctx.username}" ${perm} on ${dir ? `the prefix ${dir}` : "it"}, e.g. ` +
        `etcdctl role grant-permission ROLE ${dir ? `--prefix=true ${perm} ${dir}` : `${perm} ${ctx.key}`}`
      : "give --etcd-username and --etcd-password of a user whose role allows it";
    return new EtcdPermissionError(
      `etcd at ${where(eps)} denied ${ctx.permission} permission on ${ctx.key}${ctx.prefix ? " (prefix)" : ""} to ${who}: ${grant}`,
      ctx.permission, ctx.key, cause);
  }
  if (/authentication failed, invalid user ID or password/.test(raw)) {
    return new EtcdPermissionError(
      `etcd at ${where(eps)} refused the login of user "${ctx.username ?? ""}": wrong user name or password (--etcd-username, --etcd-password)`,
      "login", undefined, cause);
  }
  if (/etcdserver: user name is empty/.test(raw) || /etcdserver: (invalid auth token|user name not found)/.test(raw)) {
    return new EtcdPermissionError(
      `etcd at ${where(eps)} requires authentication: give --etcd-username and --etcd-password`, "login", undefined, cause);
  }
  if (/etcdserver: authentication is not enabled/.test(raw)) {
    return new EtcdPermissionError(
      `etcd at ${where(eps)} has authentication disabled but --etcd-username was given: drop --etcd-username/--etcd-password, or enable auth in etcd`,
      "login", undefined, cause);
  }
  if (/etcdserver: (no leader|leader changed|request timed out|too many requests)/.test(raw)) {
    const m = raw.match(/etcdserver: ([^.]+)/)![1];
    return new EtcdUnavailableError(`etcd at ${where(eps)} could not serve ${what}: ${m} (the cluster is electing a leader or overloaded; retrying)`, cause);
  }

  // etcd was not reached.
  if (/circuit breaker is open/.test(raw)) {
    return new EtcdUnavailableError(`etcd at ${where(eps)} is unreachable: it failed several times in a row and is rested before the next attempt (${ETCD_FLAGS})`, cause);
  }
  if (/DEADLINE_EXCEEDED|Deadline exceeded/.test(raw)) {
    const addr = raw.match(/remote_addr=([^,\s]+)/)?.[1];
    return new EtcdUnavailableError(
      `etcd at ${where(eps, addr)} did not answer ${what} within ${formatSeconds(ctx.timeoutMs)} ` +
      `(etcd stopped or overloaded, a firewall dropping packets, or a partition; ${ETCD_FLAGS})`, cause);
  }
  const nameFailed = raw.match(/Name resolution failed for target (?:dns:)?(\S+)/);
  if (nameFailed) {
    const hp = nameFailed[1]!;
    return new EtcdUnavailableError(`etcd at ${where(eps, hp)} is unreachable: the host name ${hp.replace(/:\d+$/, "")} does not resolve (${ETCD_FLAGS})`, cause);
  }
  if (/^14 UNAVAILABLE: Connection dropped$/.test(raw)) {
    return new EtcdUnavailableError(
      `etcd at ${where(eps)} dropped the connection while ${what}: it closed it, or stopped answering keepalive pings (its host gone, a cut link, a partition); retrying`, cause);
  }
  const last = lastConnectionError(raw);
  if (last !== undefined) return new EtcdUnavailableError(describeConnectionError(last, ctx), cause);
  if (/^14 UNAVAILABLE/.test(raw)) {
    return new EtcdUnavailableError(`etcd at ${where(eps)} is unavailable: ${stripGrpc(raw)} (${ETCD_FLAGS})`, cause);
  }
  if (/client was already closed/.test(raw)) return new EtcdAbortedError(what);
  return new Error(`etcd at ${where(eps)}: ${what} failed: ${stripGrpc(raw)}`, cause);
}

/** The "Last error: …" grpc-js puts in "No connection established", without its timestamp. */
function lastConnectionError(raw: string): string | undefined {
  const m = raw.match(/Last error: ([\s\S]*?)(?:\. Resolution note:[\s\S]*)?$/);
  if (!m) return undefined;
  return m[1]!.replace(/ \(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, "").replace(/^(?:Error|TypeError): /, "").trim();
}

/** A connection failure (as a socket, TLS or grpc-js says it) in a user's words. */
export function describeConnectionError(last: string, ctx: EtcdCallContext): string {
  const eps = ctx.endpoints;
  if (/^TLS with etcd at /.test(last)) return last; // from etcd_tls.ts: complete already
  const sys = last.match(/\b(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT|ECONNRESET|EPIPE|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)\b(?: (\S+))?/);
  if (sys && /ECONNRESET|EPIPE/.test(sys[1]!) && ctx.tls) {
    // Closed during the handshake: etcd drops a client whose certificate it does not accept.
    return `TLS with etcd at ${where(eps)} failed: etcd closed the connection during the handshake; ${clientCertHint("", ctx.tls)}`;
  }
  if (sys) {
    const [, code, addr] = sys;
    const why: Record<string, string> = {
      ECONNREFUSED: "connection refused (is etcd running there, on that port? check --etcd-endpoints)",
      EHOSTUNREACH: "no route to the host (check --etcd-endpoints and this host's routes)",
      ENETUNREACH: "the network is unreachable from this host (check --etcd-endpoints and this host's routes)",
      ETIMEDOUT: "the connection timed out (the host is down, or a firewall drops packets)",
      ECONNRESET: "the connection was reset",
      EPIPE: "the connection was closed",
      EADDRNOTAVAIL: "the address is not available on this host",
      ENOTFOUND: "the host name does not resolve (check --etcd-endpoints)",
      EAI_AGAIN: "the host name could not be resolved (a DNS failure)",
    };
    return `etcd at ${where(eps, addr)} is unreachable: ${why[code!]}`;
  }
  const alert = last.match(/(?:SSLV3|TLSV1(?:3)?)_ALERT_([A-Z_]+)|alert (?:number )?(\w[\w ]*)/i);
  if (alert) {
    const name = (alert[1] ?? alert[2] ?? "").toUpperCase().replace(/ /g, "_");
    return `TLS with etcd at ${where(eps)} failed: etcd refused the handshake (alert: ${name.toLowerCase().replace(/_/g, " ")}); ${clientCertHint(name, ctx.tls)}`;
  }
  if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long|http request/i.test(last)) {
    return `TLS with etcd at ${where(eps)} failed: the server does not speak TLS there (use http:// for a plain-text etcd, https:// only with TLS)`;
  }
  if (/^Failed to connect$|Connection dropped|closed|Session closed|GOAWAY/i.test(last)) {
    const plain = eps.some((e) => e.startsWith("http://")) && !ctx.tls;
    return `etcd at ${where(eps)} closed the connection while it was being set up` +
      (plain ? " (does it expect TLS? then use https:// and --etcd-cafile)" : "") + ` (${ETCD_FLAGS})`;
  }
  return `etcd at ${where(eps)} is unreachable: ${last} (${ETCD_FLAGS})`;
}

/** What to do when etcd refused the handshake: the client certificate is the usual cause. */
function clientCertHint(alert: string, tls: TlsFiles | undefined): string {
  if (!tls?.certFile) return "it requires a client certificate: give --etcd-certfile and --etcd-keyfile";
  if (alert === "" || /CERTIFICATE|UNKNOWN_CA|DECRYPT|HANDSHAKE/.test(alert)) {
    return `it did not accept the client certificate ${tls.certFile} (--etcd-certfile): not signed by a CA etcd trusts (--trusted-ca-file), expired, or not for client authentication`;
  }
  return `check that etcd accepts the client certificate ${tls.certFile} (--etcd-certfile, --etcd-keyfile)`;
}

/**
 * Why the server's certificate was not accepted, from the TLS error code the runtime reports
 * (Node's names, which Bun and Deno use too) and the certificate etcd presented.
 */
export function describeServerCertFailure(
  code: string | undefined, message: string, endpoint: string,
  cert: { subjectaltname?: string; valid_to?: string; valid_from?: string; issuer?: { CN?: string | string[] } } | undefined,
  tls: TlsFiles,
): string {
  const head = `TLS with etcd at ${endpoint} failed`;
  const cas = tls.caFile ? `the CA in --etcd-cafile ${tls.caFile}` : "the system's CAs (no --etcd-cafile)";
  switch (code) {
    case "CERT_HAS_EXPIRED":
      return `${head}: its certificate expired${cert?.valid_to ? ` on ${cert.valid_to}` : ""}; renew etcd's server certificate`;
    case "CERT_NOT_YET_VALID":
      return `${head}: its certificate is not valid yet${cert?.valid_from ? ` (from ${cert.valid_from})` : ""}; check the clocks`;
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "CERT_SIGNATURE_FAILURE":
      return `${head}: its certificate${cert?.issuer?.CN ? ` (issued by "${cert.issuer.CN}")` : ""} is not signed by ${cas}; give the CA that signed etcd's certificate`;
    case "ERR_TLS_CERT_ALTNAME_INVALID": {
      const host = endpointHostPort(endpoint).replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      const isIp = /^[\d.]+$|:/.test(host);
      return `${head}: its certificate is not valid for ${isIp ? "IP address" : "name"} ${host} ` +
        `(it names ${cert?.subjectaltname || "no subject alternative names"}); ` +
        `${isIp ? `an endpoint given by IP address needs "IP:${host}"` : `an endpoint given by name needs "DNS:${host}"`} in the certificate's subjectAltName, or use an endpoint it names`;
    }
    case "CERT_REVOKED":
      return `${head}: its certificate is revoked`;
    default:
      return `${head}: ${message}${code ? ` (${code})` : ""}`;
  }
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/** A gRPC status message without its code prefix. */
function stripGrpc(raw: string): string {
  return raw.replace(/^\d+ [A-Z_]+: /, "").replace(/^etcdserver: /, "");
}
