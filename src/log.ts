/**
 * @module Logging in klog's line format (`I1122 03:20:53.123456    1234 weft] message`), as
 * flanneld's logs look, to stderr. `-v N` enables debug lines at level ≤ N. Never pass secrets.
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

function line(sev: string, msg: string): string {
  const d = new Date();
  const p2 = (n: number) => String(n).padStart(2, "0");
  const us = String(d.getUTCMilliseconds() * 1000).padStart(6, "0");
  return `${sev}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())}.${us} ${String(process.pid).padStart(7)} weft] ${msg}\n`;
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
