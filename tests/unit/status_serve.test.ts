/**
 * @module The status server's HTTP layer under hostile clients, over real loopback sockets: the
 * request-head parser byte for byte, then `serve()` with small limits — refused methods and
 * bodies answered before the body is sent, oversized and late heads, the connection limit, kept
 * and pipelined connections.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { connect, type Socket } from "node:net";
import { HttpRefusal, parseRequestHead, refuseUnanswerable } from "../../src/status/http_head.ts";
import { type RunningServer, serve } from "../../src/status/serve.ts";

function refusal(f: () => unknown): [number, string] | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof HttpRefusal) return [e.status, e.message];
    throw e;
  }
  return undefined;
}

test("parseRequestHead() reads the request line, headers, keep-alive and body presence", () => {
  expect(parseRequestHead("GET /readyz?x=1 HTTP/1.1\r\nHost: a\r\nX-A:  b c ")).toEqual({
    method: "GET", target: "/readyz?x=1", minor: 1, headers: [["host", "a"], ["x-a", "b c"]], keepAlive: true, hasBody: false,
  });
  expect(parseRequestHead("GET / HTTP/1.0").keepAlive).toBe(false);
  expect(parseRequestHead("GET / HTTP/1.0\r\nConnection: Keep-Alive").keepAlive).toBe(true);
  expect(parseRequestHead("GET / HTTP/1.1\r\nConnection: foo, close").keepAlive).toBe(false);
  expect(parseRequestHead("POST / HTTP/1.1\r\nContent-Length: 0").hasBody).toBe(false);
  expect(parseRequestHead("POST / HTTP/1.1\r\nContent-Length: 1000000000").hasBody).toBe(true);
  expect(parseRequestHead("POST / HTTP/1.1\r\nTransfer-Encoding: chunked").hasBody).toBe(true);
  expect(parseRequestHead("GET http://h:1/healthz HTTP/1.1").target).toBe("http://h:1/healthz");
});

test("parseRequestHead() refuses malformed heads with 400 and other versions with 505", () => {
  const cases: [string, number][] = [
    ["", 400], ["GET", 400], ["GET /  HTTP/1.1", 400], ["GET * HTTP/1.1", 400], ["GET example.com:80 HTTP/1.1", 400],
    ["GET / HTTP/2.0", 505], ["GET / HTTP/1.1\r\nNo colon", 400], ["GET / HTTP/1.1\r\nA : b", 400],
    ["GET / HTTP/1.1\r\nA: b\r\n folded", 400], ["GET / HTTP/1.1\r\nA: b\x00c", 400],
    ["GET / HTTP/1.1\r\nContent-Length: -1", 400], ["GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400],
  ];
  for (const [text, status] of cases) expect([text, refusal(() => parseRequestHead(text))?.[0]]).toEqual([text, status]);
});

test("refuseUnanswerable() allows GET and HEAD without a body only", () => {
  expect(refusal(() => refuseUnanswerable(parseRequestHead("GET / HTTP/1.1")))).toBeUndefined();
  expect(refusal(() => refuseUnanswerable(parseRequestHead("HEAD / HTTP/1.1")))).toBeUndefined();
  expect(refusal(() => refuseUnanswerable(parseRequestHead("POST /healthz HTTP/1.1\r\nContent-Length: 1000000000")))).toEqual(
    [405, "method POST is not allowed: the status server answers GET and HEAD"]);
  expect(refusal(() => refuseUnanswerable(parseRequestHead("get / HTTP/1.1")))?.[0]).toBe(405);
  expect(refusal(() => refuseUnanswerable(parseRequestHead("GET / HTTP/1.1\r\nContent-Length: 5")))).toEqual(
    [413, "the status server takes no request body"]);
});

// ---- serve() over real sockets ----

let server: RunningServer;
const LIMITS = { maxConnections: 4, headerTimeoutMs: 300, maxHeaderBytes: 1024, lingerMs: 200 };

beforeAll(async () => {
  server = await serve((req) => new Response(`${req.method} ${new URL(req.url).pathname}`), "127.0.0.1", 0, LIMITS);
});
afterAll(() => server.close());

/** A raw client: everything the server sends until it closes the connection. */
function client(): { sock: Socket; text: () => string; closed: Promise<string> } {
  const sock = connect(server.port, "127.0.0.1");
  let text = "";
  sock.on("data", (d) => (text += d.toString("latin1")));
  sock.on("error", () => {});
  const closed = new Promise<string>((r) => sock.on("close", () => r(text)));
  return { sock, text: () => text, closed };
}

