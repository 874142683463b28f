/**
 * @module Logging in klog's line format (`I1122 03:20:53.123456    1234 weft] message`), as
 * flanneld's logs look, to stderr. `-v N` enables debug lines at level ≤ N. Never pass secrets.
 * Messages carry text from etcd keys and peers: control characters are escaped here, once, so
 * such text can neither drive the terminal nor start a forged log record.
 */

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** Logged only when the verbosity is at least `level`. */
  debug(level: number, msg: string): void;
}

let verbosity = 0;
export function setVerbosity(v: number): void {
  verbosity = v;
}

/**
 * `msg` with its control characters made visible: C0 and C1 controls, DEL and the Unicode line
 * separators become `\xNN`/`\uNNNN` (`\r` as `\r`); tab stays; a newline stays but every
 * following line is indented, so only the logger starts a record.
 *
 * @example
 * escapeControls("key \x1b[2Jx\nI1122 forged") === "key \\x1b[2Jx\n    I1122 forged"
 */
export function escapeControls(msg: string): string {
  return msg
    .replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => {
      if (c === "\r") return "\\r";
      const n = c.charCodeAt(0);
      return n < 0x100 ? `\\x${n.toString(16).padStart(2, "0")}` : `\\u${n.toString(16)}`;
    })
    .replaceAll("\n", "\n    ");
}

function line(sev: string, msg: string): string {
  const d = new Date();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const us = String(d.getUTCMilliseconds() * 1000).padStart(6, "0");
  return `${sev}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${us} ${String(process.pid).padStart(7)} weft] ${escapeControls(msg)}\n`;
}

/** The process logger; `sink` is replaceable for tests. */
export function createLogger(sink: (text: string) => void = (t) => process.stderr.write(t)): Logger {
  return {
    info: (m) => sink(line("I", m)),
    warn: (m) => sink(line("W", m)),
    error: (m) => sink(line("E", m)),
    debug: (level, m) => { if (verbosity >= level) sink(line("I", m)); },
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };
