/**
 * @module Why a file could not be read, in a user's words: "no such file", "permission denied",
 * "it is a directory", else the system's message. One wording for every file weft reads on a
 * user's behalf (TLS files, `weft config set FILE`, kube mode's net-conf.json).
 *
 * @example
 *   try { readFileSync(p) } catch (e) { throw new Error(`cannot read ${p}: ${fileErrorReason(e)}`) }
 */
export function fileErrorReason(e: unknown): string {
  switch ((e as NodeJS.ErrnoException).code) {
    case "ENOENT": return "no such file";
    case "EACCES": return "permission denied";
    case "EISDIR": return "it is a directory";
    default: return (e as Error).message;
  }
}
