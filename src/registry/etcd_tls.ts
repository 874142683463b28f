/**
 * @module TLS to etcd as its own clients do it: the server's certificate must chain to
 * --etcd-cafile, and name the endpoint — an endpoint by IP address among its IP SANs, by name
 * among its DNS SANs (Go's crypto/tls, which etcd and etcdctl use, does the same).
 *
 * Why not @grpc/grpc-js's own `createSsl()`: it passes the endpoint's host as the TLS ServerName
 * even when it is an IP address, which RFC 6066 forbids and Bun and Deno refuse outright
 * ("Setting the TLS ServerName to an IP address is not permitted"), so etcd by IP over TLS — the
 * usual case (kubeadm) — could not connect at all. `grpc.ssl_target_name_override` cannot help: it
 * is one name for all endpoints and is sent as ServerName too. This credentials object sends SNI
 * only for names and checks the identity against the endpoint itself; its failures name the
 * endpoint and the reason (expired, unknown CA, which SANs the certificate has).
 */
import { isIP, type Socket } from "node:net";
import { type PeerCertificate, type SecureContext, checkServerIdentity, connect } from "node:tls";
import { CallCredentials, ChannelCredentials } from "@grpc/grpc-js";
import { type TlsFiles, describeServerCertFailure } from "./etcd_errors.ts";

/** PEM contents of the TLS files (read by the caller). */
export interface TlsPem {
  ca?: Buffer;
  key?: Buffer;
  cert?: Buffer;
}

type GrpcUri = Parameters<ChannelCredentials["_createSecureConnector"]>[0];
type SecureConnector = ReturnType<ChannelCredentials["_createSecureConnector"]>;

/** Channel credentials for etcd over TLS; `scheme` is "https" in the messages. */
export class EtcdTlsCredentials extends ChannelCredentials {
  readonly #context: SecureContext;

  constructor(context: SecureContext, readonly files: TlsFiles) {
    super();
    this.#context = context;
  }

  _isSecure(): boolean {
    return true;
  }

  _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  _createSecureConnector(target: GrpcUri, _options: unknown, callCredentials?: CallCredentials): SecureConnector {
    const host = targetHost(target.path);
    const context = this.#context;
    const files = this.files;
    const endpoint = `https://${host.includes(":") ? `[${host}]` : host}:${targetPort(target.path)}`;
    const calls = callCredentials ?? CallCredentials.createEmpty();
    return {
      connect: (socket: Socket) => new Promise((resolve, reject) => {
        let seen: PeerCertificate | undefined;
        const tls = connect({
          socket, secureContext: context, ALPNProtocols: ["h2"],
          host, servername: isIP(host) ? undefined : host,
          // Checked below, so the failure can say why, with the certificate at hand.
          rejectUnauthorized: false,
          checkServerIdentity: (_name, cert) => {
            seen = cert;
            return checkServerIdentity(host, cert);
          },
        }, () => {
          if (tls.authorized) {
            resolve({ socket: tls, secure: true });
            return;
          }
          const err = tls.authorizationError as unknown as (Error & { code?: string }) | string | null;
          const code = typeof err === "string" ? err : err?.code;
          const cert = seen ?? peerCertificate(tls);
          tls.destroy();
          reject(new Error(describeServerCertFailure(code, typeof err === "string" ? err : err?.message ?? "", endpoint, cert, files)));
        });
        tls.once("error", (e) => reject(e));
      }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => {},
    };
  }
}

function peerCertificate(tls: ReturnType<typeof connect>): PeerCertificate | undefined {
  try {
    const c = tls.getPeerCertificate();
    return c && Object.keys(c).length ? c : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The host of a channel target path as grpc-js hands it over: `host:port`, `[v6]:port`, or a
 * bare host (etcd3 strips the scheme of each endpoint before it builds the channel).
 */
export function targetHost(path: string): string {
  const p = path.replace(/^\/+/, "");
  if (p.startsWith("[")) return p.slice(1, p.indexOf("]"));
  const colons = p.split(":").length - 1;
  if (colons === 1) return p.slice(0, p.indexOf(":"));
  return p; // a bare name, or a bare IPv6 address
}

function targetPort(path: string): string {
  const m = path.match(/(?:\]|^[^:]*):(\d+)$/);
  return m ? m[1]! : "443";
}
