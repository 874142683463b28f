/**
 * @module weft's only way to program the kernel's network state: rtnetlink messages as data
 * (builders and parsers), a socket that sends them and reads acks and dumps, a monitor for
 * change events, and the operations the backends call (each equal to one `ip`/`bridge` command).
 */
export * from "./attr.ts";
export * from "./constants.ts";
export * from "./message.ts";
export * from "./values.ts";
export * from "./link.ts";
export * from "./addr.ts";
export * from "./route.ts";
export * from "./neigh.ts";
export * from "./error.ts";
export * from "./socket.ts";
export * from "./monitor.ts";
export * from "./ops.ts";
