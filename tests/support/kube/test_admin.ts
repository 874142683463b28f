/**
 * @module Test controls over HTTP, for a server that runs as its own process (e.g. inside a
 * network namespace): `POST /_test/<action>` with a JSON body, admin only (any other user gets
 * the 403 of an unknown path). Each action is one method of KubeApiServer:
 *
 *   compact {rv?}                       → {compactedRv}
 *   tokens {user, groups?, rules?}      → {token}          (rules: [{resource, verbs}])
 *   tokens/rotate {token}               → {token}
 *   tokens/restrict {token, rules}      → {}
 *   tokens/revoke {token}               → {}
 *   client-cert {user, groups?}         → {cert, key}
 *   pods {namespace, name, nodeName}    → the Pod
 *   assign-pod-cidrs {node, cidrs?}     → the Node
 *   bookmark {} / end-watches {}        → {}
 *   outage {ms} | {resumeFile}          → {} then the listener is down for ms, or until the
 *                                         file exists (it is removed then)
 */
import { existsSync, rmSync } from "node:fs";
import type { AccessRule } from "./auth.ts";
import { badRequest, pathNotFound } from "./status.ts";

/** The server methods the controls call. */
export interface AdminTarget {
  compact(rv?: number): void;
  readonly store: { compactedRv: number };
  addToken(user: { name: string; groups: string[] }, rules?: readonly AccessRule[]): string;
  rotateToken(token: string): string;
  restrictToken(token: string, rules: readonly AccessRule[]): void;
  revokeToken(token: string): void;
  clientCert(user: string, groups?: string[]): { cert: string; key: string };
  addPod(namespace: string, name: string, nodeName: string): unknown;
  assignPodCidrs(name: string, cidrs?: string[]): unknown;
  bookmarkWatches(): void;
  endWatches(): void;
  stopListener(): Promise<void>;
  startListener(): Promise<void>;
}

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== "string" || v === "") throw badRequest(`/_test: "${key}" must be a non-empty string, not ${JSON.stringify(v)}`);
  return v;
}

function rules(body: Record<string, unknown>): AccessRule[] {
  const r = body.rules ?? [];
  if (!Array.isArray(r) || !r.every((x) => typeof x?.resource === "string" && Array.isArray(x?.verbs))) {
    throw badRequest(`/_test: "rules" must be a list of {resource, verbs}, not ${JSON.stringify(r)}`);
  }
  return r as AccessRule[];
}

/** Runs one control action; throws a Status for an unknown action or a bad body. */
export async function runAdminAction(target: AdminTarget, action: string, body: Record<string, unknown>): Promise<unknown> {
  switch (action) {
    case "compact":
      target.compact(typeof body.rv === "number" ? body.rv : undefined);
      return { compactedRv: target.store.compactedRv };
    case "tokens": {
      const groups = Array.isArray(body.groups) ? (body.groups as string[]) : [];
      return { token: target.addToken({ name: str(body, "user"), groups }, rules(body)) };
    }
    case "tokens/rotate": return { token: target.rotateToken(str(body, "token")) };
    case "tokens/restrict": target.restrictToken(str(body, "token"), rules(body)); return {};
    case "tokens/revoke": target.revokeToken(str(body, "token")); return {};
    case "client-cert": return target.clientCert(str(body, "user"), Array.isArray(body.groups) ? (body.groups as string[]) : []);
    case "pods": return target.addPod(str(body, "namespace"), str(body, "name"), str(body, "nodeName"));
    case "assign-pod-cidrs": return target.assignPodCidrs(str(body, "node"), Array.isArray(body.cidrs) ? (body.cidrs as string[]) : undefined);
    case "bookmark": target.bookmarkWatches(); return {};
    case "end-watches": target.endWatches(); return {};
    case "outage": {
      const ms = body.ms === undefined ? undefined : Number(body.ms);
      const resume = body.resumeFile;
      if (ms !== undefined && (!Number.isFinite(ms) || ms < 0)) throw badRequest(`/_test/outage: "ms" must be a number of milliseconds, not ${JSON.stringify(body.ms)}`);
      if ((ms === undefined) === (typeof resume !== "string" || resume === "")) throw badRequest(`/_test/outage: give either "ms" or "resumeFile" (a path the server waits for)`);
      // After the answer is out: stop, wait, listen again.
      setTimeout(() => void target.stopListener().then(async () => {
        if (ms !== undefined) await new Promise((r) => setTimeout(r, ms));
        else {
          while (!existsSync(resume as string)) await new Promise((r) => setTimeout(r, 20));
          rmSync(resume as string, { force: true });
        }
        await target.startListener();
      }), 10);
      return {};
    }
    default:
      throw pathNotFound();
  }
}
