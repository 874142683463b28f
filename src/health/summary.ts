/**
 * @module The compact health summary each agent publishes (etcd: `<prefix>/health/<subnet key>`,
 * under its own short lease; never under `subnets/`, which flanneld reads) and the whole-cluster
 * matrix the dashboard draws from everyone's summaries. Pure: encode, decode, assemble.
 *
 * Value: `{"v":1,"at":<epoch s>,"peers":{"10.244.2.0/24":"u","10.244.3.0/24":"d",…}}`, one letter
 * per peer: `u` reachable, `d` unreachable, `m` reachable but full-size probes lost, `?` not yet
 * answered. About 20 bytes a peer: 1 kB for a 50-host cluster.
 */
import type { PeerState } from "./peer_state.ts";

/** Publishing stops above this many hosts (the matrix is for small clusters; etcd writes stay bounded). */
export const MATRIX_MAX_HOSTS = 50;

export type Cell = "u" | "d" | "m" | "?";

export interface Summary {
  /** When it was made, epoch seconds. */
  at: number;
  peers: Record<string, Cell>;
}

export function cellOf(s: PeerState): Cell {
  return s.state === "down" ? "d" : s.state === "unknown" ? "?" : s.mtuOk === false ? "m" : "u";
}

export function encodeSummary(s: Summary): string {
  return JSON.stringify({ v: 1, at: s.at, peers: s.peers });
}

/** Parses another agent's summary; undefined for anything malformed (it is their data, not ours to trust). */
export function decodeSummary(text: string): Summary | undefined {
  let o: unknown;
  try { o = JSON.parse(text); } catch { return undefined; }
  if (typeof o !== "object" || o === null) return undefined;
  const { v, at, peers } = o as Record<string, unknown>;
  if (v !== 1 || typeof at !== "number" || typeof peers !== "object" || peers === null || Array.isArray(peers)) return undefined;
  const out: Record<string, Cell> = {};
  for (const [k, c] of Object.entries(peers)) if (c === "u" || c === "d" || c === "m" || c === "?") out[k] = c;
  return { at, peers: out };
}

/** The matrix: `rows[i][j]` is host i's view of host j (`-` itself, `.` no summary or a stale one). */
export interface Matrix {
  hosts: string[];
  rows: string[];
}

/**
 * Assembles the matrix from every host's summary (by subnet label), ours included, for `hosts`
 * (sorted by the caller). Summaries older than `maxAgeS` at `now` (epoch s) count as missing.
 */
export function buildMatrix(hosts: readonly string[], summaries: ReadonlyMap<string, Summary>, now: number, maxAgeS: number): Matrix {
  const rows = hosts.map((from) => {
    const s = summaries.get(from);
    const fresh = s && now - s.at <= maxAgeS ? s : undefined;
    return hosts.map((to) => (to === from ? "-" : fresh?.peers[to] ?? ".")).join("");
  });
  return { hosts: [...hosts], rows };
}
