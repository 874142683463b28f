/**
 * @module WireGuard keys as text: standard base64 of 32 bytes (44 characters ending in `=`), as
 * `wg genkey`, `wg show` and flannel's lease BackendData write them. Reading accepts the line
 * breaks around a key in a file (Go's base64 decoder skips `\r` and `\n`, so flanneld does too).
 *
 * @example
 *   parseKey("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=", "PSK")  // 32 bytes
 *   formatKey(bytes)                                                 // the same text back
 */

// Go decodes without checking the unused low bits of the last character; so does Buffer.
const KEY_RE = /^[A-Za-z0-9+/]{43}=$/;

/** The base64 text of a 32-byte key. */
export function formatKey(key: Uint8Array): string {
  if (key.length !== 32) throw new RangeError(`a WireGuard key is 32 bytes, not ${key.length}`);
  return Buffer.from(key).toString("base64");
}

/**
 * Reads a key from its base64 text. Throws naming `what` (e.g. "Backend.PSK") and the value
 * unless it is exactly 32 bytes of standard base64.
 */
export function parseKey(text: string, what: string): Uint8Array {
  const s = text.replace(/[\r\n]/g, "");
  if (!KEY_RE.test(s)) {
    const shown = s.length > 60 ? `${s.slice(0, 12)}… (${s.length} characters)` : JSON.stringify(s);
    throw new TypeError(`${what} ${shown} is not a WireGuard key: it must be 32 bytes in base64 (44 characters ending in '='), as 'wg genkey' prints`);
  }
  return new Uint8Array(Buffer.from(s, "base64"));
}
