/**
 * @module Who a request is (authentication) and what it may do (authorization), as
 * kube-apiserver decides with bearer tokens, x509 client certificates and RBAC: an unknown token
 * is 401; no credentials is `system:anonymous`, which may read only `/version` and health paths;
 * members of `system:masters` may do anything; any other user may do what its rules allow, else
 * 403 with RBAC's wording. Rules are `{ resource, verbs }` pairs (the shape of
 * src/kube/access.ts's `KUBE_API_ACCESS`), `"*"` matching any.
 */
import { randomBytes } from "node:crypto";
import { forbidden, forbiddenPath, unauthorized } from "./status.ts";

/** An authenticated identity. */
export interface KubeUser { name: string; groups: string[] }

/** An RBAC-like rule: these verbs on this resource (`nodes`, `nodes/status`, `pods`, `*`). */
export interface AccessRule { resource: string; verbs: readonly string[]; names?: readonly string[] }

/** What a request asks to do, as kube-apiserver's RequestInfo describes it. */
export interface RequestAttributes {
  verb: string;
  /** Empty for a non-resource request (`path` then names it). */
  resource: string;
  subresource: string;
  name?: string;
  namespace?: string;
  path: string;
}

/** The name and groups of a service account's token, as the token authenticator gives them. */
export function serviceAccountUser(namespace: string, name: string): KubeUser {
  return { name: `system:serviceaccount:${namespace}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`, "system:authenticated"] };
}

export const ANONYMOUS: KubeUser = { name: "system:anonymous", groups: ["system:unauthenticated"] };
/** Paths system:public-info-viewer opens to everyone. */
const PUBLIC_PATHS = new Set(["/version", "/version/", "/healthz", "/livez", "/readyz"]);

export class Authenticator {
  private tokens = new Map<string, KubeUser>();
  /** Rules per user name; users absent here (and not in system:masters) may do nothing. */
  private rules = new Map<string, AccessRule[]>();

  /** A new random token for `user`, or `token` when given; `rules` (if any) become the user's rules. */
  addToken(user: KubeUser, rules?: readonly AccessRule[], token = randomBytes(24).toString("base64url")): string {
    this.tokens.set(token, { name: user.name, groups: [...new Set([...user.groups, "system:authenticated"])] });
    if (rules) this.rules.set(user.name, [...rules]);
    return token;
  }

  /** The user a token stands for. */
  userOfToken(token: string): KubeUser | undefined {
    return this.tokens.get(token);
  }

  /** Replaces a token by a new one for the same user (the old one is 401 from now on). */
  rotateToken(token: string, next = randomBytes(24).toString("base64url")): string {
    const user = this.tokens.get(token);
    if (!user) throw new Error(`rotateToken: token ${token.slice(0, 6)}… is not known to this server`);
    this.tokens.delete(token);
    this.tokens.set(next, user);
    return next;
  }

  revokeToken(token: string): void {
    this.tokens.delete(token);
  }

  /** Sets what a user (by name) may do. */
  setRules(userName: string, rules: readonly AccessRule[]): void {
    this.rules.set(userName, [...rules]);
  }

  /**
   * The user of a request: by its bearer token, else its client certificate, else anonymous.
   * Throws 401 for an unknown token, or for a certificate this server's CA did not sign (and no
   * valid token), as kube-apiserver's union of authenticators does.
   */
  authenticate(authorization: string | undefined, certUser: KubeUser | "untrusted" | undefined): KubeUser {
    if (authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      const user = m ? this.tokens.get(m[1]!) : undefined;
      if (!user) throw unauthorized();
      return user;
    }
    if (certUser === "untrusted") throw unauthorized();
    if (certUser) return { name: certUser.name, groups: [...new Set([...certUser.groups, "system:authenticated"])] };
    return ANONYMOUS;
  }

  /** Throws a 403 `Status` unless `user` may do `req`. */
  authorize(user: KubeUser, req: RequestAttributes): void {
    if (user.groups.includes("system:masters")) return;
    if (req.resource === "") {
      // system:public-info-viewer for everyone, system:discovery for the authenticated.
      if (PUBLIC_PATHS.has(req.path)) return;
      if (user.groups.includes("system:authenticated") && req.verb === "get" && /^\/(api|apis)(\/|$)|^\/openapi\//.test(req.path)) return;
      throw forbiddenPath(user.name, req.verb, req.path);
    }
    const full = req.subresource ? `${req.resource}/${req.subresource}` : req.resource;
    const allowed = (this.rules.get(user.name) ?? []).some((r) =>
      (r.resource === "*" || r.resource === full) &&
      (r.verbs.includes("*") || r.verbs.includes(req.verb)) &&
      (!r.names || (req.name !== undefined && r.names.includes(req.name))));
    if (!allowed) throw forbidden(user.name, req.verb, req.resource, req.subresource, req.name, req.namespace);
  }
}
