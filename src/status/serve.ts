/**
 * @module Serves a fetch-style handler (the Hono app) over HTTP/1.x on a `node:net` server, which
 * Bun and Deno both provide, with the status server's limits enforced by hand so they hold the
 * same under both: node:http in Bun and Deno differs in which of its limits it honours
 * (`maxConnections`, `headersTimeout`, `maxHeaderSize` are ignored by one or the other), and the
 * agent must not be exhausted through its status port (a 1000 MB POST grew it to 3 GB; 2000
 * idle connections took every file descriptor).
 *
 * Flow of one connection:
 *   1. past `maxConnections` open ones, a new connection is closed at once (nothing read);
 *   2. the request head must arrive within `headerTimeoutMs` (from the connection, or from the
 *      previous answer on a kept connection) and fit `maxHeaderBytes`; else 408/431 and close;
 *   3. a method other than GET/HEAD is 405 and a request body is 413, answered before a byte of
 *      the body is read; the connection then closes, discarding what the client still sends for
 *      at most `lingerMs` (so it can read the answer) and never keeping it;
 *   4. else the handler answers (one request at a time, pipelined ones wait in the bounded
 *      buffer) and the connection is kept when the client asked for it;
 *   5. an answer the client does not read stops the connection: nothing more is read or
 *      answered until it drains, and a client that has not taken it within `writeTimeoutMs`
 *      is cut (else pipelined requests never read would pile answers up in memory).
 */
import { createServer, type Server, type Socket } from "node:net";
import { HttpRefusal, parseRequestHead, refuseUnanswerable, type RequestHead } from "./http_head.ts";

