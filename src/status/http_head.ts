/**
 * @module The head of an HTTP/1.x request (request line and header fields, RFC 9112 §2–§6) as
 * the status server reads it: a pure parser over the bytes before the blank line, and the
 * server's rules on what it will answer (GET and HEAD, no request body). Kept apart from the
 * socket so every refusal is tested byte for byte.
 */

/** A request head the server can answer. */
export interface RequestHead {
  method: string;
  /** The request target as sent: origin form (`/readyz?x`) or absolute form (`http://h/readyz`). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: 0 | 1;
  /** Field lines in order, names lower-cased, values trimmed. */
  headers: [name: string, value: string][];
  /** Whether the client asked to keep the connection (the version's default, or `Connection`). */
  keepAlive: boolean;
  /** Whether a body follows the head (Content-Length > 0, or any Transfer-Encoding). */
  hasBody: boolean;
}

/** A request the server refuses, with the status and the words of its answer. */
export class HttpRefusal extends Error {
  constructor(readonly status: number, msg: string, readonly headers: Record<string, string> = {}) {
    super(msg);
    this.name = "HttpRefusal";
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/1\.([01])$/;
// Field values: visible ASCII, obs-text, space and tab; no NUL, CR, LF or other controls.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Parses a request head (`text` is latin1, without the final blank line). Throws HttpRefusal 400
 * for anything malformed, 505 for a version other than HTTP/1.0 or 1.1.
 *
 * @example
 * const h = parseRequestHead("GET /readyz HTTP/1.1\r\nHost: x");
 * // h.method === "GET", h.target === "/readyz", h.keepAlive === true, h.hasBody === false
 */
export function parseRequestHead(text: string): RequestHead {
  const lines = text.split("\r\n");
  const first = lines[0] ?? "";
  const m = REQUEST_LINE.exec(first);
  if (!m) {
    if (/^\S+ \S+ HTTP\/\d/.test(first)) throw new HttpRefusal(505, "the status server speaks HTTP/1.0 and HTTP/1.1 only");
    throw new HttpRefusal(400, "malformed request line: expected METHOD /path HTTP/1.1");
  }
  const [, method, target, minor] = m;
  if (!target!.startsWith("/") && !/^https?:\/\//i.test(target!)) {
    throw new HttpRefusal(400, `request target ${JSON.stringify(target)} is not a path such as /healthz`);
  }
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = colon > 0 ? line.slice(0, colon) : "";
    // A name with trailing space, or a continuation line (obs-fold), is refused (RFC 9112 §5.1, §5.2).
    if (!TOKEN.test(name)) throw new HttpRefusal(400, "malformed header line: expected Name: value");
    const value = line.slice(colon + 1).trim();
    if (!FIELD_VALUE.test(value)) throw new HttpRefusal(400, `header ${name} holds control characters`);
    headers.push([name.toLowerCase(), value]);
  }
  const all = (n: string) => headers.filter(([k]) => k === n).map(([, v]) => v);
  const lengths = all("content-length");
  for (const v of lengths) {
    if (!/^\d+$/.test(v) || v !== lengths[0]) throw new HttpRefusal(400, `Content-Length ${JSON.stringify(v)} is not one whole number`);
  }
  const hasBody = all("transfer-encoding").length > 0 || (lengths.length > 0 && Number(lengths[0]) > 0);
  const connection = all("connection").join(",").toLowerCase().split(",").map((s) => s.trim());
  const keepAlive = minor === "1" ? !connection.includes("close") : connection.includes("keep-alive");
  return { method: method!, target: target!, minor: minor === "1" ? 1 : 0, headers, keepAlive, hasBody };
}

/** The methods the status server answers: every endpoint only reads. */
export const ALLOWED_METHODS = ["GET", "HEAD"] as const;

/**
 * The server's rules, applied before a byte of any body is read: a method other than GET or HEAD
 * is 405 (with `Allow`), a body on GET or HEAD is 413. Returns nothing when the request may go on.
 */
export function refuseUnanswerable(head: RequestHead): void {
  if (!(ALLOWED_METHODS as readonly string[]).includes(head.method)) {
    throw new HttpRefusal(405, `method ${head.method} is not allowed: the status server answers ${ALLOWED_METHODS.join(" and ")}`,
      { allow: ALLOWED_METHODS.join(", ") });
  }
  if (head.hasBody) throw new HttpRefusal(413, "the status server takes no request body");
}