async function until(f: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !f(); i++) await Bun.sleep(10);
  if (!f()) throw new Error(`timed out waiting for ${what}`);
}

test("serve() answers GET and HEAD, keeps HTTP/1.1 connections and answers pipelined requests in order", async () => {
  const r = await fetch(`http://127.0.0.1:${server.port}/healthz`);
  expect([r.status, await r.text()]).toEqual([200, "GET /healthz"]);
  const c = client();
  c.sock.write("GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n");
  const text = await c.closed;
  expect(text.match(/HTTP\/1\.1 \d+/g)).toEqual(["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"]);
  expect(text).toContain("content-length: 6\r\nconnection: keep-alive\r\n\r\nGET /aHTTP/1.1 200");
  expect(text.endsWith("connection: close\r\n\r\nGET /c")).toBe(true);
  expect(text).not.toContain("HEAD /b");
});

test("serve() answers a 1000 MB POST with 405 from its head alone and closes", async () => {
  const c = client();
  c.sock.write("POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n");
  // The server answers without waiting for the body and drops what follows.
  await until(() => c.text().includes("\r\n\r\n"), "the 405");
  c.sock.write(Buffer.alloc(1 << 20));
  const text = await c.closed;
  expect(text).toStartWith("HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\n");
  expect(text).toContain("connection: close");
});

test("serve() refuses a GET with a body (413), an oversized head (431), a late head (408), garbage (400)", async () => {
  const statusOf = async (bytes: string) => {
    const c = client();
    c.sock.write(bytes);
    return (await c.closed).split("\r\n")[0];
  };
  expect(await statusOf("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello")).toBe("HTTP/1.1 413 Content Too Large");
  expect(await statusOf(`GET / HTTP/1.1\r\nX: ${"a".repeat(2000)}`)).toBe("HTTP/1.1 431 Request Header Fields Too Large");
  expect(await statusOf("GET / HTTP/1.1\r\nHost: slow")).toBe("HTTP/1.1 408 Request Timeout");
  expect(await statusOf("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n")).toBe("HTTP/1.1 400 Bad Request");
});

test("serve() closes idle connections silently and refuses connections past the limit", async () => {
  const idle = [client(), client(), client(), client()];
  await until(() => server.stats().open === 4, "4 open connections");
  const extra = client();
  expect(await extra.closed).toBe(""); // closed at once, nothing answered
  expect(server.stats().refused).toBeGreaterThanOrEqual(1);
  // The idle ones go after headerTimeoutMs without a word; then the server answers again.
  expect(await Promise.all(idle.map((c) => c.closed))).toEqual(["", "", "", ""]);
  const r = await fetch(`http://127.0.0.1:${server.port}/readyz`);
  expect(r.status).toBe(200);
});

test("serve() stops answering a client that does not read its answers, and cuts it after writeTimeoutMs", async () => {
  let answered = 0;
  const big = new Uint8Array(1 << 20);
  const s = await serve(() => (answered++, new Response(big)), "127.0.0.1", 0, { ...LIMITS, writeTimeoutMs: 500 });
  try {
    const sock = connect(s.port, "127.0.0.1");
    sock.on("error", () => {});
    sock.pause(); // never reads
    sock.write("GET /big HTTP/1.1\r\n\r\n".repeat(200)); // 200 MB of answers asked for, in 4.6 kB
    await until(() => answered > 0, "the first answer");
    await until(() => s.stats().open === 0, "the server to cut the connection"); // not taken in time
    sock.destroy();
    // Only what the kernel's socket buffers hold was produced, not 200 answers kept in memory.
    expect(answered).toBeLessThan(50);
  } finally {
    await s.close();
  }
});