/** The status server's limits against a client that would exhaust the agent. */
export interface ServeLimits {
  /** Connections open at once; more are closed at once. */
  maxConnections: number;
  /** Time for a request head to arrive, and the idle time allowed between kept requests. */
  headerTimeoutMs: number;
  /** Largest request head (request line and headers). */
  maxHeaderBytes: number;
  /** How long a refused request's connection may drain before it is cut. */
  lingerMs: number;
  /** How long an answer may wait for the client to read it. */
  writeTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServeLimits = {
  maxConnections: 64, headerTimeoutMs: 5000, maxHeaderBytes: 8192, lingerMs: 2000, writeTimeoutMs: 10_000,
};

export interface RunningServer {
  readonly port: number;
  /** Connections open now, and refused since start (past `maxConnections`). */
  stats(): { open: number; refused: number };
  close(): Promise<void>;
}

const REASONS: Record<number, string> = {
  200: "OK", 204: "No Content", 301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
  404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout", 413: "Content Too Large", 431: "Request Header Fields Too Large",
  500: "Internal Server Error", 503: "Service Unavailable", 505: "HTTP Version Not Supported",
};

const CRLF2 = Buffer.from("\r\n\r\n");

function head(status: number, headers: [string, string][]): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? "Status"}\r\n${headers.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`;
}

type Fetch = (req: Request) => Response | Promise<Response>;

/** One client connection: reads heads, answers one request at a time. */
class Connection {
  #buf: Buffer = Buffer.alloc(0);
  #busy = false;
  #closing = false;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly socket: Socket, readonly fetch: Fetch, readonly origin: string, readonly limits: ServeLimits) {
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => { /* a reset by the client: 'close' follows */ });
    socket.on("close", () => clearTimeout(this.#timer));
    this.#arm();
  }

  /** Starts the wait for the next request head. */
  #arm(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      // Nothing sent: an idle kept connection, closed silently; a partial head: 408.
      if (this.#buf.length === 0) this.socket.destroy();
      else this.#refuse(new HttpRefusal(408, `the request head did not arrive within ${this.limits.headerTimeoutMs} ms`));
    }, this.limits.headerTimeoutMs);
  }

  #onData(chunk: Buffer): void {
    if (this.#closing) return; // draining a refused request: the bytes are dropped
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.#busy) {
      // Pipelined requests wait while one is answered; never more than one head's worth.
      if (this.#buf.length > this.limits.maxHeaderBytes) this.socket.destroy();
      return;
    }
    this.#next();
  }

  /** Answers the next complete request in the buffer, if there is one. */
  #next(): void {
    // Blank lines before a request line are ignored (RFC 9112 §2.2).
    let start = 0;
    while (this.#buf[start] === 0x0d || this.#buf[start] === 0x0a) start++;
    if (start > 0) this.#buf = this.#buf.subarray(start);
    const end = this.#buf.indexOf(CRLF2);
    if (end < 0 || end + 4 > this.limits.maxHeaderBytes) {
      if (this.#buf.length >= this.limits.maxHeaderBytes) {
        this.#refuse(new HttpRefusal(431, `the request head is larger than ${this.limits.maxHeaderBytes} bytes`));
      }
      return;
    }
    const text = this.#buf.subarray(0, end).toString("latin1");
    this.#buf = this.#buf.subarray(end + 4);
    clearTimeout(this.#timer);
    let req: RequestHead;
    try {
      req = parseRequestHead(text);
      refuseUnanswerable(req);
    } catch (e) {
      this.#refuse(e instanceof HttpRefusal ? e : new HttpRefusal(400, String(e)));
      return;
    }
    this.#busy = true;
    this.#answer(req).then(() => {
      this.#busy = false;
      if (!req.keepAlive) return this.#close();
      this.#arm();
      this.#next();
    }, () => this.socket.destroy());
  }

  async #answer(req: RequestHead): Promise<void> {
    let res: Response;
    let body: Uint8Array;
    try {
      const headers = new Headers();
      for (const [k, v] of req.headers) headers.append(k, v);
      res = await this.fetch(new Request(new URL(req.target, this.origin), { method: req.method, headers }));
      body = new Uint8Array(await res.arrayBuffer());
    } catch (e) {
      res = new Response(null, { status: 500 });
      body = new TextEncoder().encode(`internal error: ${(e as Error).message}\n`);
    }
    const out: [string, string][] = [];
    res.headers.forEach((v, k) => { if (k !== "content-length" && k !== "connection" && k !== "transfer-encoding") out.push([k, v]); });
    // HEAD: the length of what GET would send when the handler said it; no body either way.
    if (req.method === "HEAD") {
      const length = res.headers.get("content-length");
      if (length !== null) out.push(["content-length", length]);
    } else {
      out.push(["content-length", String(body.byteLength)]);
    }
    out.push(["connection", req.keepAlive ? "keep-alive" : "close"]);
    // write() says false once the socket buffers more than its high-water mark: 'drain' follows.
    let flushed = this.socket.write(head(res.status, out));
    if (req.method !== "HEAD" && body.byteLength > 0) flushed = this.socket.write(body) && flushed;
    if (!flushed) await this.#drained();
  }

  /** Waits until the answer is taken by the client; stops reading meanwhile; cuts a client too slow. */
  #drained(): Promise<void> {
    if (this.socket.writableLength === 0) return Promise.resolve();
    this.socket.pause();
    return new Promise((resolve, reject) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.socket.off("drain", onDrain);
        this.socket.off("close", onClose);
        if (ok) {
          this.socket.resume();
          resolve();
        } else {
          reject(new Error("closed"));
        }
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => { this.socket.destroy(); done(false); }, this.limits.writeTimeoutMs);
      this.socket.on("drain", onDrain);
      this.socket.on("close", onClose);
    });
  }

  /** Answers a refused request and closes, without reading what the client still sends. */
  #refuse(r: HttpRefusal): void {
    const text = `${r.message}\n`;
    const headers: [string, string][] = [
      ...Object.entries(r.headers), ["content-type", "text/plain; charset=utf-8"],
      ["content-length", String(Buffer.byteLength(text))], ["connection", "close"],
    ];
    this.socket.write(head(r.status, headers) + text);
    this.#close();
  }

  /** Ends the connection; what the client still sends is dropped for `lingerMs`, then it is cut. */
  #close(): void {
    this.#closing = true;
    this.#buf = Buffer.alloc(0);
    clearTimeout(this.#timer);
    this.socket.end();
    this.#timer = setTimeout(() => this.socket.destroy(), this.limits.lingerMs);
  }
}

/**
 * Listens on `hostname:port` (port 0: any free port) and answers with `fetch`. Rejects when the
 * address is unusable.
 */
export function serve(fetch: Fetch, hostname: string, port: number, limits: Partial<ServeLimits> = {}): Promise<RunningServer> {
  const lim: ServeLimits = { ...DEFAULT_LIMITS, ...limits };
  const open = new Set<Socket>();
  let refused = 0;
  let origin = "";
  const server: Server = createServer({ allowHalfOpen: false }, (socket) => {
    if (open.size >= lim.maxConnections) {
      refused++;
      socket.on("error", () => {});
      socket.destroy();
      return;
    }
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    new Connection(socket, fetch, origin, lim);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot listen on ${hostname}:${port} for the status server: ${(e as Error).message}`)));
    server.listen(port, hostname, () => {
      // Accept errors (EMFILE when the process is out of descriptors) must not end the agent.
      server.on("error", () => {});
      const addr = server.address();
      const bound = typeof addr === "object" && addr ? addr.port : port;
      origin = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${bound}`;
      resolve({
        port: bound,
        stats: () => ({ open: open.size, refused }),
        close: () => new Promise<void>((r) => {
          for (const s of open) s.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}
