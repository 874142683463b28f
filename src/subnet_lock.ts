/**
 * @module One agent per subnet file: an exclusive flock(2) on `<subnet-file>.lock`, taken before
 * the agent starts and held for the life of the process. Two agents with the same subnet file
 * would otherwise both run and remove each other's device address every 10 s.
 *
 * Why flock and not an O_EXCL pid file: the kernel drops a flock when its holder dies, however it
 * dies (kill -9, OOM, power loss of a tmpfs /run), so there is never a stale lock to judge, and a
 * recycled pid can never make a dead agent look alive. The file itself stays (removing it while
 * another process opens it would let two hold locks on different inodes); its text — the
 * holder's pid and command line, the password redacted — is only for the message.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { errnoName, loadSys, type Sys } from "../ffi/sys.ts";
import { LOCK_EX, LOCK_NB, LOCK_UN, O_CLOEXEC, O_CREAT, O_RDWR } from "../ffi/linux.ts";

const EWOULDBLOCK = 11;

/** Another agent holds the subnet file. */
export class SubnetFileLockedError extends Error {
  constructor(readonly subnetFile: string, readonly holder: { pid?: number; command?: string }) {
    const who = holder.pid ? `pid ${holder.pid}${holder.command ? ` (${holder.command})` : ""}` : "another process (pid not yet recorded)";
    super(`another agent is running with subnet file ${subnetFile}: ${who} holds ${subnetFile}.lock; ` +
      "stop it first, or give this agent its own --subnet-file");
    this.name = "SubnetFileLockedError";
  }
}

/** A held lock; `release()` is for tests and orderly shutdown (exit releases it anyway). */
export interface SubnetLock {
  readonly path: string;
  release(): void;
}

/** The command line as recorded in the lock file: the etcd password never appears. */
export function redactCommand(argv: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--?etcd-password=/.test(a)) out.push(a.replace(/=.*/, "=***"));
    else if (/^--?etcd-password$/.test(a)) out.push(a, argv[++i] === undefined ? "" : "***");
    else out.push(a);
  }
  return out.join(" ").trim();
}

/** Parses the lock file's text (`pid\ncommand\n`); fields that are absent stay undefined. */
export function parseLockText(text: string): { pid?: number; command?: string } {
  const [pidLine = "", command = ""] = text.split("\n");
  const pid = /^\d+$/.test(pidLine.trim()) ? Number(pidLine.trim()) : undefined;
  return { pid, command: command.trim() || undefined };
}

/**
 * Takes `<subnetFile>.lock` for this process or throws SubnetFileLockedError naming the holder.
 * Other failures (a directory that cannot be made, a read-only file system) throw an Error
 * naming the path and the errno.
 */
export async function lockSubnetFile(subnetFile: string, command: string, sys?: Sys): Promise<SubnetLock> {
  const s = sys ?? await loadSys();
  const path = `${subnetFile}.lock`;
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  // O_CLOEXEC: a child (iptables-restore) must not inherit the lock and keep it after we die.
  const fd = s.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644);
  if (fd < 0) throw new Error(`cannot open lock file ${path}: ${errnoName(-fd)}`);
  const rc = s.flock(fd, LOCK_EX | LOCK_NB);
  if (rc < 0) {
    s.close(fd);
    if (-rc !== EWOULDBLOCK) throw new Error(`cannot lock ${path}: ${errnoName(-rc)}`);
    let text = "";
    try { text = readFileSync(path, "utf8"); } catch { /* the holder's details are a courtesy */ }
    throw new SubnetFileLockedError(subnetFile, parseLockText(text));
  }
  // A new open file description writes the text; the lock stays with `fd`.
  writeFileSync(path, `${process.pid}\n${command}\n`);
  return {
    path,
    release() {
      s.flock(fd, LOCK_UN);
      s.close(fd);
    },
  };
}
