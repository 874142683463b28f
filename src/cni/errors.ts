/**
 * @module CNI error results: the spec's well-known codes and the error a plugin prints on stdout
 * (`{"cniVersion","code","msg","details"}`) before exiting 1. Commands throw `CniError` where the
 * code matters; anything else becomes code 999, as libcni's skel does.
 */

/** Well-known CNI error codes (CNI spec "Error", libcni `types.Err*`). */
export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidNetworkConfig: 7,
  invalidNetNS: 8,
  tryAgainLater: 11,
  /** STATUS (CNI 1.1.0): the plugin cannot service ADD requests. */
  pluginNotAvailable: 50,
  internal: 999,
} as const;

/** A CNI error with its spec code; `details` is optional context for the operator. */
export class CniError extends Error {
  constructor(readonly code: number, msg: string, readonly details = "") {
    super(msg);
    this.name = "CniError";
  }

  /** Wraps any thrown value: CniErrors keep their code (like `errors.As` in skel), others get 999. */
  static from(e: unknown): CniError {
    if (e instanceof CniError) return e;
    return new CniError(CniCode.internal, e instanceof Error ? e.message : String(e));
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EISDIR: "is a directory",
  ENOTDIR: "not a directory",
  ELOOP: "too many levels of symbolic links",
};

/** A failed system call's reason as Go prints it (`no such file or directory`). */
export function errnoText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  return ERRNO_TEXT[code] ?? (e instanceof Error ? e.message : String(e));
}
