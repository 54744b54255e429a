// Text out of staging memory, for the few places the receiver makes strings:
// a message's subject or payload when asked, an INFO's JSON, a -ERR's text,
// and the excerpt of a bad line that an error message shows.

/** Shared: decoding keeps no state between calls. */
const decoder = new TextDecoder();

/** The longest excerpt of a bad line an error message shows, in bytes. */
const EXCERPT_BYTES = 60;

/** `bytes[start, end)` decoded as UTF-8 (bad sequences become U+FFFD). */
export function decodeText(bytes: Uint8Array, start: number, end: number): string {
  const view = bytes.subarray(start, end);
  // A copy for shared memory: not every runtime's TextDecoder takes a view of it.
  return decoder.decode(view.buffer instanceof ArrayBuffer ? view : view.slice());
}

/**
 * The start of `bytes[start, end)` for an error message, in double quotes:
 * printable ASCII as it is, `\r`, `\n`, `\t`, `\\` and `\"` escaped, other
 * bytes as `\xNN`; at most 60 bytes, then "...".
 */
export function excerpt(bytes: Uint8Array, start: number, end: number): string {
  const stop = end - start > EXCERPT_BYTES ? start + EXCERPT_BYTES : end;
  let text = '"';
  for (let i = start; i < stop; i++) {
    const b = bytes[i]!;
    if (b === 0x0d) text += "\\r";
    else if (b === 0x0a) text += "\\n";
    else if (b === 0x09) text += "\\t";
    else if (b === 0x5c) text += "\\\\";
    else if (b === 0x22) text += '\\"';
    else if (b >= 0x20 && b < 0x7f) text += String.fromCharCode(b);
    else text += `\\x${b.toString(16).padStart(2, "0")}`;
  }
  return stop < end ? `${text}"...` : `${text}"`;
}
